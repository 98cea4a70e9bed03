from pathlib import Path

import numpy as np
import pytest

from cloud.retrain import architectures
from cloud.retrain.errors import RetrainError
from tests.support.shared import MOBILENET_025_128_TOP, needs_shared


@pytest.mark.parametrize(
    ("name", "size", "mean", "std"),
    [
        ("mobilenet_1.0_224", 224, 127.5, 127.5),
        ("mobilenet_0.75_192", 192, 127.5, 127.5),
        ("mobilenet_0.50_160", 160, 127.5, 127.5),
        ("mobilenet_0.5_160", 160, 127.5, 127.5),
        ("mobilenet_0.25_128", 128, 127.5, 127.5),
        ("mobilenet_v2_1.0_224", 224, 127.5, 127.5),
        ("mobilenet_v2_0.35_96", 96, 127.5, 127.5),
        ("mobilenet_v2", 224, 127.5, 127.5),
        ("mobilenet_v3_small", 224, 127.5, 127.5),
        ("mobilenet_v3_large", 224, 127.5, 127.5),
        ("inception_v3", 299, 127.5, 127.5),
        ("efficientnet_b0", 224, 0.0, 1.0),
    ],
)
def test_each_architecture_has_its_own_input(name: str, size: int, mean: float, std: float) -> None:
    arch = architectures.parse(name)
    assert (arch.size, arch.mean, arch.std) == (size, mean, std)


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "efficientnet_b0", "mobilenet_v2_0.35_96"])
def test_extractor_takes_uint8_and_gives_pooled_features(name: str) -> None:
    arch = architectures.parse(name)
    extractor = architectures.feature_extractor(arch, architectures.load_base(arch, "none", 0))
    features = extractor(np.zeros((2, arch.size, arch.size, 3), np.uint8))
    assert features.shape[0] == 2
    assert len(features.shape) == 2


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_0.3_224", "mobilenet_1.0_100", "mobilenet_v2_0.9_224"])
def test_unknown_architecture_lists_the_known(name: str) -> None:
    with pytest.raises(RetrainError, match=r"unknown architecture .* known: mobilenet_"):
        architectures.parse(name)


def test_weights_that_do_not_fit_are_a_clear_error(tiny_weights: Path) -> None:
    with pytest.raises(RetrainError, match=r"does not fit architecture mobilenet_0\.50_128"):
        architectures.load_base(architectures.parse("mobilenet_0.50_128"), str(tiny_weights), 0)


def test_missing_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RetrainError, match="not found"):
        architectures.load_base(architectures.parse("mobilenet_0.25_128"), str(tmp_path / "w.h5"), 0)


def test_fingerprint_follows_the_weights_not_the_file_name(tiny_weights: Path, tmp_path: Path) -> None:
    arch = architectures.parse("mobilenet_0.25_128")
    renamed = tmp_path / "renamed.weights.h5"
    renamed.write_bytes(tiny_weights.read_bytes())
    first = architectures.fingerprint(arch, architectures.load_base(arch, str(tiny_weights), 0))
    again = architectures.fingerprint(arch, architectures.load_base(arch, str(renamed), 0))
    seeded_init = architectures.fingerprint(arch, architectures.load_base(arch, "none", 0))
    other_init = architectures.fingerprint(arch, architectures.load_base(arch, "none", 1))
    assert first == again
    assert len({first, seeded_init, other_init}) == 3


@needs_shared(MOBILENET_025_128_TOP)
def test_a_weights_file_with_the_imagenet_top_is_cut_at_the_pooling() -> None:
    arch = architectures.parse("mobilenet_0.25_128")
    extractor = architectures.feature_extractor(arch, architectures.load_base(arch, str(MOBILENET_025_128_TOP), 0))
    assert extractor.output_shape == (None, 256)


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("mobilenet_0.5_160", "mobilenet_0.50_160"),
        ("mobilenet_v2", "mobilenet_v2_1.0_224"),
        ("MobileNet_1.0_224", "mobilenet_1.0_224"),
    ],
)
def test_one_network_has_one_name(spelling: str, canonical: str) -> None:
    assert architectures.parse(spelling).name == canonical
