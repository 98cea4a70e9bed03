"""Each Mosquitto configuration in deploy/mosquitto/, started by a real Mosquitto: the development broker, the
production broker (TLS, password file, per-device ACLs, the aggregator's backlog kept) and the Jetson's broker
bridged to it, storing and forwarding across a cloud outage."""

from __future__ import annotations

import shutil
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
from paho.mqtt.reasoncodes import ReasonCode

from tests.support.broker import Mosquitto
from tests.support.certs import make_certs
from tests.support.mosquitto_configs import CONFIGS, start, write_passwords
from tests.support.mqtt_client import Client
from tests.support.waiting import wait_for

PASSWORDS = {"edgeloop-aggregator": "aggregator-secret", "cam-7": "cam-7-secret", "cam-8": "cam-8-secret"}
NOT_AUTHORIZED = 0x87
BACKLOG = 3000  # above Mosquitto's default of 1000 queued messages per session

pytestmark = pytest.mark.services  # each test starts Mosquitto


@dataclass
class Cloud:
    broker: Mosquitto
    internal: int  # plain MQTT, for the cloud service
    fleet: int  # TLS, for the devices
    ca: Path

    def device(self, device_id: str, password: str | None = None, **kwargs) -> Client:
        return Client(self.fleet, device_id, password or PASSWORDS[device_id], self.ca, **kwargs)

    def aggregator(self, **kwargs) -> Client:
        return Client(self.internal, "edgeloop-aggregator", PASSWORDS["edgeloop-aggregator"], **kwargs)


@pytest.fixture
def cloud(tmp_path):
    workdir = tmp_path / "cloud"
    ca, _, _ = make_certs(workdir / "config" / "certs")
    shutil.copy(CONFIGS / "acl", workdir / "config" / "acl")
    write_passwords(workdir / "config" / "passwd", PASSWORDS)
    broker, ports = start("cloud.conf", workdir, [8883, 1883])
    yield Cloud(broker, ports[1883], ports[8883], ca)
    broker.stop()


def code(value: int) -> ReasonCode:
    return ReasonCode(4, identifier=value)  # 4: PUBACK; 0x87 means "Not authorized" in PUBACK and SUBACK alike


def test_development_broker_takes_anonymous_clients(tmp_path):
    broker, ports = start("dev.conf", tmp_path, [1883])
    try:
        subscriber, device = Client(ports[1883]), Client(ports[1883])
        subscriber.subscribe("edgeloop/#")
        assert device.ack("edgeloop/devices/cam-7/predictions", b'{"seq": 1}') == 0
        wait_for(lambda: subscriber.received("edgeloop/devices/cam-7/predictions"), 5, "the prediction")
    finally:
        broker.stop()


def test_fleet_listener_needs_tls_with_the_broker_certificate(cloud, tmp_path):
    device = cloud.device("cam-7")
    assert not device.refused
    device.close()
    other_ca, _, _ = make_certs(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError):
        Client(cloud.fleet, "cam-7", PASSWORDS["cam-7"], other_ca)
    plain = Client(cloud.internal, "cam-7", PASSWORDS["cam-7"])
    assert not plain.refused, "the internal listener takes the same passwords"
    plain.close()


def test_unknown_clients_and_wrong_passwords_are_refused(cloud):
    assert cloud.device("cam-7", password="guess").refused
    assert Client(cloud.internal).refused, "anonymous clients are refused"
    assert Client(cloud.fleet, "cam-9", "whatever", cloud.ca).refused, "a user missing from the password file"


def test_a_device_publishes_only_under_its_own_topics(cloud):
    aggregator = cloud.aggregator()
    assert aggregator.subscribe("edgeloop/#") == 1
    cam7 = cloud.device("cam-7", client_id="edgeloop-cam-8")  # a client id cannot make it another device
    assert cam7.ack("edgeloop/devices/cam-7/predictions", b'{"seq": 1}') == 0
    assert cam7.ack("edgeloop/devices/cam-8/predictions", b'{"seq": 666}') == code(NOT_AUTHORIZED)
    assert cam7.ack("edgeloop/models/flowers", b'{"url": "http://evil/"}') == code(NOT_AUTHORIZED)
    assert cam7.ack("edgeloop/commands/retrain", b'{"model": "flowers"}') == code(NOT_AUTHORIZED)
    assert cam7.ack("edgeloop/devices/cam-7/status", b'{"state": "online"}') == 0
    wait_for(lambda: aggregator.received("edgeloop/devices/cam-7/status"), 5, "cam-7's status at the aggregator")
    assert [m.payload for m in aggregator.received("edgeloop/devices/cam-7/predictions")] == [b'{"seq": 1}']
    assert aggregator.received("edgeloop/devices/cam-8/predictions") == []
    assert aggregator.received("edgeloop/models/flowers") == []
    assert aggregator.received("edgeloop/commands/retrain") == []


def test_a_device_reads_announcements_and_its_commands_but_not_other_devices(cloud):
    cam7 = cloud.device("cam-7")
    assert cam7.subscribe("edgeloop/models/#") == 1
    assert cam7.subscribe("edgeloop/devices/cam-7/commands") == 1
    # Mosquitto grants a subscription and checks read access on each message it would deliver.
    assert cam7.subscribe("edgeloop/devices/cam-8/#") == 1
    assert cloud.device("cam-8").ack("edgeloop/devices/cam-8/predictions", b'{"seq": 1}') == 0
    aggregator = cloud.aggregator()
    assert aggregator.ack("edgeloop/models/flowers", b'{"version": "2"}') == 0
    assert aggregator.ack("edgeloop/devices/cam-8/commands", b'{"do": "reboot"}') == 0  # sent before cam-7's
    assert aggregator.ack("edgeloop/devices/cam-7/commands", b'{"do": "ping"}') == 0
    wait_for(lambda: cam7.received("edgeloop/devices/cam-7/commands"), 5, "cam-7's command")
    assert [m.payload for m in cam7.received("edgeloop/models/flowers")] == [b'{"version": "2"}']
    assert cam7.received("edgeloop/devices/cam-8/predictions") == []
    assert cam7.received("edgeloop/devices/cam-8/commands") == []


def test_an_offline_aggregator_session_keeps_the_fleets_backlog_across_a_restart(cloud):
    aggregator = cloud.aggregator(client_id="edgeloop-aggregator", session_expiry_s=3600)
    aggregator.subscribe("edgeloop/devices/+/predictions")
    aggregator.close()
    device = cloud.device("cam-7")
    mids = [device.publish("edgeloop/devices/cam-7/predictions", str(seq), wait=False) for seq in range(BACKLOG)]
    wait_for(lambda: all(mid in device.acks for mid in mids), 30, "the backlog's PUBACKs")
    assert {device.acks[mid].value for mid in mids} == {0}
    device.close()
    cloud.broker.stop()
    cloud.broker.start()
    back = cloud.aggregator(client_id="edgeloop-aggregator", session_expiry_s=3600)
    topic = "edgeloop/devices/cam-7/predictions"
    wait_for(lambda: len(back.received(topic)) >= BACKLOG, 30, f"{BACKLOG} queued predictions")
    assert [int(m.payload) for m in back.received(topic)] == list(range(BACKLOG))


def test_the_jetson_broker_stores_and_forwards_across_a_cloud_outage(cloud, tmp_path):
    aggregator = cloud.aggregator(client_id="edgeloop-aggregator", session_expiry_s=3600)
    aggregator.subscribe("edgeloop/devices/#")
    assert aggregator.client.publish("edgeloop/models/flowers", b'{"version": "3"}', qos=1, retain=True).rc == 0
    workdir = tmp_path / "jetson"
    (workdir / "config" / "certs").mkdir(parents=True)
    shutil.copy(cloud.ca, workdir / "config" / "certs" / "ca.crt")
    jetson, ports = start(
        "jetson.conf", workdir, [1883], address=f"127.0.0.1:{cloud.fleet}", remote_password=PASSWORDS["cam-7"]
    )
    try:
        local = Client(ports[1883])
        local.subscribe("edgeloop/models/#")
        wait_for(lambda: local.received("edgeloop/models/flowers"), 15, "the announcement through the bridge")
        samples = "edgeloop/devices/cam-7/samples"
        local.publish(samples, b"\xff\xd8jpeg", user_property=[("meta", '{"seq": 1}')])
        wait_for(lambda: aggregator.received(samples), 10, "the sample through the bridge")
        assert aggregator.received(samples)[0].properties.UserProperty == [("meta", '{"seq": 1}')]

        cloud.broker.stop()
        predictions = "edgeloop/devices/cam-7/predictions"
        mids = [local.publish(predictions, str(seq), wait=False) for seq in range(500)]
        wait_for(lambda: all(mid in local.acks for mid in mids), 10, "the Jetson broker's PUBACKs")
        cloud.broker.start()
        wait_for(lambda: len(aggregator.received(predictions)) >= 500, 60, "the stored predictions after the outage")
        assert [int(m.payload) for m in aggregator.received(predictions)] == list(range(500))
    finally:
        jetson.stop()
