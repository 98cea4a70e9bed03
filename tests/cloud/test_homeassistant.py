"""Home Assistant MQTT discovery against a real Mosquitto and a real `cloud serve` fed by a device's messages: a
subscriber standing in for Home Assistant finds a valid, retained discovery config for each sensor of each device
and states that say what the device sent, published at a bounded rate, not per prediction; without the flag,
nothing at all."""

from __future__ import annotations

import json
import re
import signal
import time

from common import protocol
from tests.support.fleet import Publisher, prediction
from tests.support.mqtt_client import Client
from tests.support.ports import free_port
from tests.support.serve import metric, start_serve
from tests.support.waiting import wait_for

TOPICS = protocol.Topics()
INTERVAL_S = 0.3
BURST = 200
HA_TOPIC = re.compile(r"(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config")
SUBSCRIPTIONS = (f"{TOPICS.discovery_prefix}/#", f"{TOPICS.prefix}/homeassistant/#")


def home_assistant(port: int) -> Client:
    """A subscriber to everything Home Assistant reads."""
    client = Client(port)
    for topic in SUBSCRIPTIONS:
        client.subscribe(topic)
    return client


def latest(client: Client, topic: str) -> dict | None:
    messages = client.received(topic)
    return json.loads(messages[-1].payload) if messages else None


def serve_fed(broker, tmp_path, *flags: object):
    """`cloud serve` with `flags`, its ingest subscribed (a warm-up device knocked until it stored one), and the
    publisher standing in for the device."""
    port = free_port()
    serve = start_serve(broker, f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "data", port, "--no-train", *flags)
    fleet = Publisher(broker.port)
    knocks = iter(range(1, 10**6))
    wait_for(lambda: fleet.send_predictions("warm-up", [next(knocks)]) or metric(port, "stored") >= 1, 60,
             "the aggregator's session", interval_s=0.2)  # fmt: skip
    return serve, fleet


def device_says(fleet: Publisher, state: str) -> None:
    status = protocol.Status(state=state, ts=time.time(), model=protocol.ModelRef(name="flowers", version="1"))
    fleet.send(TOPICS.status("cam-1"), status.encode())


def stop(serve) -> None:
    serve.send_signal(signal.SIGTERM)
    serve.wait(30)


def test_each_device_gets_sensors_whose_states_are_what_it_sent_at_a_bounded_rate(broker, tmp_path):
    ha = home_assistant(broker.port)
    started = time.monotonic()
    serve, fleet = serve_fed(broker, tmp_path, "--homeassistant-discovery", "--homeassistant-interval-s", INTERVAL_S)
    state_topic = TOPICS.topic(protocol.HA_STATE, device_id="cam-1")
    availability = TOPICS.topic(protocol.HA_AVAILABILITY)
    try:
        device_says(fleet, "online")
        fleet.send(TOPICS.telemetry("cam-1"), protocol.Telemetry(fps=12.5).encode(), qos=0)
        burst = [(TOPICS.predictions("cam-1"), prediction("cam-1", seq, "roses", 0.8)) for seq in range(1, BURST)]
        fleet.send_all([*burst, (TOPICS.predictions("cam-1"), prediction("cam-1", BURST, "tulips", 0.8))])
        expected = {"state": "online", "label": "tulips", "fps": 12.5, "confidence": 0.8}
        wait_for(lambda: latest(ha, state_topic) == expected, 30, f"cam-1's state {expected}")
        elapsed = time.monotonic() - started
        assert latest(ha, availability) == {"state": "online"}
        sent = len(ha.received(state_topic))
        assert sent <= elapsed / INTERVAL_S + 1, f"{sent} states in {elapsed:.1f} s: more than one a pass"

        node = TOPICS.node("cam-1")
        configs = {}
        for key in ("state", "label", "fps", "confidence"):
            topic = f"homeassistant/sensor/{node}/{key}/config"
            assert HA_TOPIC.fullmatch(topic.removeprefix("homeassistant/")), topic
            wait_for(lambda topic=topic: ha.received(topic), 10, topic)
            configs[key] = config = json.loads(ha.received(topic)[-1].payload)
            protocol.SensorDiscovery.decode(json.dumps(config))
            assert config["unique_id"] == f"{node}_{key}"
            assert config["state_topic"] == state_topic
            assert config["value_template"] == "{{ value_json." + key + " }}"
            assert config["device"] == {
                "identifiers": [node], "name": "cam-1", "manufacturer": "edgeloop", "sw_version": "flowers 1"
            }  # fmt: skip
            assert {a["topic"] for a in config["availability"]} <= {availability, state_topic}
        assert [a["topic"] for a in configs["state"]["availability"]] == [availability], "it says offline itself"
        assert len({c["unique_id"] for c in configs.values()}) == 4
        warm_up = TOPICS.node("warm-up")
        assert (latest(ha, f"homeassistant/sensor/{warm_up}/label/config") or {}).get("unique_id") == f"{warm_up}_label"

        late = home_assistant(broker.port)  # Home Assistant started after the service: all of it is retained
        wait_for(lambda: len(late.received(state_topic)) == 1, 10, "the retained state")
        assert all(m.retain for m in late.messages)
        assert latest(late, state_topic) == expected
        assert {m.topic for m in late.messages} >= {f"homeassistant/sensor/{node}/{key}/config" for key in configs}

        time.sleep(2 * INTERVAL_S)  # passes that find nothing changed send nothing
        assert len(ha.received(state_topic)) == sent

        device_says(fleet, "offline")
        wait_for(lambda: (latest(ha, state_topic) or {}).get("state") == "offline", 10, "cam-1 offline")
    finally:
        stop(serve)
        fleet.close()
    wait_for(lambda: latest(ha, availability) == {"state": "offline"}, 10, "the service's goodbye")


def test_without_the_flag_nothing_goes_to_home_assistant(broker, tmp_path):
    ha = home_assistant(broker.port)
    serve, fleet = serve_fed(broker, tmp_path, "--homeassistant-interval-s", INTERVAL_S)
    try:
        device_says(fleet, "online")
        fleet.send_predictions("cam-1", range(1, 11))
        time.sleep(3 * INTERVAL_S)  # what would have been several passes
    finally:
        stop(serve)
        fleet.close()
    assert ha.messages == []
