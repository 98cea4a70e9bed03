"""The loop makes the model better where it is deployed, every part real: Mosquitto, `cloud serve`
and `edge run`. The seed model is trained on clean flower photos; the device watches a camera with
worse optics (a simulated field: other flower photos, each seen in a few jittered frames) and sends
samples; a person (this test) labels the first K of the service's queue by the truth; the data
trigger retrains, the gate judges the candidate on the field slice first and promotes it; the new
version is better on held-out field frames, and the device runs it."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from common import bundle, images
from edge.classifier import Classifier
from tests.support.api import answers, api, promoted
from tests.support.broker import Recorder
from tests.support.device import start_edge, versions
from tests.support.fields import FIELDS, jitter, part_of
from tests.support.ports import free_port
from tests.support.processes import terminate
from tests.support.serve import start_serve
from tests.support.shared import FLOWERS, MOBILENET_025_224, needs_shared
from tests.support.waiting import wait_for

pytestmark = [needs_shared(FLOWERS), needs_shared(MOBILENET_025_224), pytest.mark.slow]

FIELD = "lowres"  # a cheap camera far away: the seed model gets under half of its frames right
SEED_PER_LABEL = 40
SCENES_PER_LABEL = 40  # the camera's scenes, each seen in two frames
EVAL_PER_LABEL = 40
LABELS = 150  # what the person labels: the first K of the queue
FLAGS = {"architecture": "mobilenet_0.25_224", "weights": str(MOBILENET_025_224), "how_many_training_steps": 800,
         "learning_rate": 0.05, "field_weight": 3.0}  # fmt: skip


def photos(part: str, per_label: int) -> list[tuple[str, Path]]:
    chosen = []
    for folder in sorted(p for p in FLOWERS.iterdir() if p.is_dir()):
        mine = [p for p in sorted(folder.glob("*.jpg")) if part_of(p.name) == part]
        chosen += [(folder.name, p) for p in mine[:per_label]]
    return chosen


def degrade(photo: Path, seed: int) -> np.ndarray:
    rgb = images.read_rgb(photo)
    return FIELDS[FIELD](rgb, np.random.default_rng(seed))


def write_field_video(path: Path) -> list[tuple[str, np.ndarray]]:
    """Two jittered frames of each scene, the scenes shuffled; returns each scene's label and picture."""
    scenes = [(label, degrade(photo, i)) for i, (label, photo) in enumerate(photos("pool", SCENES_PER_LABEL))]
    order = np.random.default_rng(1).permutation(len(scenes))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (224, 224))
    for i in order:
        for frame in range(2):
            rgb = jitter(scenes[i][1], np.random.default_rng([int(i), frame]))
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return scenes


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(rgb, (24, 24), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()


def scene_of(jpeg: bytes, thumbs: np.ndarray) -> int:
    """Which scene the picture shows: what a person sees in it."""
    seen = thumbnail(images.decode_rgb(jpeg))
    return int(np.argmin(((thumbs - seen) ** 2).sum(1)))


def judged(jobs: list[dict] | None) -> bool:
    """Both trainings (the seed's, the field's) have ended."""
    return jobs is not None and len(jobs) == 2 and all(j["state"] in ("succeeded", "failed") for j in jobs)


def field_accuracy(model: Path, held_out: list[tuple[str, np.ndarray]]) -> float:
    classifier = Classifier(bundle.load(model), "tflite")
    predicted = classifier.probabilities([rgb for _, rgb in held_out]).argmax(1)
    return float(np.mean([classifier.labels[p] == label for p, (label, _) in zip(predicted, held_out, strict=True)]))


def test_labelling_the_field_makes_the_model_better_on_the_field(broker, tmp_path: Path) -> None:
    data = tmp_path / "data"
    dataset = data / "datasets" / "flowers"
    for label, photo in photos("seed", SEED_PER_LABEL):
        (dataset / label).mkdir(parents=True, exist_ok=True)
        (dataset / label / photo.name).write_bytes(photo.read_bytes())
    (dataset / "retrain.yaml").write_text(yaml.safe_dump(FLAGS))
    scenes = write_field_video(tmp_path / "field.avi")
    thumbs = np.stack([thumbnail(rgb) for _, rgb in scenes])
    held_out = [(label, degrade(photo, 10_000 + i)) for i, (label, photo) in enumerate(photos("eval", EVAL_PER_LABEL))]
    port = free_port()
    serve = start_serve(broker, f"sqlite:///{tmp_path / 'db.sqlite'}", data, port, "--public-url",
                        f"http://127.0.0.1:{port}", "--trigger-interval-s", 1, "--retrain-after-labels", LABELS,
                        "--gate-field-images", 15, "--sample-rate-per-min", 6000)  # fmt: skip
    recorder = Recorder(broker.url, "edgeloop/devices/cam-1/predictions")
    edge = None
    try:
        wait_for(lambda: promoted(port), 240, "the seed version trained and promoted")
        first = promoted(port)[0]
        sampling = ["--loop", "--sample-threshold", 1.0, "--samples-per-minute", 6000]  # every frame, but near-dups
        edge = start_edge(data / "models" / "flowers" / first["version"], tmp_path / "field.avi", broker,
                          tmp_path / "state", *sampling)  # fmt: skip
        wait_for(lambda: len(answers(port, "/api/samples?limit=1000") or []) >= LABELS, 120, "samples of the field")
        shown = [scene_of(api(port, sample["url"]), thumbs) for sample in api(port, f"/api/samples?limit={LABELS}")]
        assert len(set(shown)) >= 0.9 * LABELS, "near-duplicate frames of a scene are seldom offered twice"
        for sample, scene in zip(api(port, f"/api/samples?limit={LABELS}"), shown, strict=True):
            api(port, f"/api/samples/{sample['id']}/label", {"label": scenes[scene][0]})
        wait_for(lambda: judged(answers(port, "/api/jobs")), 300, "the field-trained version judged")
        second = answers(port, "/api/models")[0]
        gate = second["gate"]
        assert second["state"] == "promoted", gate
        assert gate["rule"] == "field", gate["why"]
        assert gate["slices"]["field"]["images"] >= 15
        assert gate["slices"]["field"]["candidate"] > gate["slices"]["field"]["promoted"]
        assert second["metrics"]["slices"]["field"]["images"] == gate["slices"]["field"]["images"]
        before = field_accuracy(data / "models" / "flowers" / first["version"], held_out)
        after = field_accuracy(data / "models" / "flowers" / second["version"], held_out)
        assert after > before + 0.1, f"held-out field accuracy {before:.3f} -> {after:.3f}"
        wait_for(lambda: versions(recorder)[-1:] == [second["version"]], 90, "predictions of the new version")
    finally:
        terminate(edge, serve)
        recorder.close()
    print(f"held-out field accuracy {before:.3f} -> {after:.3f}; gate: {gate['why']}")
