"""The size an image declares, read from its header before any decoding, on real JPEG and PNG bytes made
by OpenCV and on crafted and corrupt ones: a few bytes claiming a huge frame are refused at no cost."""

from __future__ import annotations

import time
import zlib

import cv2
import numpy as np
import pytest

from common import images
from tests.support.fuzz import jpeg_claiming

PICTURE = np.random.default_rng(7).integers(0, 256, (37, 53, 3), np.uint8)


def encoded(ext: str, *params: int, picture: np.ndarray = PICTURE) -> bytes:
    return cv2.imencode(ext, picture, list(params))[1].tobytes()


def png_claiming(png: bytes, height: int, width: int) -> bytes:
    """The same PNG with an IHDR that claims another size (its CRC fixed, as a careful attacker would)."""
    ihdr = b"IHDR" + width.to_bytes(4, "big") + height.to_bytes(4, "big") + png[24:29]
    return png[:12] + ihdr + zlib.crc32(ihdr).to_bytes(4, "big") + png[33:]


@pytest.mark.parametrize(
    "data",
    [
        encoded(".jpg"),
        encoded(".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
        encoded(".jpg", picture=cv2.cvtColor(PICTURE, cv2.COLOR_RGB2GRAY)),
        encoded(".png"),
        encoded(".png", picture=cv2.cvtColor(PICTURE, cv2.COLOR_RGB2GRAY)),
    ],
    ids=["baseline-jpeg", "progressive-jpeg", "grey-jpeg", "png", "grey-png"],
)
def test_the_declared_size_is_the_decoded_size(data: bytes) -> None:
    assert images.image_size(data) == images.decode_rgb(data).shape[:2] == (37, 53)
    assert images.check(data, max_side=53) == (37, 53)
    with pytest.raises(images.ImageTooLarge, match="53x37"):
        images.check(data, max_side=52)


@pytest.mark.parametrize(
    "crafted", [jpeg_claiming(encoded(".jpg"), 8192, 8192), png_claiming(encoded(".png"), 8192, 8192)]
)
def test_a_header_claiming_a_huge_frame_is_refused_before_decoding(crafted: bytes) -> None:
    assert images.image_size(crafted) == (8192, 8192)
    start = time.monotonic()
    with pytest.raises(images.ImageTooLarge, match="8192x8192"):
        images.check(crafted, max_side=4096)
    with pytest.raises(images.ImageTooLarge):
        images.decode_rgb(crafted, max_pixels=4096 * 4096)
    assert time.monotonic() - start < 0.05, "refused without decoding"


def test_within_the_limit_a_lying_header_costs_an_eighth_of_a_decode() -> None:
    """4096x4096 declared on a 53x37 picture: a 512x512 decode, milliseconds and under a megabyte."""
    start = time.monotonic()
    assert images.check(jpeg_claiming(encoded(".jpg"), 4096, 4096), max_side=4096) == (4096, 4096)
    assert time.monotonic() - start < 0.5


JPEG = encoded(".jpg")
SOF = JPEG.index(b"\xff\xc0")
SOS = JPEG.index(b"\xff\xda")


CORRUPT = {
    "empty": b"",
    "soi-only": b"\xff\xd8",
    "short-frame-header": JPEG[: SOF + 6],
    "no-frame-header": JPEG[:SOF] + JPEG[SOS:],  # a scan with no frame header before it
    "garbage": JPEG[:SOF] + b"\x00garbage" + JPEG[SOF:],  # not a marker where one must be
    "zero-height": jpeg_claiming(JPEG, 0, 53),  # the height left to a DNL marker: no size declared
    "short-ihdr": encoded(".png")[:20],
    "no-ihdr": encoded(".png")[:12] + b"IDAT" + encoded(".png")[16:],
    "gif": b"GIF89a" + bytes(20),
    "noise": np.random.default_rng(1).bytes(200),
}


@pytest.mark.parametrize("corrupt", CORRUPT.values(), ids=CORRUPT.keys())
def test_no_declared_size_is_no_image(corrupt: bytes) -> None:
    assert images.image_size(corrupt) in (None, (0, 53))
    with pytest.raises(images.ImageError) as refused:
        images.check(corrupt, max_side=4096)
    assert type(refused.value) is images.ImageError


@pytest.mark.parametrize("cut", [len(JPEG) // 2, len(JPEG) - 2])
def test_a_truncated_jpeg_declares_its_size_but_is_no_image(cut: int) -> None:
    assert images.image_size(JPEG[:cut]) == (37, 53)
    with pytest.raises(images.ImageError, match="truncated"):
        images.check(JPEG[:cut], max_side=4096)
