"""A real Mosquitto broker for the tests, on a free port, with persistence so that a restart keeps
sessions and queued messages; and a subscriber that records what arrives, independent of ours."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.ports import free_port
from tests.support.waiting import wait_for


class Mosquitto:
    """A broker with the tests' own configuration or, given `config` and the `port` it listens on, with that;
    `also`: the config's other listeners' ports, which start() waits for too (Mosquitto opens them one by one)."""

    def __init__(
        self, workdir: Path, config: str | None = None, port: int | None = None, also: tuple[int, ...] = ()
    ) -> None:
        if not shutil.which("mosquitto"):
            raise RuntimeError("mosquitto is not installed (make test installs it)")
        self.dir = workdir
        self.port = port or free_port()
        self._ports = (self.port, *also)
        self.url = f"mqtt://127.0.0.1:{self.port}"
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            config
            or f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {workdir / 'data'}/\nuser root\nmax_queued_messages 0\n"
            f"log_dest file {workdir / 'mosquitto.log'}\n"
        )
        self._proc: subprocess.Popen | None = None

    def start(self) -> Mosquitto:
        self._proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)], stderr=subprocess.PIPE)
        for port in self._ports:
            wait_for(lambda port=port: _accepting(port), 10, f"mosquitto on port {port}")
        return self

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)


class Recorder:
    """A paho subscriber with a persistent session that records every message it receives."""

    def __init__(self, url: str, topic: str, client_id: str = "test-recorder") -> None:
        port = int(url.rsplit(":", 1)[1])
        self.messages: list[mqtt.MQTTMessage] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.reconnect_delay_set(0.2, 1)
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, keepalive=5, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def on(self, suffix: str) -> list[mqtt.MQTTMessage]:
        with self._lock:
            return [m for m in self.messages if m.topic.endswith(suffix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _accepting(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
