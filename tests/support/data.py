"""Data the tests make themselves: images of one colour per label, with noise, and base-network
weights that stand in for ImageNet ones without a download."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

COLOURS = {"red": (200, 40, 40), "green": (40, 190, 60), "blue": (40, 60, 210)}
TINY_ARCHITECTURE = "mobilenet_0.25_128"  # the base the tests train: small and fast, with calibrated_weights


def synthetic_image(label: str, rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """An RGB uint8 image of class `label`: its colour, a random brightness, sensor-like noise."""
    image = np.empty((size, size, 3), np.float32)
    image[:] = np.array(COLOURS[label], np.float32) * rng.uniform(0.75, 1.0)
    image += rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_dataset(root: Path, per_label: int = 40, labels: tuple[str, ...] = tuple(COLOURS), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for label in labels:
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            write_jpeg(folder / f"{label}_{seed}_{i:03d}.jpg", synthetic_image(label, rng))
    return root


def write_jpeg(path: Path, rgb: np.ndarray) -> Path:
    path.write_bytes(encode_jpeg(rgb))
    return path


def encode_jpeg(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


def calibrated_weights(architecture: str, sample: np.ndarray, path: Path) -> Path:
    """A stand-in for ImageNet weights that needs no download: the base's random initialisation with
    every batch norm's statistics set from `sample` (uint8 images), so its features have unit scale
    instead of vanishing through the layers. Saved as a Keras weights file for `--weights PATH`."""
    import keras

    from cloud.retrain import architectures

    arch = architectures.parse(architecture)
    base = architectures.load_base(arch, "none", seed=0)
    norms = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0  # one training-mode pass then leaves exactly this batch's statistics
    resized = np.stack([cv2.resize(image, (arch.size, arch.size)) for image in sample])
    base((resized.astype(np.float32) - arch.mean) / arch.std, training=True)
    base.save_weights(path)
    return path


def write_video(path: Path, frames: int = 60, size: tuple[int, int] = (640, 480), fps: int = 30, seed: int = 0) -> Path:
    """An MJPG .avi (OpenCV writes it without ffmpeg) cycling through the labels' colours."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    labels = list(COLOURS)
    for i in range(frames):
        rgb = synthetic_image(labels[(i // 10) % len(labels)], rng, size=max(size))[: size[1], : size[0]]
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path
