"""Hostile retrain commands over MQTT: each message is counted once (accepted, rejected,
unknown_model), a valid one queues its model's training, and none raises in paho's thread."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from paho.mqtt.client import MQTTMessage

from cloud.store import connect
from cloud.training.commands import RetrainCommands
from cloud.training.jobs import Jobs
from common import protocol
from common.mqtt import url
from tests.support.fuzz import FUZZ, mutations, objects_like

VALID = protocol.RetrainRequest(model="flowers", reason="a person asked").encode()


@pytest.fixture(scope="module")
def commands(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("commands")
    (data / "datasets/flowers").mkdir(parents=True)
    db = connect(f"sqlite:///{data / 'edgeloop.db'}")
    topics = protocol.Topics()
    yield RetrainCommands(Jobs(db), data, url.parse("mqtt://localhost:1"), topics, "fuzz"), Jobs(db)
    db.close()


def _message(payload: bytes) -> MQTTMessage:
    message = MQTTMessage(topic=protocol.Topics().retrain().encode())
    message.payload = payload
    return message


@FUZZ
@given(
    payload=st.binary(max_size=200)
    | mutations(VALID)
    | objects_like(["model", "reason"]).map(lambda value: json.dumps(value).encode())
)
@example(payload=b'{"model": "../../etc"}')
@example(payload=b'{"model": "flowers", "reason": "' + b"\\n" * 50 + b'"}')
@example(payload=b'{"model": "nowhere"}')
@example(payload=VALID)
def test_every_command_is_counted_once_and_none_raises(commands, payload: bytes) -> None:
    handler, jobs = commands
    before = handler.counts.copy()
    handler._on_message(None, None, _message(payload))
    counted = handler.counts - before
    assert counted.total() == 1
    assert set(counted) <= {"accepted", "rejected", "unknown_model"}
    if "accepted" in counted:
        assert protocol.RetrainRequest.decode(payload).model == "flowers"
        assert jobs.active("flowers") is not None
