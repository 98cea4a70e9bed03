"""Image decoding and resizing shared by the retrainer and every backend, so both see the same pixels."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

RESIZE = "bilinear"  # part of the bottleneck cache's key: change it and cached features are recomputed
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"


class ImageError(ValueError):
    """An image that cannot be decoded: corrupt, truncated, or not an image at all."""


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def decode_rgb(data: bytes) -> np.ndarray:
    """Decode encoded bytes to an RGB uint8 array; a truncated JPEG is an error, not a grey half-image."""
    if not data:
        raise ImageError("empty file")
    if data.startswith(_JPEG_START) and data.rfind(_JPEG_END) < len(_JPEG_START):
        raise ImageError("truncated JPEG (no end-of-image marker)")
    try:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageError(f"not a decodable image: {exc}") from exc
    if bgr is None:
        raise ImageError("not a decodable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_rgb(path: Path) -> np.ndarray:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read: {exc.strerror}") from exc
    return decode_rgb(data)


def fit(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an RGB frame to the model's input size. Bilinear, as TensorFlow and jetson-inference
    resize: a tenth of the cost of area averaging (0.1 ms against 1.4 ms for 640x480 here)."""
    if frame.shape[:2] == (height, width):
        return frame
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, folders walked recursively for image files, in a stable order."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p)))
        else:
            found.append(path)
    return found
