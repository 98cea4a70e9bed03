"""Attacks on the shipped Mosquitto configurations (deploy/mosquitto/), run by a real Mosquitto: a device that
takes the aggregator's client id, a device's password on the cloud service's listener, retained junk, a device
commanding itself, anonymous clients on a Jetson's own broker. tests/deploy/test_mosquitto.py has the ACL's
grants and the normal flows."""

from __future__ import annotations

import socket
import ssl

import pytest

from cloud.aggregator.ingest import Ingest
from cloud.options import DEFAULT_SAMPLE_MAX_KIB, ServeConfig
from cloud.store import connect
from common import protocol
from tests.support.certs import make_client_cert
from tests.support.fleet import prediction
from tests.support.mosquitto_configs import (
    AGGREGATOR,
    CLOUD_PASSWORDS,
    JETSON_PASSWORDS,
    PASSWORDS,
    start_cloud,
    start_jetson,
)
from tests.support.mqtt_client import Client
from tests.support.waiting import wait_for

pytestmark = pytest.mark.services  # each test starts Mosquitto

TOPICS = protocol.Topics()
NOT_AUTHORIZED = 0x87
JUNK_BYTES = 9_000_000
# docs/deploy.md's lines for client certificates on the fleet's listener (the test's CA signs the devices' too).
MUTUAL_TLS = ["cafile /mosquitto/config/certs/ca.crt", "require_certificate true", "use_identity_as_username true"]
NEVER_RETAINED = [kind for kind in protocol.WIRE if kind.sender == "device" and not kind.retain]


@pytest.fixture
def cloud(tmp_path):
    running = start_cloud(tmp_path / "cloud")
    yield running
    running.broker.stop()


def test_a_device_cannot_take_over_the_aggregators_client_id_or_session(cloud):
    predictions = TOPICS.predictions("cam-7")
    aggregator = cloud.aggregator(client_id=AGGREGATOR, session_expiry_s=3600)
    aggregator.subscribe(TOPICS.filter(protocol.PREDICTIONS))
    aggregator.close()
    # While the aggregator is away its session holds what comes in; a clean start with its id would discard it.
    thief = cloud.device("cam-7", client_id=AGGREGATOR)
    assert not thief.refused, "the device logs in, as itself"
    thief.publish(predictions, b"queued")
    back = cloud.aggregator(client_id=AGGREGATOR, session_expiry_s=3600)
    wait_for(lambda: back.received(predictions), 5, "the message queued in the aggregator's session")
    again = cloud.device("cam-8", client_id=AGGREGATOR)  # and while the aggregator is connected
    again.publish(TOPICS.predictions("cam-8"), b"live")
    wait_for(lambda: back.received(TOPICS.predictions("cam-8")), 5, "a message after the second attempt")
    assert back.disconnects == [], "the broker never closed the aggregator's connection"
    assert [m.payload for m in back.received(predictions)] == [b"queued"]


def test_a_devices_password_does_not_open_the_cloud_services_listener(cloud):
    assert Client(cloud.internal, "cam-7", PASSWORDS["cam-7"], cloud.ca).refused
    assert cloud.device(AGGREGATOR, CLOUD_PASSWORDS[AGGREGATOR]).refused, "nor the other way round"


def test_a_device_cannot_command_itself_nor_leave_9_mb_of_retained_junk(cloud):
    device = cloud.device("cam-7")
    assert device.ack(TOPICS.commands("cam-7"), b'{"do": "reboot"}').value == NOT_AUTHORIZED
    device.close()
    for kind in NEVER_RETAINED:
        junk = cloud.device("cam-7")
        junk.client.publish(TOPICS.topic(kind, device_id="cam-7"), b"\0" * JUNK_BYTES, qos=1, retain=True)
        wait_for(lambda: junk.disconnects, 5, f"the broker to refuse 9 MB on {kind.name}")  # noqa: B023
        junk.client.disconnect()  # no reconnecting: close() would wait out paho's reconnect delay
    # The largest message the cloud accepts still goes through: a sample of 4 MiB with 64 KiB of metadata (the
    # most an MQTT string holds).
    aggregator, device = cloud.aggregator(), cloud.device("cam-7")
    aggregator.subscribe(TOPICS.samples("cam-7"))
    meta = (protocol.SAMPLES.meta_property, "m" * 65535)
    largest = b"\xff\xd8" + b"\0" * (DEFAULT_SAMPLE_MAX_KIB * 1024 - 2)
    assert device.ack(TOPICS.samples("cam-7"), largest, user_property=[meta]) == 0
    wait_for(lambda: aggregator.received(TOPICS.samples("cam-7")), 5, "the largest sample")
    assert aggregator.received(TOPICS.samples("cam-7"))[0].payload == largest
    assert device.client.publish(TOPICS.status("cam-7"), b"online", qos=1, retain=True).rc == 0
    late = cloud.aggregator()
    for kind in [*NEVER_RETAINED, protocol.STATUS]:  # retained messages arrive on subscribing, in this order
        late.subscribe(TOPICS.topic(kind, device_id="cam-7"))
    wait_for(lambda: late.received(TOPICS.status("cam-7")), 5, "the retained status")
    assert [m.payload for m in late.messages] == [b"online"], "no junk was kept"


def test_the_aggregator_ignores_what_a_device_left_retained_where_nothing_is(cloud, tmp_path):
    device = cloud.device("cam-7")
    assert device.client.publish(TOPICS.predictions("cam-7"), prediction("cam-7", 1), qos=1, retain=True).rc == 0
    broker = f"mqtts://{AGGREGATOR}:{CLOUD_PASSWORDS[AGGREGATOR]}@127.0.0.1:{cloud.internal}"
    address = ServeConfig(broker=broker, ca_file=cloud.ca).broker_address()  # --ca-file, as serve has it
    db = connect(f"sqlite:///{tmp_path / 'edgeloop.db'}")
    ingest = Ingest(db, tmp_path / "data", address, TOPICS, batch_wait_s=0.02)
    ingest.start()
    try:
        wait_for(lambda: ingest.metrics.rejected["retained"] == 1, 10, "the retained prediction, refused")
        device.publish(TOPICS.predictions("cam-7"), prediction("cam-7", 2))
        wait_for(lambda: ingest.metrics.counts["stored"] == 1, 10, "the live prediction, stored")
        assert sum(ingest.metrics.rejected.values()) == 1
    finally:
        ingest.stop()
        db.close()


def test_the_jetsons_broker_takes_the_runtime_alone_and_it_cannot_command_itself(cloud, tmp_path):
    jetson, port = start_jetson(tmp_path / "jetson", cloud)
    try:
        assert Client(port).refused, "no anonymous clients"
        assert Client(port, "cam-7", PASSWORDS["cam-7"]).refused, "the cloud password is not the local one"
        runtime = Client(port, "cam-7", JETSON_PASSWORDS["cam-7"])
        for topic in (TOPICS.commands("cam-7"), TOPICS.model("flowers"), TOPICS.predictions("cam-8")):
            assert runtime.ack(topic, b'{"do": "reboot"}').value == NOT_AUTHORIZED, topic
        assert runtime.ack(TOPICS.predictions("cam-7"), prediction("cam-7", 1)) == 0
    finally:
        jetson.stop()


def test_with_client_certificates_a_device_is_the_name_in_its_certificate(tmp_path):
    workdir = tmp_path / "cloud"
    cloud = start_cloud(workdir, MUTUAL_TLS)
    try:
        aggregator = cloud.aggregator(client_id=AGGREGATOR)
        aggregator.subscribe(TOPICS.filter(protocol.PREDICTIONS))
        certificate = make_client_cert(workdir / "config" / "certs", "cam-7")
        device = Client(cloud.fleet, ca_file=cloud.ca, cert_file=certificate, client_id=AGGREGATOR)
        assert not device.refused, "no password: the certificate says who it is"
        assert device.ack(TOPICS.predictions("cam-7"), b"1") == 0
        assert device.ack(TOPICS.predictions("cam-8"), b"2").value == NOT_AUTHORIZED
        wait_for(lambda: aggregator.received(TOPICS.predictions("cam-7")), 5, "cam-7's prediction")
        assert aggregator.disconnects == [], "the client id is the certificate's name too"
        context = ssl.create_default_context(cafile=cloud.ca)
        with (
            socket.create_connection(("127.0.0.1", cloud.fleet)) as tcp,
            context.wrap_socket(tcp, server_hostname="127.0.0.1") as tls,
            pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"),
        ):
            tls.recv(1)  # TLS 1.3: the broker refuses a client without a certificate after the handshake
    finally:
        cloud.broker.stop()
