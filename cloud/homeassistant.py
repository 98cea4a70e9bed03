"""Home Assistant MQTT discovery, opt-in (`serve --homeassistant-discovery`): a Home Assistant device for each
edge device the store knows, with sensors for its state, last label, fps and confidence, as Frigate's users
have theirs. A pass every --homeassistant-interval-s reads what the aggregator already keeps (the devices'
rows: their last status and telemetry; the rollups of the last --metrics-window-s) and publishes, retained,
what changed since the last pass: the sensors' discovery configs of a device new to it, and each device's
state. The pass bounds the rate whatever the devices send, and a state that did not change is not sent again.
After a reconnect everything is sent again (a broker without persistence forgets retained messages). The
entities are unavailable while this publisher is gone (its last will) and, but for the state sensor, while
their device is offline."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from cloud.aggregator.windows import DeviceWindow, fleet_windows
from cloud.store import Database
from cloud.store import devices as device_store
from common import protocol
from common.mqtt.client import make_client
from common.mqtt.url import BrokerAddress

log = logging.getLogger(__name__)

MANUFACTURER = "edgeloop"
ONLINE, OFFLINE = protocol.Availability(state="online"), protocol.Availability(state="offline")
STOP_TIMEOUT_S = 5  # beyond a pass under way


def template(key: str) -> str:
    """Home Assistant's template reading one key of a JSON payload."""
    return f"{{{{ value_json.{key} }}}}"


@dataclass(frozen=True)
class Sensor:
    """How Home Assistant shows one field of protocol.DeviceState."""

    name: str
    icon: str
    unit: str | None = None
    measurement: bool = False  # a number Home Assistant keeps statistics of
    needs_device: bool = True  # unavailable while the device is offline (its state sensor says so instead)


SENSORS = {
    "state": Sensor("State", "mdi:lan-connect", needs_device=False),
    "label": Sensor("Last label", "mdi:tag"),
    "fps": Sensor("FPS", "mdi:speedometer", unit="fps", measurement=True),
    "confidence": Sensor("Confidence", "mdi:gauge", measurement=True),
}


class HomeAssistant(threading.Thread):
    def __init__(
        self,
        db: Database,
        address: BrokerAddress,
        topics: protocol.Topics,
        client_id: str,
        interval_s: float,
        window_s: float,
    ) -> None:
        super().__init__(name="homeassistant", daemon=True)
        self.db, self.address, self.topics = db, address, topics
        self.interval_s, self.window_s = interval_s, window_s
        self.availability = topics.topic(protocol.HA_AVAILABILITY)
        self._sent: dict[str, bytes] = {}  # topic -> the payload last published there on this connection
        self._labels: dict[str, str] = {}  # device -> its newest label: a window without predictions keeps it
        self._connected = threading.Event()  # set by each (re)connection, cleared by the pass that sends all again
        self._stopping = threading.Event()
        self._client = make_client(address, client_id)
        self._client.will_set(self.availability, **self._message(protocol.HA_AVAILABILITY, OFFLINE.encode()))
        self._client.on_connect = self._on_connect

    def start(self) -> None:
        self._client.connect_async(self.address.host, self.address.port, 30)
        self._client.loop_start()
        super().start()

    def stop(self) -> None:
        """Leaves asking the broker for its last will (MQTT v5), which says offline: a plain disconnect drops it."""
        self._stopping.set()
        self.join(timeout=STOP_TIMEOUT_S + self.interval_s)
        self._client.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"))
        self._client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the Home Assistant publisher: %s", reason_code)
            return
        log.info("Home Assistant discovery: publishing under %s/ to %s", self.topics.discovery_prefix, self.address)
        client.publish(self.availability, **self._message(protocol.HA_AVAILABILITY, ONLINE.encode()))
        self._connected.set()

    def run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            if not self._client.is_connected():
                continue
            try:
                self.publish()
            except Exception as exc:  # the store away, a bad row: the next pass tries again
                log.warning("publishing to Home Assistant failed: %r", exc)

    def publish(self) -> int:
        """One pass: what changed since the last (everything, after a reconnection); returns the messages sent."""
        if self._connected.is_set():
            self._connected.clear()
            self._sent.clear()
        fleet = device_store.fleet(self.db)
        windows = fleet_windows(self.db, [d.device_id for d in fleet], time.time() - self.window_s)
        sent, configs = 0, 0
        for device in fleet:
            try:
                messages = list(self._messages(device, windows[device.device_id]))
            except ValueError as exc:  # a row the sensors cannot describe: that device waits, the others go on
                log.warning("Home Assistant: device %r skipped: %s", device.device_id, exc)
                continue
            for kind, topic, payload in messages:
                if self._sent.get(topic) != payload:
                    self._client.publish(topic, **self._message(kind, payload))
                    self._sent[topic] = payload
                    sent += 1
                    configs += kind is protocol.HA_DISCOVERY
        if configs:
            log.info("Home Assistant discovery: %d sensor configs published or changed", configs)
        return sent

    def _messages(
        self, device: device_store.FleetDevice, window: DeviceWindow
    ) -> Iterator[tuple[protocol.Kind[Any], str, bytes]]:
        """The device's sensors' discovery configs, then its state."""
        state_topic = self.topics.topic(protocol.HA_STATE, device_id=device.device_id)
        node = self.topics.node(device.device_id)
        for key, sensor in SENSORS.items():
            topic = self.topics.topic(protocol.HA_DISCOVERY, node_id=node, sensor=key)
            yield protocol.HA_DISCOVERY, topic, self._config(device, node, key, sensor, state_topic).encode()
        if window.last_label is not None:
            self._labels[device.device_id] = window.last_label
        mean = window.total.mean
        state = protocol.DeviceState(
            state=device.state,
            label=self._labels.get(device.device_id),
            fps=device.fps,
            confidence=None if mean is None else round(mean, 4),
        )
        yield protocol.HA_STATE, state_topic, state.encode()

    def _config(
        self, device: device_store.FleetDevice, node: str, key: str, sensor: Sensor, state_topic: str
    ) -> protocol.SensorDiscovery:
        available = [protocol.DiscoveryAvailability(topic=self.availability, value_template=template("state"))]
        if sensor.needs_device:
            available.append(protocol.DiscoveryAvailability(topic=state_topic, value_template=template("state")))
        model = f"{device.model_name} {device.model_version}" if device.model_name else None
        return protocol.SensorDiscovery(
            name=sensor.name,
            unique_id=f"{node}_{key}",
            state_topic=state_topic,
            value_template=template(key),
            availability=available,
            device=protocol.DiscoveryDevice(
                identifiers=[node], name=device.device_id, manufacturer=MANUFACTURER, sw_version=model
            ),
            origin=protocol.DiscoveryOrigin(name=MANUFACTURER),
            icon=sensor.icon,
            unit_of_measurement=sensor.unit,
            state_class="measurement" if sensor.measurement else None,
        )

    @staticmethod
    def _message(kind: protocol.Kind[Any], payload: bytes) -> dict[str, Any]:
        """paho's publish (or will_set) arguments past the topic: the payload, and QoS and retain from the table."""
        return {"payload": payload, "qos": kind.qos, "retain": kind.retain}
