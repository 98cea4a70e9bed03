"""MQTT ingest: a persistent session (clean start off, session expiry set) at QoS 1, with paho's
manual acknowledgement: a message is acknowledged only after the batch holding it is committed,
so an aggregator killed at any moment loses nothing and, restarted, receives what it missed.
Throughput comes from batching commits, never from acknowledging early: one thread parses the next
batch while another commits the last one (the database drivers let go of the GIL while they work).
With a group name, instances share the load through an MQTT v5 shared subscription.

Samples take another way to the writer: the quotas admit or refuse each on arrival, before any work
is spent on it, and a small pool checks the admitted ones, so the writer only ever stores checked
samples and a device's JPEGs never hold up another device's predictions."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

from cloud.aggregator import parse, writer
from cloud.aggregator.metrics import Metrics, Observation, observation
from cloud.aggregator.quotas import Admission, RefusalLog, SampleLimits
from cloud.aggregator.retention import PredictionRetention
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
CHECK_WORKERS = 2  # OpenCV decodes with the GIL released: two keep up with a fleet's samples on a small box
PACKET_HEADROOM = 64 * 1024  # the topic and the meta property beside a sample's JPEG


class _Raw(NamedTuple):
    """A message as it arrived, parsed by the writer (everything but samples: small JSON)."""

    topic: str
    payload: bytes
    retained: bool
    received: float


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
        limits: SampleLimits | None = None,
        retention: PredictionRetention | None = None,
    ) -> None:
        self.db = db
        self.retention = retention or PredictionRetention()
        self.data_dir = data_dir
        self.topics = topics
        self.group = group
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.metrics = Metrics()
        self.admission = Admission(limits or SampleLimits())
        self._refusals = RefusalLog()
        self._checks = ThreadPoolExecutor(CHECK_WORKERS, thread_name_prefix="sample-check")
        # (mid, qos, a _Raw message or a checked sample, (device, bytes) it holds of the quotas or None),
        # appended by paho's thread and the checks, taken by the writer: both atomic
        self._pending: deque[tuple[int, int, Any, tuple[str, int] | None]] = deque()
        self._arrived = threading.Event()
        self._backlog = False  # the last batch was full: more is waiting, take it without waiting
        self._stop = threading.Event()
        self.address = address
        self._client = make_client(address, client_id, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        # parsed batches and their messages' (mid, qos), handed from the batcher to the writer: one waits
        # while the writer commits another, so a batch is acknowledged at most two commits after it arrived
        self._parsed: queue.Queue[tuple[writer.Batch, list[tuple[int, int]], Observation | None]] = queue.Queue(1)
        self._batcher = threading.Thread(target=self._gather, name="ingest-batcher", daemon=True)
        self._writer = threading.Thread(target=self._run, name="ingest-writer", daemon=True)

    def subscriptions(self) -> list[tuple[str, int]]:
        prefix = f"$share/{self.group}/" if self.group else ""
        return [(prefix + self.topics.filter(kind), kind.qos) for kind in INGESTED]

    @property
    def connected(self) -> bool:
        return self._client.is_connected()

    def start(self) -> None:
        props = connect_properties(SESSION_EXPIRY_S)
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        # Larger packets never leave the broker: paho would read each whole into memory before anything here
        # could refuse it. Up to twice the limit they still arrive, to be refused and counted as oversized.
        largest = max(self.admission.limits.max_bytes, parse.MAX_JSON_BYTES, protocol.BATCH_MAX_BYTES)
        props.MaximumPacketSize = 2 * largest + PACKET_HEADROOM
        self._client.connect_async(self.address.host, self.address.port, 30, clean_start=False, properties=props)
        self._client.loop_start()
        self._batcher.start()
        self._writer.start()

    def stop(self) -> None:
        self._stop.set()
        self._checks.shutdown(cancel_futures=True)  # unacknowledged: the broker sends them again
        self._batcher.join(timeout=30)
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
        """Only hands the message on: parsing happens in the batcher thread, so that it overlaps with
        paho's socket work here instead of adding to it; samples go to the quotas and the checks."""
        topic, received = message.topic, time.time()
        if topic.endswith("/" + protocol.SAMPLES.name) and not message.retain:
            self._offer(message.mid, message.qos, topic, message.payload, message.properties)
        else:  # a retained sample is refused by _parse, unchecked
            self._hand_on(message.mid, message.qos, _Raw(topic, message.payload, message.retain, received))

    def _hand_on(self, mid: int, qos: int, work: Any, held: tuple[str, int] | None = None) -> None:
        self._pending.append((mid, qos, work, held))
        if not self._arrived.is_set():
            self._arrived.set()

    def _offer(self, mid: int, qos: int, topic: str, payload: bytes, properties) -> None:
        """Refused here, before any work is spent on it, or admitted and checked by the pool."""
        try:
            device_id, _ = self.topics.parse_device_topic(topic)
        except protocol.ProtocolError as refused:
            self._hand_on(mid, qos, refused)
            return
        reason = self.admission.admit(device_id, len(payload))
        if reason is not None:
            self._refusals.refused(device_id, reason, f"{reason} ({len(payload)} bytes)")
            self._hand_on(mid, qos, parse.Rejected(reason))
            return
        held = (device_id, len(payload))
        try:
            self._checks.submit(self._check, mid, qos, device_id, payload, properties, held)
        except RuntimeError:  # stopping: left unacknowledged, the broker sends it again
            self.admission.settle(*held, stored=False)

    def _check(self, mid: int, qos: int, device_id: str, payload: bytes, properties, held: tuple[str, int]) -> None:
        try:
            checked: parse.Sample | protocol.ProtocolError = parse.sample(
                device_id, payload, properties, self.admission.limits.max_side
            )
        except protocol.ProtocolError as refused:  # parse.Rejected too: either names its reason
            checked = refused
        except Exception as exc:  # whatever a hostile payload provokes, the service carries on
            log.warning("unexpected error on a sample from %s: %r", device_id, exc)
            checked = parse.Rejected("internal", repr(exc)[:200])
        if isinstance(checked, protocol.ProtocolError):
            self._refusals.refused(device_id, checked.reason, str(checked)[:200])
        else:
            try:  # here rather than in the writer, whose batch may hold another device's predictions
                writer.file_sample(self.data_dir, checked)
            except OSError as exc:  # the writer tries again, and counts what it cannot store
                log.warning("filing a sample from %s failed: %r", device_id, exc)
        self._hand_on(mid, qos, checked, held)

    def _parse(self, topic: str, payload: bytes, retained: bool, received: float):
        try:
            device_id, kind = self.topics.parse_device_topic(topic)
            if retained and kind in NEVER_RETAINED:
                log.warning(
                    "%s left a retained message on %s: ignored (mosquitto_pub -r -n clears it)", device_id, topic
                )
                return parse.Rejected("retained", topic)
            if kind == protocol.PREDICTIONS.name:
                return [
                    prediction_store.prediction_row(device_id, p, received)
                    for p in parse.predictions(device_id, payload)
                ]
            return parse.device_update(device_id, kind, payload)  # the subscriptions let nothing else in
        except protocol.ProtocolError as refused:  # parse.Rejected too: either names its reason
            return refused
        except Exception as exc:  # whatever a hostile payload provokes, the service carries on
            log.warning("unexpected error on a message from %s: %r", topic, exc)
            return parse.Rejected("internal", repr(exc)[:200])

    def _next_batch(self) -> tuple[writer.Batch, list[tuple[int, int]]]:
        """Whatever arrives within batch_wait_s of the first message, up to batch_max messages or predictions
        (a message of a batch is taken whole)."""
        batch, acks = writer.Batch(), list[tuple[int, int]]()
        if not self._pending:
            self._arrived.wait(0.2)
            self._arrived.clear()
            if not self._pending:
                return batch, acks
        if len(self._pending) < self.batch_max and not self._backlog:
            time.sleep(self.batch_wait_s)
        while self._pending and len(acks) < self.batch_max and len(batch.predictions) < self.batch_max:
            mid, qos, work, held = self._pending.popleft()
            acks.append((mid, qos))
            parsed = self._parse(*work) if isinstance(work, _Raw) else work
            if isinstance(parsed, protocol.ProtocolError):
                self.metrics.reject(parsed.reason)
                log.debug("rejected: %s", parsed)
                if held:
                    self.admission.settle(*held, stored=False)
            elif type(parsed) is list:
                batch.predictions += parsed
            elif isinstance(parsed, parse.Sample):
                batch.samples.append(parsed)
            else:
                batch.updates.append(parsed)
        self.metrics.add(messages_in=len(acks))
        self._backlog = max(len(acks), len(batch.predictions)) >= self.batch_max
        return batch, acks

    def _commit(self, batch: writer.Batch, observed: Observation | None = None) -> None:
        """Write until the database takes it: an unacknowledged batch is never dropped. A database
        that is away is waited for; a message it refuses (bad data) is found, rejected and counted.
        `observed`: the histograms' observation of every prediction of the batch, if it was worked out."""
        delay = 0.5
        while True:
            try:
                stored, duplicates = writer.write(self.db, self.data_dir, batch)
                self.metrics.add(
                    commits=1, stored=len(stored), duplicates=duplicates, samples_stored=len(batch.samples)
                )
                if duplicates or observed is None:  # a redelivery is observed once, when stored
                    observed = observation(prediction_store.figures(stored))
                self.metrics.record(observed)
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

    def _refuse_too_old(self, batch: writer.Batch) -> None:
        """Predictions captured before the raw rows' retention are counted as too_old, never stored."""
        oldest = self.retention.oldest_accepted(time.time())
        if oldest is None:
            return
        refused = batch.refuse_older(oldest)
        if refused:
            self.metrics.add(too_old=len(refused))
            devices = ", ".join(sorted({prediction_store.device(row) for row in refused}))
            days = self.retention.prediction_days
            log.warning("refused %d predictions captured more than %g days ago (from %s)", len(refused), days, devices)

    def _gather(self) -> None:
        """The batcher: parses and prepares the next batch while the writer commits the last one."""
        while not self._stop.is_set():
            batch, acks = self._next_batch()
            if not acks:
                continue
            self._refuse_too_old(batch)
            observed = observation(prediction_store.figures(batch.prepare().rows))
            while not self._stop.is_set():  # stopping: left unacknowledged, the broker sends them again
                try:
                    self._parsed.put((batch, acks, observed), timeout=0.2)
                    break
                except queue.Full:
                    continue

    def _run(self) -> None:
        """The writer: commits each parsed batch, then acknowledges its messages."""
        while not self._stop.is_set():
            try:
                batch, acks, observed = self._parsed.get(timeout=0.2)
            except queue.Empty:
                continue
            if len(batch):
                self._commit(batch, observed)
            for sample in batch.samples:
                self.admission.settle(sample.meta.device_id, len(sample.jpeg), stored=True)
            for mid, qos in acks:
                if qos:
                    self._client.ack(mid, qos)
