"""What every video source offers: open, read one RGB frame, close. Sources are plain and
blocking; edge/sources/capture.py runs them in a thread and handles reopening."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from common.redact import redact


class SourceError(Exception):
    """A source that cannot be opened or read right now (a camera unplugged, a stream gone)."""


class EndOfStream(Exception):
    """A file or folder has no more frames."""


class BadFrame(Exception):
    """One frame that could not be decoded; the next may be fine."""


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # RGB uint8
    ts: float  # capture time, Unix seconds
    index: int
    model_input: np.ndarray | None = None  # the image at the model's input size, resized by the capture thread


class Source(ABC):
    #: A live source (camera, stream) drops stale frames; a file hands over every frame.
    live: bool = True

    def __init__(self, uri: str) -> None:
        self.uri = uri

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def read(self) -> np.ndarray:
        """The next RGB frame; raises SourceError, EndOfStream or BadFrame."""

    def close(self) -> None:  # noqa: B027 - most sources have nothing to release
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact(self.uri)})"
