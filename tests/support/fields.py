"""Simulated fields: the flower photos as cameras in the field would see them, to prove that labelling
what the cameras see makes the model better on what they see.

Each photo goes, by a hash of its file name, to the seed (clean, as a person would collect them),
to the field pool (what the cameras send, unlabelled) or to the field's held-out eval set. Each
field degrades its photos its own way (a camera's resolution, optics, white balance, mounting), so
nothing tuned for one field fits all. A camera sends several frames of one scene: the pool holds 2-4
slightly jittered frames of each photo, so near-duplicate collapse matters; the eval set holds one.
With `prior`, a field also has its camera's own label distribution: one label, chosen by a hash of
the field's name, makes PRIOR_SHARE% of its pool and eval photos, the others share the rest.

    root/seed/<label>/*.jpg
    root/<field>/pool/<label>/*.jpg
    root/<field>/eval/<label>/*.jpg     (root/<field>-prior/... with a label prior)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tests.support.data import write_jpeg

SEED_SHARE, POOL_SHARE = 40, 40  # percent of the photos; the rest is the fields' eval set
FRAMES = (2, 4)  # frames per scene in a pool, inclusive
PRIOR_SHARE = 0.4  # a skewed field's most common label: its share of the field's photos


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def _clip(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 255).astype(np.uint8)


def lowres(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A cheap camera far away: 4-6x fewer pixels each way, upscaled, heavily compressed."""
    h, w = rgb.shape[:2]
    factor = rng.uniform(4, 6)
    small = cv2.resize(rgb, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA)
    return _jpeg(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), 30)


def blur_noise(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Out of focus, in poor light: Gaussian blur and strong sensor noise."""
    blurred = cv2.GaussianBlur(rgb, (0, 0), rng.uniform(1.5, 3.0)).astype(np.float32)
    return _clip(blurred + rng.normal(0, rng.uniform(12, 22), rgb.shape))


CAST = np.array([1.25, 1.0, 0.65])  # the field's white balance: warm, little blue


def colour(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A wrong white balance and a washed-out, flat picture."""
    x = rgb.astype(np.float32) * (CAST * rng.uniform(0.92, 1.08, 3))
    mean = x.mean(axis=(0, 1), keepdims=True)
    return _clip(mean + (x - mean) * rng.uniform(0.45, 0.65) + rng.uniform(10, 40))


def framing(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A camera mounted askew and zoomed in off-centre: crop, zoom and rotation."""
    h, w = rgb.shape[:2]
    centre = (w / 2 + rng.uniform(-0.25, 0.25) * w, h / 2 + rng.uniform(-0.25, 0.25) * h)
    matrix = cv2.getRotationMatrix2D(centre, rng.uniform(-35, 35), rng.uniform(1.5, 2.2))
    matrix[:, 2] += (w / 2 - centre[0], h / 2 - centre[1])  # the chosen point to the middle of the frame
    return cv2.warpAffine(rgb, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def mixed(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Everything a little: a milder zoom, colour cast, resolution loss and noise together."""
    h, w = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-15, 15), rng.uniform(1.1, 1.4))
    x = cv2.warpAffine(rgb, matrix, (w, h), borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    x = x * np.array([0.85, 1.0, 1.2]) * 0.8 + 20
    small = cv2.resize(_clip(x), (w // 3, h // 3), interpolation=cv2.INTER_AREA)
    x = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    return _jpeg(_clip(x + rng.normal(0, 8, x.shape)), 50)


Degradation = Callable[[np.ndarray, np.random.Generator], np.ndarray]
FIELDS: dict[str, Degradation] = {
    "lowres": lowres,
    "blur_noise": blur_noise,
    "colour": colour,
    "framing": framing,
    "mixed": mixed,
}


def jitter(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One more frame of the same scene: a shift of a few pixels, a flicker of light, fresh noise."""
    dx, dy = rng.integers(-6, 7, 2)
    shifted = cv2.warpAffine(rgb, np.float32([[1, 0, dx], [0, 1, dy]]), rgb.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
    return _clip(shifted.astype(np.float32) * rng.uniform(0.96, 1.04) + rng.normal(0, 3, rgb.shape))


def part_of(file_name: str) -> str:
    """seed, pool or eval, by a hash of the photo's name: a photo is in one part only, whatever the field."""
    share = int(hashlib.sha1(file_name.encode()).hexdigest(), 16) % 100
    return "seed" if share < SEED_SHARE else "pool" if share < SEED_SHARE + POOL_SHARE else "eval"


def _number(*parts: str) -> int:
    return int(hashlib.sha1("/".join(parts).encode()).hexdigest()[:12], 16)


def label_prior(field: str, counts: dict[str, int]) -> dict[str, float]:
    """Per label, the share of its photos a skewed field keeps: one label (by a hash of the field's
    name, not tuned) all of them, the others as few as make it PRIOR_SHARE of what is kept."""
    labels = sorted(counts)
    top = labels[_number("prior", field) % len(labels)]
    target = {label: PRIOR_SHARE if label == top else (1 - PRIOR_SHARE) / (len(labels) - 1) for label in labels}
    ratio = {label: target[label] / counts[label] for label in labels}
    return {label: ratio[label] / ratio[top] for label in labels}


def _kept(field: str, photo: str, share: float) -> bool:
    return _number("kept", field, photo) % 10_000 < share * 10_000


@dataclass(frozen=True)
class FieldFolders:
    seed: Path
    pools: dict[str, Path]
    evals: dict[str, Path]


def _photos(flowers: Path) -> list[tuple[str, Path]]:
    return [
        (folder.name, p)
        for folder in sorted(flowers.iterdir())
        if folder.is_dir()
        for p in sorted(folder.glob("*.jpg"))
    ]


def write_fields(flowers: Path, root: Path, fields: list[str], seed: int = 0, prior: bool = False) -> FieldFolders:
    """Write the seed and each field's pool and eval set under `root`; kept, so a rerun writes nothing.
    With `prior`, each field keeps its label prior's share of the photos (the same frames, fewer)."""
    dirs = {f: root / (f"{f}-prior" if prior else f) for f in fields}
    folders = FieldFolders(root / "seed", {f: dirs[f] / "pool" for f in fields}, {f: dirs[f] / "eval" for f in fields})
    done = root / f".done-{seed}-{'-'.join(dirs[f].name for f in fields)}"
    if done.exists():
        return folders
    photos = _photos(flowers)
    counts = {label: sum(1 for other, _ in photos if other == label) for label, _ in photos}
    keep = {f: label_prior(f, counts) if prior else dict.fromkeys(counts, 1.0) for f in fields}
    for label, photo in photos:
        part = part_of(photo.name)
        if part == "seed":
            (folders.seed / label).mkdir(parents=True, exist_ok=True)
            (folders.seed / label / photo.name).write_bytes(photo.read_bytes())
            continue
        kept = [f for f in fields if _kept(f, photo.name, keep[f][label])]
        rgb = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB) if kept else None
        for field in kept:
            folder = (folders.pools if part == "pool" else folders.evals)[field] / label
            folder.mkdir(parents=True, exist_ok=True)
            frames = np.random.default_rng(_number(str(seed), "frames", photo.name)).integers(FRAMES[0], FRAMES[1] + 1)
            for i in range(frames if part == "pool" else 1):
                scene = np.random.default_rng(_number(str(seed), field, photo.name))  # same camera, same scene
                frame = np.random.default_rng(_number(str(seed), field, photo.name, str(i)))
                write_jpeg(folder / f"{photo.stem}_{i}.jpg", jitter(FIELDS[field](rgb, scene), frame))
    done.touch()
    return folders
