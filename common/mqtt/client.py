"""A paho-mqtt 2.x client set up the way every edgeloop component wants it: MQTT v5, TLS (with the
address's CA and client certificate) and credentials from the broker's address, automatic reconnect
with backoff, and a failure to reach the broker logged with its reason (common.mqtt.failures)."""

from __future__ import annotations

import logging
import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common.mqtt.failures import ConnectionLog
from common.mqtt.url import BrokerAddress

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 10


def make_client(
    address: BrokerAddress,
    client_id: str,
    manual_ack: bool = False,
) -> mqtt.Client:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        ca, cert = address.ca_file, address.cert_file
        client.tls_set(
            ca_certs=str(ca) if ca else None, certfile=str(cert) if cert else None, cert_reqs=ssl.CERT_REQUIRED
        )
    client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
    failures = ConnectionLog(client_id, address)
    client.on_pre_connect = failures.on_pre_connect
    client.on_connect_fail = failures.on_connect_fail
    client.suppress_exceptions = True  # a bug in one callback must not end the network thread
    return client


def connect_properties(session_expiry_s: int) -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry_s
    return props


def publish_properties(**values: object) -> Properties:
    """PUBLISH properties, e.g. content_type="image/jpeg", user_properties=[("meta", "…")]."""
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    for name, value in values.items():
        setattr(props, "".join(part.capitalize() for part in name.split("_")), value)
    return props
