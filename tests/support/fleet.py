"""A simulated fleet for the cloud's tests and benchmarks: predictions as devices send them, alone
(schema 1) or in batches (schema 2), published straight to the broker at QoS 1, every return code checked."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from common import protocol

MAX_OUTSTANDING = 50_000
REMEMBERED = 200_000  # capture times of the newest predictions sent, for their resends


def prediction(
    device_id: str, seq: int, label: str = "daisy", score: float = 0.9, version: str = "1", camera: str | None = None
) -> bytes:
    return predicted(device_id, seq, label, score, version, camera).encode()


def batch(
    device_id: str, seqs: Iterable[int], label: str = "daisy", score: float = 0.9, camera: str | None = None
) -> bytes:
    """A schema 2 message holding a prediction for each seq."""
    items = [predicted(device_id, seq, label, score, camera=camera).batched() for seq in seqs]
    return protocol.batch_payload(device_id, items)


def predicted(
    device_id: str,
    seq: int,
    label: str = "daisy",
    score: float = 0.9,
    version: str = "1",
    camera: str | None = None,
    ts: float | None = None,
) -> protocol.Prediction:
    return protocol.Prediction(
        device_id=device_id,
        seq=seq,
        ts=time.time() if ts is None else ts,
        camera=camera,
        model=protocol.ModelRef(name="flowers", version=version),
        top_k=[protocol.Score(label=label, score=score), protocol.Score(label="roses", score=round(1 - score, 6))],
        latency_ms=protocol.Latency(infer=2.0, total=4.0),
    )


class Publisher:
    def __init__(self, port: int, client_id: str = "test-fleet") -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(1000)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self._captured: dict[tuple[str, int], float] = {}

    def captured(self, device_id: str, seq: int) -> float:
        """When the prediction was first sent: a resend carries it, as a device's outbox does (on PostgreSQL
        exactly-once holds per (device_id, seq, ts))."""
        key = (device_id, seq)
        if key not in self._captured:
            self._captured[key] = time.time()
            if len(self._captured) > REMEMBERED:
                del self._captured[next(iter(self._captured))]
        return self._captured[key]

    def send(self, topic: str, payload: bytes, qos: int = 1, properties=None) -> mqtt.MQTTMessageInfo:
        info = self.client.publish(topic, payload, qos, properties=properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish failed: {mqtt.error_string(info.rc)}")
        return info

    def send_predictions(
        self,
        device_id: str,
        seqs,
        topics: protocol.Topics | None = None,
        per_message: int = 1,
        camera: str | None = None,
    ) -> None:
        """Each seq's prediction (seen by `camera`, when named); `per_message` above 1: in batches of that
        many consecutive seqs."""
        topic = (topics or protocol.Topics()).predictions(device_id)
        seqs = iter(seqs)
        self.send_all(
            (topic, self._payload(device_id, chunk, camera, alone=per_message == 1))
            for chunk in iter(lambda: list(itertools.islice(seqs, per_message)), [])
        )

    def _payload(self, device_id: str, seqs: list[int], camera: str | None, alone: bool) -> bytes:
        """A prediction alone (schema 1) or a batch (schema 2), each carrying its first send's capture time."""
        sent = [predicted(device_id, seq, camera=camera, ts=self.captured(device_id, seq)) for seq in seqs]
        return sent[0].encode() if alone else protocol.batch_payload(device_id, [p.batched() for p in sent])

    def send_all(self, messages: Iterable[tuple[str, bytes]]) -> int:
        """Publish each (topic, payload) at QoS 1; returns, once the broker acknowledged them all, how many."""
        infos: deque[mqtt.MQTTMessageInfo] = deque()
        sent = 0
        for topic, payload in messages:
            if len(infos) >= MAX_OUTSTANDING:  # message ids are 16 bits: never more unacknowledged than that
                infos.popleft().wait_for_publish(timeout=60)
            infos.append(self.send(topic, payload))
            sent += 1
        for info in infos:
            info.wait_for_publish(timeout=60)
        return sent

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
