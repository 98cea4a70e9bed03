"""Fixtures of the edge runtime's tests: a video to run on, and a recorder on a real broker."""

from pathlib import Path

import pytest

from tests.broker import Mosquitto, Recorder, wait_for
from tests.makedata import write_video


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "colours.avi", frames=30)


@pytest.fixture
def recorder(broker: Mosquitto):
    rec = Recorder(broker.url, "edgeloop/#")
    wait_for(rec.client.is_connected, 10, "the recorder to connect")
    yield rec
    rec.close()
