"""Fixtures of the edge runtime's tests: a video to run on, and a recorder on a real broker."""

from pathlib import Path

import pytest

from tests.support.broker import Mosquitto, Recorder
from tests.support.data import write_video
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "colours.avi", frames=30)


@pytest.fixture
def recorder(broker: Mosquitto):
    rec = Recorder(broker.url, "edgeloop/#")
    wait_for(rec.client.is_connected, 10, "the recorder to connect")
    yield rec
    rec.close()
