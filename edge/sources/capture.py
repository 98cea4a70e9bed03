"""Capture in its own thread, holding up to DEPTH frames until they are taken, oldest first. A live
source keeps its newest DEPTH frames: a frame is dropped (and counted) only when DEPTH newer ones
arrived before it was taken, so two frames that come together while a batch runs (a capture thread
that read its socket late, a network that bunched them) are both classified, the second in the next
batch, and a consumer that falls behind still gets frames at most one frame old. A file hands over
every frame, decoding the next one while inference runs. A source
that fails is reopened with backoff; bad frames are skipped and counted; nothing stops capture
but the end of a file (unless looping) or `stop()`."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from edge.sources.base import BadFrame, EndOfStream, Frame, Source

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 10.0
DEPTH = 2  # frames held per camera: one arriving while a batch runs, and the next


class Capture:
    def __init__(
        self,
        source: Source,
        loop: bool = False,
        name: str = "capture",
        on_frame: Callable[[], None] | None = None,
        prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        """`on_frame` is called (outside this capture's lock) after each new frame: a batch collector's wake-up.
        `prepare` makes each frame's `model_input` in this thread (OpenCV releases the GIL while it resizes),
        so the cameras' resizing runs beside inference instead of before it."""
        self.source = source
        self.loop = loop
        self._prepare = prepare
        self.counts = {"frames": 0, "dropped": 0, "bad_frames": 0, "reopens": 0}
        self.last_put = float("-inf")  # monotonic time of the last frame captured
        self._on_frame = on_frame
        self._frames: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._ended = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Capture:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop capturing; wait at most `timeout_s` for a source stuck in a read (the thread is a daemon)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=timeout_s)

    def next(self, timeout_s: float = 1.0) -> Frame | None:
        """The oldest frame held, or None if none came within the timeout or the stream has ended."""
        with self._cond:
            if not self._frames and not self._ended:
                self._cond.wait(timeout_s)
            frame = self._frames.popleft() if self._frames else None
            self._cond.notify_all()
            return frame

    def take(self) -> Frame | None:
        """The oldest frame held, without blocking."""
        with self._cond:
            frame = self._frames.popleft() if self._frames else None
            self._cond.notify_all()
            return frame

    @property
    def ready(self) -> bool:
        with self._cond:
            return bool(self._frames)

    @property
    def ended(self) -> bool:
        with self._cond:
            return self._ended and not self._frames

    def _put(self, frame: Frame) -> None:
        with self._cond:
            if not self.source.live:
                while len(self._frames) >= DEPTH and not self._stop.is_set():
                    self._cond.wait(0.1)
            if len(self._frames) >= DEPTH:
                self._frames.popleft()
                self.counts["dropped"] += 1
            self._frames.append(frame)
            self.counts["frames"] += 1
            self.last_put = time.monotonic()
            self._cond.notify_all()
        if self._on_frame is not None:
            self._on_frame()

    def _open(self) -> bool:
        """Open the source, retrying with backoff until it opens or capture is stopped."""
        delay = BACKOFF_MIN_S
        while not self._stop.is_set():
            try:
                self.source.open()
                log.log(logging.DEBUG if self.counts["frames"] else logging.INFO, "opened %s", self.source)
                return True
            except Exception as exc:  # SourceError, or whatever OpenCV or the OS raised
                log.warning("%s; retrying in %.1fs", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
        return False

    def _run(self) -> None:
        index = 0
        delay = BACKOFF_MIN_S
        try:
            while self._open():
                read_any = False
                try:
                    while not self._stop.is_set():
                        try:
                            image = self.source.read()
                        except BadFrame as exc:
                            self.counts["bad_frames"] += 1
                            log.warning("skipping a bad frame: %s", exc)
                            continue
                        ts = time.time()
                        self._put(Frame(image, ts, index, self._prepare(image) if self._prepare else None))
                        index += 1
                        read_any = True
                except EndOfStream:
                    if not self.loop or not read_any:
                        break
                except Exception as exc:  # SourceError, or an OpenCV error on a frame it could not convert
                    self.counts["reopens"] += 1
                    delay = BACKOFF_MIN_S if read_any else min(delay * 2, BACKOFF_MAX_S)
                    log.warning("%s; reopening in %.1fs", exc, delay)
                    self._stop.wait(delay)  # a source that opens but never delivers is not reopened in a busy loop
                finally:
                    self.source.close()
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()
            if self._on_frame is not None:
                self._on_frame()  # a collector waiting on this capture learns it ended
            log.info("capture of %s ended: %s", self.source, self.counts)
