"""The device's sampler: unsure frames by margin or entropy, one sample of a static scene rather than
thirty, a random share that grows while the predicted labels drift from training, the rate limit,
and the pipeline telling the sampler each model's training labels."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from common.bundle import Bundle
from edge.classifier import Classifier
from edge.config import EdgeConfig
from edge.samples import Sampler, confidence
from tests.support.data import encode_jpeg, synthetic_image
from tests.support.keys import registry_keys
from tests.support.shared import FLOWERS, needs_shared

SPLIT = np.array([0.52, 0.46, 0.02])  # sure enough by top-1, torn between two labels
SURE = np.array([0.9, 0.05, 0.05])
LABELS = ["red", "green", "blue"]


def sampler(**options) -> Sampler:
    return Sampler.of(EdgeConfig(source="0", model=Path("bundle"), device_id="cam-1", **options), seed=1)


def one_hot(index: int) -> np.ndarray:
    return np.eye(len(LABELS))[index]


def frames(count: int, seed: int = 0) -> list[np.ndarray]:
    """Distinct pictures: pure noise, nowhere near one another."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (48, 64, 3), np.uint8) for _ in range(count)]


def camera(scene: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One frame of a camera held on `scene`: sensor noise, then JPEG."""
    noisy = np.clip(scene + rng.normal(0, 6, scene.shape), 0, 255).astype(np.uint8)
    return cv2.imdecode(np.frombuffer(encode_jpeg(noisy), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]


def test_every_measure_runs_from_unsure_to_sure() -> None:
    for by in ("margin", "entropy", "top1"):
        assert confidence(np.ones(3) / 3, by) == pytest.approx(1 / 3 if by == "top1" else 0.0)
        assert confidence(one_hot(0), by) == pytest.approx(1.0)


@pytest.mark.parametrize("by", ["margin", "entropy"])
def test_margin_and_entropy_pick_a_frame_torn_between_two_labels_that_top1_lets_pass(by: str) -> None:
    image = frames(1)[0]
    assert sampler(sample_uncertainty="top1", sample_random_share=0.0).pick(SPLIT, image) is None
    unsure = sampler(sample_uncertainty=by, sample_random_share=0.0)
    assert unsure.pick(SURE, image) is None
    assert unsure.pick(SPLIT, image) == "low_confidence"


def _static_scene(scene: np.ndarray, other: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    unsure = sampler(samples_per_minute=2)
    picks = [unsure.pick(SPLIT, camera(scene, rng)) for _ in range(30)]
    assert picks.count("low_confidence") == 1
    assert unsure.counts["near_duplicate"] == 29
    assert unsure.pick(SPLIT, camera(other, rng)) == "low_confidence", "a different scene is still sent"
    assert unsure.counts["rate_limited"] == 0, "suppressed frames take none of the rate"


def test_a_static_scene_sends_one_sample_not_thirty() -> None:
    rng = np.random.default_rng(3)
    _static_scene(synthetic_image("red", rng, size=240), synthetic_image("green", rng, size=240))


@needs_shared(FLOWERS)
def test_a_flower_in_front_of_the_camera_sends_one_sample_and_the_next_flower_another() -> None:
    first, second = (cv2.imread(str(path))[..., ::-1] for path in sorted((FLOWERS / "daisy").glob("*.jpg"))[:2])
    _static_scene(first, second)


def _stream(unsure: Sampler, labels: np.ndarray) -> list[str | None]:
    """Sure frames of these top-1 labels, each a different picture: only random picks can go."""
    picks = []
    for label, image in zip(labels, frames(len(labels)), strict=True):
        probabilities = np.full(len(LABELS), 0.02)
        probabilities[label] = 0.96
        unsure.observe(probabilities)
        picks.append(unsure.pick(probabilities, image))
    return picks


def test_the_random_share_grows_while_the_predicted_labels_drift_from_training() -> None:
    unsure = sampler(samples_per_minute=10_000, sample_random_share=0.001, sample_random_max=0.05)
    unsure.expect(LABELS, {"red": 100, "green": 100, "blue": 100})
    rng = np.random.default_rng(0)
    as_trained = _stream(unsure, rng.integers(0, 3, 3000))
    assert unsure.share() == 0.001
    assert "drift" not in as_trained
    assert unsure.figures()["label_drift"] < 0.1
    all_red = _stream(unsure, np.zeros(4000, int))  # a camera in a field of one flower
    assert unsure.share() == pytest.approx(0.05)
    assert unsure.figures()["random_share"] == pytest.approx(0.05)
    assert unsure.figures()["label_drift"] == pytest.approx(2 / 3, abs=0.01)
    assert all_red[2000:].count("drift") == pytest.approx(2000 * 0.049, abs=30)
    assert all_red.count("random") + as_trained.count("random") == pytest.approx(7, abs=7)


def test_a_bundle_without_training_counts_has_no_drift_term() -> None:
    unsure = sampler(sample_random_share=0.001)
    unsure.expect(LABELS, {})
    _stream(unsure, np.zeros(1000, int))
    assert unsure.share() == 0.001
    assert "label_drift" not in unsure.figures()


def test_a_random_share_of_the_sure_frames_goes_too() -> None:
    unsure = sampler(samples_per_minute=10_000, sample_random_share=0.5, sample_random_max=0.5)
    picks = [unsure.pick(SURE, image) for image in frames(400)]
    assert picks.count("random") == pytest.approx(200, abs=40)
    assert set(picks) == {"random", None}


def test_the_rate_limit_holds() -> None:
    unsure = sampler(samples_per_minute=5, sample_random_share=0.0)
    assert [unsure.pick(SPLIT, image) for image in frames(8)].count("low_confidence") == 5
    assert unsure.counts["rate_limited"] == 3


def test_the_pipeline_gives_the_sampler_each_model_s_training_labels(tiny_bundle, video, tmp_path) -> None:
    from edge.run import Device

    trusted = registry_keys()[1]
    device = Device(EdgeConfig(source=str(video), model=tiny_bundle, device_id="cam-1", state_dir=tmp_path,
                               trusted_key=trusted))  # fmt: skip
    meta = device.classifier.bundle.meta
    drift = device.cameras[0].sampler.drift
    trained = np.array([meta.images.per_label[label] for label in meta.labels])
    assert drift.expected == pytest.approx(trained / trained.sum())

    def swap(per_label: dict[str, int]) -> None:
        images = meta.images.model_copy(update={"per_label": per_label})
        device.pipeline.swap(Classifier(Bundle(tiny_bundle, meta.model_copy(update={"images": images})), "tflite"))

    swap({meta.labels[0]: 90, meta.labels[1]: 10})
    assert list(drift.expected) == pytest.approx([0.9, 0.1] + [0.0] * (len(meta.labels) - 2))
    swap({})  # an older bundle
    assert drift.expected is None
