"""MQTT v5 clients for the broker tests, made by the edge's own make_client (TLS, credentials), that keep the
broker's answers: CONNACK, PUBACK and SUBACK reason codes, disconnections, and every message received."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from common.mqtt.client import connect_properties, make_client, publish_properties
from common.mqtt.url import BrokerAddress
from tests.support.waiting import wait_for

TIMEOUT_S = 10


class Client:
    def __init__(
        self,
        port: int,
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
        client_id: str | None = None,
        session_expiry_s: int = 0,
        cert_file: Path | None = None,
    ) -> None:
        address = BrokerAddress("127.0.0.1", port, ca_file is not None, username, password, ca_file, cert_file)
        self.client = make_client(address, client_id or f"test-{uuid.uuid4().hex[:8]}")
        self.connack: ReasonCode | None = None
        self.acks: dict[int, ReasonCode] = {}
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.messages: list[mqtt.MQTTMessage] = []
        self.disconnects: list[ReasonCode] = []
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_publish = lambda _c, _u, mid, code, _p: self._keep(self.acks, mid, code)
        self.client.on_subscribe = lambda _c, _u, mid, codes, _p: self._keep(self.subacks, mid, codes)
        self.client.on_message = lambda _c, _u, message: self._keep_message(message)
        self.client.on_disconnect = lambda _c, _u, _flags, code, _p: self.disconnects.append(code)
        self.client.connect(
            "127.0.0.1", port, keepalive=5, clean_start=session_expiry_s == 0,
            properties=connect_properties(session_expiry_s),
        )  # fmt: skip
        self.client.loop_start()
        wait_for(lambda: self.connack is not None, TIMEOUT_S, f"a CONNACK on port {port}")

    def _on_connect(self, client, _userdata, _flags, code: ReasonCode, _properties) -> None:
        self.connack = code
        if code.is_failure:  # refused: no retrying for the rest of the session (and logging after its test)
            client.disconnect()

    def _keep(self, answers: dict, mid: int, code: object) -> None:
        with self._lock:
            answers[mid] = code

    def _keep_message(self, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(message)

    @property
    def refused(self) -> bool:
        return self.connack is not None and self.connack.is_failure

    def publish(self, topic: str, payload: bytes | str, wait: bool = True, **properties: object) -> int:
        """Publish at QoS 1; returns the message id (its PUBACK lands in `acks`, awaited unless told not to)."""
        props = publish_properties(**properties) if properties else None
        info = self.client.publish(topic, payload, qos=1, properties=props)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish to {topic} failed: {mqtt.error_string(info.rc)}"
        if wait:
            wait_for(lambda: info.mid in self.acks, TIMEOUT_S, f"the PUBACK of {topic}")
        return info.mid

    def ack(self, topic: str, payload: bytes | str = b"{}", **properties: object) -> ReasonCode:
        """Publish at QoS 1 and return the broker's PUBACK reason code."""
        return self.acks[self.publish(topic, payload, **properties)]

    def subscribe(self, topic: str) -> ReasonCode:
        _, mid = self.client.subscribe(topic, qos=1)
        wait_for(lambda: mid in self.subacks, TIMEOUT_S, f"the SUBACK of {topic}")
        return self.subacks[mid][0]

    def received(self, topic: str) -> list[mqtt.MQTTMessage]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
