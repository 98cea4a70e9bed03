"""MQTT ingest: a persistent session (clean start off, session expiry set) at QoS 1, with paho's
manual acknowledgement: a message is acknowledged only after the batch holding it is committed,
so an aggregator killed at any moment loses nothing and, restarted, receives what it missed.
Throughput comes from batching commits, never from acknowledging early. With a group name,
instances share the load through an MQTT v5 shared subscription."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from pathlib import Path

from cloud.aggregator import parse, writer
from cloud.aggregator.metrics import Metrics
from cloud.store import Database
from cloud.store import predictions as prediction_store
from common import protocol
from common.mqtt.client import connect_properties, make_client
from common.mqtt.url import BrokerAddress

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 86400
RECEIVE_MAXIMUM = 65535  # unacknowledged messages in flight: the broker keeps sending while a batch commits
INGESTED = [kind for kind in protocol.WIRE if kind.sender == "device"]
# A device may set the retain flag where the table has none (the broker's ACL cannot refuse it): such a message
# reaches every new subscription again, so the aggregator ignores what arrives as retained on these topics.
NEVER_RETAINED = {kind.name for kind in INGESTED if not kind.retain}


class Ingest:
    def __init__(
        self,
        db: Database,
        data_dir: Path,
        address: BrokerAddress,
        topics: protocol.Topics,
        client_id: str = "edgeloop-aggregator",
        group: str | None = None,
        batch_max: int = 5000,
        batch_wait_s: float = 0.05,
    ) -> None:
        self.db = db
        self.data_dir = data_dir
        self.topics = topics
        self.group = group
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.metrics = Metrics()
        self._pending: deque = deque()  # appended by paho's thread, taken by the writer: both atomic
        self._arrived = threading.Event()
        self._stop = threading.Event()
        self.address = address
        self._client = make_client(address, client_id, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._writer = threading.Thread(target=self._run, name="ingest-writer", daemon=True)

    def subscriptions(self) -> list[tuple[str, int]]:
        prefix = f"$share/{self.group}/" if self.group else ""
        return [(prefix + self.topics.filter(kind), kind.qos) for kind in INGESTED]

    def start(self) -> None:
        props = connect_properties(SESSION_EXPIRY_S)
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        self._client.connect_async(self.address.host, self.address.port, 30, clean_start=False, properties=props)
        self._client.loop_start()
        self._writer.start()

    def stop(self) -> None:
        self._stop.set()
        self._writer.join(timeout=30)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the aggregator: %s", reason_code)
            return
        log.info("aggregator connected to %s (session present: %s)", self.address, flags.session_present)
        client.subscribe(self.subscriptions())

    def _on_message(self, client, userdata, message) -> None:
        """Only hands the message on: parsing happens in the writer thread, so that it overlaps with
        paho's socket work here instead of adding to it."""
        topic = message.topic
        properties = message.properties if topic.endswith("/" + protocol.SAMPLES.name) else None
        self._pending.append(
            (message.mid, message.qos, topic, message.payload, properties, message.retain, time.time())
        )
        if not self._arrived.is_set():
            self._arrived.set()

    def _parse(self, topic: str, payload: bytes, properties, retained: bool, received: float):
        try:
            device_id, kind = self.topics.parse_device_topic(topic)
            if retained and kind in NEVER_RETAINED:
                log.warning(
                    "%s left a retained message on %s: ignored (mosquitto_pub -r -n clears it)", device_id, topic
                )
                return parse.Rejected("retained", topic)
            if kind == protocol.PREDICTIONS.name:
                return prediction_store.prediction_row(parse.prediction(device_id, payload), received)
            if kind == protocol.SAMPLES.name:
                return parse.sample(device_id, payload, properties)
            return parse.device_update(device_id, kind, payload)  # the subscriptions let nothing else in
        except protocol.ProtocolError as refused:  # parse.Rejected too: either names its reason
            return refused
        except Exception as exc:  # whatever a hostile payload provokes, the service carries on
            log.warning("unexpected error on a message from %s: %r", topic, exc)
            return parse.Rejected("internal", repr(exc)[:200])

    def _next_batch(self) -> tuple[writer.Batch, list[tuple[int, int]]]:
        """Whatever arrives within batch_wait_s of the first message, up to batch_max."""
        batch, acks = writer.Batch(), list[tuple[int, int]]()
        if not self._pending:
            self._arrived.wait(0.2)
            self._arrived.clear()
            if not self._pending:
                return batch, acks
        if len(self._pending) < self.batch_max:
            time.sleep(self.batch_wait_s)
        taken = min(len(self._pending), self.batch_max)
        self.metrics.add(messages_in=taken)
        for _ in range(taken):
            mid, qos, *message = self._pending.popleft()
            acks.append((mid, qos))
            parsed = self._parse(*message)
            if isinstance(parsed, protocol.ProtocolError):
                self.metrics.reject(parsed.reason)
                log.debug("rejected: %s", parsed)
            elif type(parsed) is tuple:
                batch.predictions.append(parsed)
            elif isinstance(parsed, parse.Sample):
                batch.samples.append(parsed)
            else:
                batch.updates.append(parsed)
        return batch, acks

    def _commit(self, batch: writer.Batch) -> None:
        """Write until the database takes it: an unacknowledged batch is never dropped. A database
        that is away is waited for; a message it refuses (bad data) is found, rejected and counted."""
        delay = 0.5
        while True:
            try:
                stored, duplicates = writer.write(self.db, self.data_dir, batch)
                self.metrics.add(stored=stored, duplicates=duplicates, samples_stored=len(batch.samples))
                if batch.predictions:
                    self.metrics.lag_s = time.time() - prediction_store.newest_ts(batch.predictions)
                return
            except Exception as exc:
                self.metrics.add(store_errors=1)
                if not self.db.transient(exc):
                    if len(batch) == 1:
                        log.warning("the database refused a message: %r", exc)
                        self.metrics.reject("unstorable")
                        return
                    for single in batch.singles():
                        self._commit(single)
                    return
                log.warning("storing a batch of %d failed (%r); retrying in %.1fs", len(batch), exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10)
                try:
                    self.db.reconnect()
                except Exception as again:
                    log.warning("reconnecting to the database failed: %r", again)

    def _run(self) -> None:
        while not self._stop.is_set():
            batch, acks = self._next_batch()
            if not acks:
                continue
            if len(batch):
                self._commit(batch)
            for mid, qos in acks:
                if qos:
                    self._client.ack(mid, qos)
