from pathlib import Path

import numpy as np
import pytest

from common import images
from tests.support.data import synthetic_image, write_jpeg


@pytest.fixture
def jpeg(tmp_path: Path) -> Path:
    return write_jpeg(tmp_path / "a.jpg", synthetic_image("red", np.random.default_rng(0)))


def test_decodes_rgb_in_rgb_order(jpeg: Path) -> None:
    rgb = images.read_rgb(jpeg)
    assert rgb.shape == (96, 96, 3)
    assert rgb.dtype == np.uint8
    red, green, blue = rgb.reshape(-1, 3).mean(0)
    assert red > 100 > green
    assert red > 100 > blue


def test_truncated_jpeg_is_an_error(jpeg: Path) -> None:
    data = jpeg.read_bytes()
    with pytest.raises(images.ImageError, match="truncated"):
        images.decode_rgb(data[: len(data) // 2])


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n garbage"])
def test_garbage_is_an_error(data: bytes) -> None:
    with pytest.raises(images.ImageError):
        images.decode_rgb(data)


def test_missing_file_is_an_image_error(tmp_path: Path) -> None:
    with pytest.raises(images.ImageError, match="cannot read"):
        images.read_rgb(tmp_path / "nope.jpg")


def test_fit_resizes_only_when_needed() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    assert images.fit(frame, 480, 640) is frame
    assert images.fit(frame, 224, 224).shape == (224, 224, 3)
    assert images.fit(np.zeros((10, 10, 3), np.uint8), 32, 48).shape == (32, 48, 3)


def test_expand_paths_walks_folders_for_images_only(tmp_path: Path, jpeg: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "b.PNG").write_bytes(b"x")
    (sub / ".DS_Store").write_bytes(b"x")
    (sub / "notes.txt").write_text("x")
    explicit = tmp_path / "explicit.txt"
    assert images.expand_paths([tmp_path, explicit]) == [jpeg, sub / "b.PNG", explicit]


def test_a_jpeg_with_data_after_its_end_marker_is_fine(jpeg: Path) -> None:
    trailer = jpeg.read_bytes() + b"\x00" * 10_000  # what Motion Photos and some cameras append
    assert images.decode_rgb(trailer).shape == (96, 96, 3)
