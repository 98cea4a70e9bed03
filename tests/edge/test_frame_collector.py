"""The batch collector: one frame from each camera that has one (of its newest two), a short wait for the live cameras'
stragglers, never a wait for a camera that stopped delivering, and an end when every source ended."""

import queue
import threading
import time

import numpy as np
import pytest

from edge import frame_collector
from edge.frame_collector import Collector
from edge.sources.base import EndOfStream, Source
from tests.support.waiting import wait_for

END = object()


class Pushed(Source):
    """A camera whose frames the test hands over (at the hardware edge: nothing else is faked)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"test://{name}")
        self.frames: queue.Queue = queue.Queue()

    def open(self) -> None:
        pass

    def read(self) -> np.ndarray:
        frame = self.frames.get()
        if frame is END:
            raise EndOfStream(self.uri)
        return frame

    def push(self, value: int) -> None:
        self.frames.put(np.full((2, 2, 3), value, np.uint8))


@pytest.fixture
def collector():
    """collector(names, wait_s): a Collector over started captures of Pushed sources, ended afterwards."""
    made: list[Pushed] = []

    def make(names: str, wait_s: float) -> tuple[Collector, list[Pushed]]:
        sources = [Pushed(name) for name in names]
        made.extend(sources)
        batcher = Collector(wait_s)
        for source in sources:
            batcher.add(source, False, source.uri).start()
        return batcher, sources

    yield make
    for source in made:
        source.frames.put(END)


def values(batch) -> list[tuple[int, int]]:
    return [(index, int(frame.image[0, 0, 0])) for index, frame in batch]


def test_one_frame_from_each_ready_camera_and_the_newest_two_of_each(collector) -> None:
    batcher, (a, b, _) = collector("abc", wait_s=0.0)
    a.push(1)
    for value in (2, 3, 4):  # b holds its newest two: 2 is dropped
        b.push(value)
    wait_for(lambda: batcher.captures[1].counts["frames"] == 3, 5, "b's frames")
    assert values(batcher.collect(1.0)) == [(0, 1), (1, 3)]
    assert values(batcher.collect(1.0)) == [(1, 4)], "the second of b's burst goes in the next batch"
    assert batcher.captures[1].counts["dropped"] == 1
    assert batcher.collect(0.05) == [], "nothing new: nothing after the timeout"


def test_a_straggler_is_waited_for_at_most_the_bound(collector) -> None:
    batcher, (a, b) = collector("ab", wait_s=0.3)
    a.push(1)
    b.push(1)
    wait_for(lambda: all(c.ready for c in batcher.captures), 5, "a first frame of each")
    assert len(batcher.collect(0.1)) == 2
    a.push(2)
    threading.Timer(0.05, b.push, (2,)).start()
    assert values(batcher.collect(1.0)) == [(0, 2), (1, 2)], "b's frame 50 ms later joins the batch"
    a.push(3)
    start = time.monotonic()
    assert values(batcher.collect(1.0)) == [(0, 3)]
    assert 0.25 < time.monotonic() - start < 0.8, "b missed the batch after the bound, not the timeout"


def test_a_camera_that_stopped_delivering_is_not_waited_for(collector, monkeypatch) -> None:
    monkeypatch.setattr(frame_collector, "STALE_S", 0.05)
    batcher, (a, b) = collector("ab", wait_s=2.0)
    a.push(1)
    b.push(1)
    wait_for(lambda: batcher.captures[1].ready, 5, "b's frame")
    batcher.collect(0.1)
    time.sleep(0.1)  # b goes quiet for longer than STALE_S
    a.push(2)
    start = time.monotonic()
    assert values(batcher.collect(1.0)) == [(0, 2)]
    assert time.monotonic() - start < 0.5, "no wait for a camera that is gone"


def test_the_end_comes_when_every_source_ended(collector) -> None:
    batcher, (a, b) = collector("ab", wait_s=0.0)
    a.frames.put(END)
    wait_for(lambda: batcher.captures[0].ended, 5, "a to end")
    assert not batcher.ended, "b still runs"
    b.push(7)
    b.frames.put(END)
    wait_for(lambda: batcher.captures[1].counts["frames"] == 1, 5, "b's last frame")
    assert values(batcher.collect(1.0)) == [(1, 7)], "a last frame is handed over before the end"
    wait_for(lambda: batcher.ended, 5, "the end")
    assert batcher.collect(5.0) == []


def test_frames_are_resized_to_the_model_in_their_capture_thread(collector) -> None:
    batcher, (a,) = collector("a", wait_s=0.0)
    batcher.size = (1, 3)
    a.push(5)
    [(_, frame)] = batcher.collect(1.0)
    assert frame.image.shape == (2, 2, 3), "the whole frame is kept for samples and the preview"
    assert frame.model_input.shape == (1, 3, 3)
    assert int(frame.model_input[0, 0, 0]) == 5
