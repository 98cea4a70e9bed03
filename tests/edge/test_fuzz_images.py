"""Hostile image bytes against the decoder every backend and the retrainer share: a valid RGB image
or ImageError, never another exception, and never gigabytes for a header that lies about its size."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from common import images
from tests.support.data import encode_jpeg, synthetic_image
from tests.support.fuzz import FUZZ, jpeg_claiming, mutations

JPEG = encode_jpeg(synthetic_image("green", np.random.default_rng(1), size=48))


def _decodes_or_refuses(data: bytes) -> None:
    try:
        rgb = images.decode_rgb(data)
    except images.ImageError:
        return
    assert rgb.dtype == np.uint8
    assert rgb.ndim == 3
    assert rgb.shape[2] == 3


@FUZZ
@given(data=mutations(JPEG))
@example(data=JPEG[:-2])
@example(data=b"\xff\xd8\xff\xd9")
def test_mutated_jpegs_decode_or_raise_image_error(data: bytes) -> None:
    _decodes_or_refuses(data)


@FUZZ
@given(data=st.binary(max_size=200).map(lambda tail: b"\xff\xd8" + tail) | st.binary(max_size=200))
def test_random_bytes_decode_or_raise_image_error(data: bytes) -> None:
    _decodes_or_refuses(data)


@FUZZ
@given(data=mutations(JPEG))
def test_jpeg_size_reads_headers_without_failing(data: bytes) -> None:
    size = images.jpeg_size(data)
    assert size is None or all(0 <= side < 2**16 for side in size)


def test_jpeg_size_is_the_decoded_size() -> None:
    assert images.jpeg_size(JPEG) == images.decode_rgb(JPEG).shape[:2] == (48, 48)


def test_a_jpeg_claiming_a_huge_frame_is_refused_before_decoding() -> None:
    """A 16000x16000 header on a 48x48 picture: OpenCV would spend seconds and 1.5 GB on its grey pixels."""
    start = time.monotonic()
    with pytest.raises(images.ImageError, match="16000x16000"):
        images.decode_rgb(jpeg_claiming(JPEG, 16000, 16000))
    assert time.monotonic() - start < 0.5
