"""Each Mosquitto configuration in deploy/mosquitto/, started by a real Mosquitto: the development broker, the
production broker (TLS, password files, per-device ACLs, the aggregator's backlog kept) and the Jetson's broker
bridged to it, storing and forwarding across a cloud outage. tests/security/ has the attacks on them."""

from __future__ import annotations

import ssl
import stat
import subprocess

import pytest
from paho.mqtt.reasoncodes import ReasonCode

from common import protocol
from tests.support.certs import make_certs
from tests.support.mosquitto_configs import (
    AGGREGATOR,
    BRIDGE,
    CLOUD_PASSWORDS,
    CONFIGS,
    HOMEASSISTANT,
    JETSON_PASSWORDS,
    PASSWORDS,
    localize,
    start,
    start_cloud,
    start_jetson,
    write_bridge,
)
from tests.support.mqtt_client import Client
from tests.support.ports import free_port
from tests.support.waiting import wait_for

NOT_AUTHORIZED = 0x87
BACKLOG = 3000  # above Mosquitto's default of 1000 queued messages per session
TOPICS = protocol.Topics()
EVERYTHING = f"{TOPICS.prefix}/#"
DEVICE_SENDS = [kind for kind in protocol.WIRE if kind.sender == "device"]
CLOUD_SENDS = [kind for kind in protocol.WIRE if kind.sender == "cloud"]


def topic(kind: protocol.Kind, device_id: str = "cam-7") -> str:
    """The kind's topic in these tests: `device_id`'s (its state sensor's, for Home Assistant), or the flowers
    model's."""
    return TOPICS.topic(kind, device_id=device_id, model_name="flowers", node_id=TOPICS.node(device_id), sensor="state")


def per_device(kind: protocol.Kind) -> bool:
    return topic(kind, "cam-7") != topic(kind, "cam-8")


pytestmark = pytest.mark.services  # each test starts Mosquitto


@pytest.fixture
def cloud(tmp_path):
    running = start_cloud(tmp_path / "cloud")
    yield running
    running.broker.stop()


def code(value: int) -> ReasonCode:
    return ReasonCode(4, identifier=value)  # 4: PUBACK; 0x87 means "Not authorized" in PUBACK and SUBACK alike


def test_development_broker_takes_anonymous_clients(tmp_path):
    broker, ports = start("dev.conf", tmp_path, [1883])
    try:
        subscriber, device = Client(ports[1883]), Client(ports[1883])
        subscriber.subscribe(EVERYTHING)
        assert device.ack(topic(protocol.PREDICTIONS), b'{"seq": 1}') == 0
        wait_for(lambda: subscriber.received(topic(protocol.PREDICTIONS)), 5, "the prediction")
    finally:
        broker.stop()


def test_both_listeners_need_tls_with_the_broker_certificate(cloud, tmp_path):
    for client in (cloud.device("cam-7"), cloud.aggregator()):
        assert not client.refused
        client.close()
    other_ca, _, _ = make_certs(tmp_path / "other")
    for port, user, password in (
        (cloud.fleet, "cam-7", PASSWORDS["cam-7"]),
        (cloud.internal, AGGREGATOR, CLOUD_PASSWORDS[AGGREGATOR]),
    ):
        with pytest.raises(ssl.SSLCertVerificationError):
            Client(port, user, password, other_ca)


def test_unknown_clients_and_wrong_passwords_are_refused(cloud):
    assert cloud.device("cam-7", password="guess").refused
    assert Client(cloud.internal, ca_file=cloud.ca).refused, "anonymous clients are refused"
    assert Client(cloud.fleet, ca_file=cloud.ca).refused
    assert Client(cloud.fleet, "cam-9", "whatever", cloud.ca).refused, "a user missing from the password file"


def test_the_acl_grants_devices_what_the_wire_table_says():
    """deploy/mosquitto/acl's lines for devices are the table's: a device writes what it sends, under its own id,
    and reads what it receives."""

    def pattern(kind: protocol.Kind) -> str:
        return f"{TOPICS.prefix}/" + kind.pattern.format(device_id="%u", model_name="+")

    lines = [line.split() for line in (CONFIGS / "acl").read_text().splitlines()]
    granted = {(words[1], words[2]) for words in lines if words[:1] == ["pattern"]}
    assert granted == {("write", pattern(kind)) for kind in DEVICE_SENDS} | {
        ("read", pattern(kind)) for kind in protocol.WIRE if kind.receiver == "device"
    }


def test_a_device_publishes_only_under_its_own_topics(cloud):
    aggregator = cloud.aggregator()
    assert aggregator.subscribe(EVERYTHING) == 1
    cam7 = cloud.device("cam-7", client_id="edgeloop-cam-8")  # a client id cannot make it another device
    forged = [topic(kind, "cam-8") for kind in DEVICE_SENDS] + [topic(kind) for kind in CLOUD_SENDS]
    for refused in forged:  # another device's messages; announcements, its own commands, retrain requests
        assert cam7.ack(refused, b'{"url": "http://evil/"}') == code(NOT_AUTHORIZED), refused
    for kind in DEVICE_SENDS:
        assert cam7.ack(topic(kind), kind.name) == 0, kind.name
    last = topic(DEVICE_SENDS[-1])
    wait_for(lambda: aggregator.received(last), 5, f"{last} at the aggregator")
    for kind in DEVICE_SENDS:
        assert [m.payload for m in aggregator.received(topic(kind))] == [kind.name.encode()]
    for refused in forged:
        assert aggregator.received(refused) == []


def test_a_device_reads_announcements_and_its_commands_but_not_other_devices(cloud):
    cam7 = cloud.device("cam-7")
    # Mosquitto grants a subscription and checks read access on each message it would deliver.
    assert [cam7.subscribe(f) for f in (EVERYTHING, f"{TOPICS.discovery_prefix}/#")] == [1, 1]
    cam8, aggregator = cloud.device("cam-8"), cloud.aggregator()
    unreadable = [(cam8, topic(kind, "cam-8")) for kind in DEVICE_SENDS]
    unreadable += [(aggregator, topic(kind, "cam-8")) for kind in CLOUD_SENDS if per_device(kind)]
    unreadable += [(aggregator, topic(kind)) for kind in CLOUD_SENDS if kind.receiver != "device"]
    for sender, sent in unreadable:  # sent before what cam-7 reads
        assert sender.ack(sent, b'{"do": "reboot"}') == 0, sent
    readable = [topic(kind) for kind in CLOUD_SENDS if kind.receiver == "device"]
    for sent in readable:
        assert aggregator.ack(sent, sent) == 0, sent
    wait_for(lambda: all(cam7.received(sent) for sent in readable), 5, "cam-7's commands and announcements")
    for sent in readable:
        assert [m.payload for m in cam7.received(sent)] == [sent.encode()]
    for _, sent in unreadable:
        assert cam7.received(sent) == []


def test_home_assistant_reads_only_what_the_cloud_publishes_for_it(cloud):
    """Home Assistant's user on the fleet's listener reads the discovery configs, states and availability the
    cloud publishes (through its own listener) and nothing a device sends nor the cloud sends a device; it writes
    none of them."""
    ha = cloud.device(HOMEASSISTANT)
    assert [ha.subscribe(f) for f in (EVERYTHING, f"{TOPICS.discovery_prefix}/#")] == [1, 1]
    cam7, aggregator = cloud.device("cam-7"), cloud.aggregator()
    for kind in DEVICE_SENDS:  # sent before what Home Assistant reads
        assert cam7.ack(topic(kind), kind.name) == 0, kind.name
    readable = [topic(kind) for kind in CLOUD_SENDS if kind.receiver == HOMEASSISTANT]
    assert len(readable) == 3
    # The announcements are every fleet user's to read (the ACL's patterns): not the devices' own messages.
    unreadable = [
        topic(kind)
        for kind in DEVICE_SENDS + CLOUD_SENDS
        if kind.receiver != HOMEASSISTANT and (per_device(kind) or kind.receiver != "device")
    ]
    for sent in [topic(kind) for kind in CLOUD_SENDS if kind.receiver != HOMEASSISTANT] + readable:
        assert aggregator.ack(sent, sent) == 0, sent
    wait_for(lambda: all(ha.received(sent) for sent in readable), 5, "what Home Assistant reads")
    for sent in readable:
        assert [m.payload for m in ha.received(sent)] == [sent.encode()]
        assert ha.ack(sent, b'{"state": "online"}') == code(NOT_AUTHORIZED), sent
    for sent in unreadable:
        assert ha.received(sent) == [], sent


def test_an_offline_aggregator_session_keeps_the_fleets_backlog_across_a_restart(cloud):
    aggregator = cloud.aggregator(client_id=AGGREGATOR, session_expiry_s=3600)
    aggregator.subscribe(TOPICS.filter(protocol.PREDICTIONS))
    aggregator.close()
    device = cloud.device("cam-7")
    mids = [device.publish(topic(protocol.PREDICTIONS), str(seq), wait=False) for seq in range(BACKLOG)]
    wait_for(lambda: all(mid in device.acks for mid in mids), 30, "the backlog's PUBACKs")
    assert {device.acks[mid].value for mid in mids} == {0}
    device.close()
    cloud.broker.stop()
    cloud.broker.start()
    back = cloud.aggregator(client_id=AGGREGATOR, session_expiry_s=3600)
    predictions = topic(protocol.PREDICTIONS)
    wait_for(lambda: len(back.received(predictions)) >= BACKLOG, 30, f"{BACKLOG} queued predictions")
    assert [int(m.payload) for m in back.received(predictions)] == list(range(BACKLOG))


def test_the_jetson_broker_stores_and_forwards_across_a_cloud_outage(cloud, tmp_path):
    aggregator = cloud.aggregator(client_id=AGGREGATOR, session_expiry_s=3600)
    aggregator.subscribe(TOPICS.filter(protocol.PREDICTIONS))
    aggregator.subscribe(TOPICS.filter(protocol.SAMPLES))
    announcement = topic(protocol.MODELS)
    assert aggregator.client.publish(announcement, b'{"version": "3"}', qos=1, retain=protocol.MODELS.retain).rc == 0
    jetson, port = start_jetson(tmp_path / "jetson", cloud)
    try:
        local = Client(port, "cam-7", JETSON_PASSWORDS["cam-7"])
        local.subscribe(TOPICS.filter(protocol.MODELS))
        wait_for(lambda: local.received(announcement), 15, "the announcement through the bridge")
        samples, meta = topic(protocol.SAMPLES), (protocol.SAMPLES.meta_property, '{"seq": 1}')
        local.publish(samples, b"\xff\xd8jpeg", user_property=[meta])
        wait_for(lambda: aggregator.received(samples), 10, "the sample through the bridge")
        assert aggregator.received(samples)[0].properties.UserProperty == [meta]

        cloud.broker.stop()
        predictions = topic(protocol.PREDICTIONS)
        mids = [local.publish(predictions, str(seq), wait=False) for seq in range(500)]
        wait_for(lambda: all(mid in local.acks for mid in mids), 10, "the Jetson broker's PUBACKs")
        cloud.broker.start()
        wait_for(lambda: len(aggregator.received(predictions)) >= 500, 60, "the stored predictions after the outage")
        assert [int(m.payload) for m in aggregator.received(predictions)] == list(range(500))
    finally:
        jetson.stop()


def test_the_bridge_script_writes_a_private_file_and_never_shows_the_password(tmp_path):
    password = "p&a\\s/s w$x${EDGELOOP_DEVICE_ID}"  # what sed or a shell would mangle
    written = write_bridge(tmp_path / "bridge.conf", "cam-7", "broker.example.org:8883", password)
    assert written.returncode == 0, written.stderr
    assert password not in written.stdout + written.stderr
    assert stat.S_IMODE((tmp_path / "bridge.conf").stat().st_mode) == 0o600
    text = (tmp_path / "bridge.conf").read_text()
    lines = text.splitlines()
    assert f"remote_password {password}" in lines
    for line in ("address broker.example.org:8883", "remote_username cam-7", "topic edgeloop/devices/cam-7/# out 1"):
        assert line in lines
    assert "${EDGELOOP_" not in text.replace(password, ""), "every placeholder filled in"


@pytest.mark.parametrize(
    ("device_id", "address", "password"),
    [("cam/7", "broker:8883", "secret"), ("cam-7", "broker", "secret"), ("cam-7", "broker:8883", " padded"),
     ("cam-7", "broker:8883", "")],
    ids=["device id with a slash", "no port", "blank around the password", "no password"],
)  # fmt: skip
def test_the_bridge_script_refuses_what_would_make_a_broken_bridge(tmp_path, device_id, address, password):
    written = write_bridge(tmp_path / "bridge.conf", device_id, address, password)
    assert written.returncode == 2
    assert not (tmp_path / "bridge.conf").exists()


@pytest.mark.parametrize("bridge", ["missing", "a folder"])
def test_the_jetson_broker_refuses_to_start_unbridged(tmp_path, bridge):
    """No bridge file, or the folder Docker mounts in place of a missing file: an error, not a lone broker."""
    if bridge == "a folder":
        (tmp_path / BRIDGE).mkdir(parents=True)
    (tmp_path / "jetson.conf").write_text(localize("jetson.conf", tmp_path, {1883: free_port()}))
    started = subprocess.run(
        ["mosquitto", "-c", str(tmp_path / "jetson.conf")], capture_output=True, text=True, timeout=10
    )
    assert started.returncode != 0
    assert f"{tmp_path / BRIDGE.parent}" in started.stderr
