"""The check that a chart a command drew is a real picture, not an empty canvas."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def assert_real_chart(path: Path, size: tuple[int, int] = (1200, 500)) -> None:
    """A PNG that opens at the size it was drawn at and holds more than a blank canvas."""
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == size
        pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
    assert pixels.std() > 10
