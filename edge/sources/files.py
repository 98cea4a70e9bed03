"""A folder of images as a video: every image in name order, corrupt ones skipped and counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common import images
from edge.sources.base import BadFrame, EndOfStream, Source, SourceError


class ImageFolderSource(Source):
    live = False

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self.path = Path(uri.removeprefix("file://"))
        self._paths: list[Path] = []
        self._next = 0

    def open(self) -> None:
        self._paths = images.expand_paths([self.path])
        if not self._paths:
            raise SourceError(f"no images in {self.path}")
        self._next = 0

    def read(self) -> np.ndarray:
        if self._next >= len(self._paths):
            raise EndOfStream(str(self))
        path = self._paths[self._next]
        self._next += 1
        try:
            return images.read_rgb(path)
        except images.ImageError as exc:
            raise BadFrame(f"{path}: {exc}") from exc
