"""Batches across cameras: once any camera's frame is ready, wait a little (at most `wait_s`) for the
other live cameras' frames, then hand over one frame from every camera that has one, to be classified
in one inference call. A camera that stopped delivering (gone for STALE_S) is not waited for, so one
failing camera never holds the others back; each batch takes at most one frame per camera (the oldest
it holds: a second one goes in the next batch), so a fast camera cannot starve a slow one."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from common import images
from edge.sources.base import Frame, Source
from edge.sources.capture import Capture

log = logging.getLogger(__name__)

STALE_S = 1.0  # a camera without a frame for this long is not waited for


class Collector:
    def __init__(self, wait_s: float, size: tuple[int, int] | None = None) -> None:
        """`size`: the model's input (height, width), each frame resized to it in its capture's thread."""
        self.captures: list[Capture] = []
        self.wait_s = wait_s
        self.size = size  # a model swap sets the new model's
        self._cond = threading.Condition()

    def add(self, source: Source, loop: bool, name: str) -> Capture:
        """A capture of `source` (not started) whose frames this collector batches."""
        capture = Capture(source, loop, f"capture-{name}", self.wake, self._fit)
        self.captures.append(capture)
        return capture

    def _fit(self, image: np.ndarray) -> np.ndarray:
        return image if self.size is None else images.fit(image, *self.size)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    @property
    def ended(self) -> bool:
        """Every camera's source has ended (files that are not looped) and nothing is left to take."""
        return all(capture.ended for capture in self.captures)

    def _awaited(self, now: float) -> list[Capture]:
        """The cameras worth waiting for: delivering lately and not ended."""
        return [c for c in self.captures if now - c.last_put < STALE_S and not c.ended]

    def collect(self, timeout_s: float) -> list[tuple[int, Frame]]:
        """(camera index, frame) for each camera with a frame; empty when none came within `timeout_s`
        or every source has ended."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not any(c.ready for c in self.captures):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.ended:
                    return []
                self._cond.wait(remaining)
            if self.wait_s > 0 and len(self.captures) > 1:
                until = time.monotonic() + self.wait_s
                while not all(c.ready for c in self._awaited(time.monotonic())):
                    remaining = until - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
        return [(i, frame) for i, capture in enumerate(self.captures) if (frame := capture.take()) is not None]
