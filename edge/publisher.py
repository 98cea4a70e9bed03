"""The device's MQTT side: predictions and samples flow through the outbox to the broker at QoS 1
and leave the outbox only when acknowledged; status is retained with an `offline` last will;
telemetry is QoS 0 and skipped (and counted) while disconnected. paho's network thread reconnects
with backoff and re-sends unacknowledged QoS 1 messages; the outbox covers a restart of the device.
Predictions leave in batches (edge.batching): a batch the broker acknowledges removes exactly its
rows; one cut short by a crash is sent again whole, and the cloud stores each (device, seq) once."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from common import protocol
from common.mqtt.client import make_client, publish_properties
from common.mqtt.url import BrokerAddress
from edge.batching import Packer
from edge.outbox import Outbox

log = logging.getLogger(__name__)

WINDOW = 10_000  # outbox rows (predictions) handed to paho and not yet acknowledged
QUEUE_MAX = 100_000  # predictions waiting for the outbox; past it (a stuck disk) new ones are dropped, counted
SEQ_COUNTER = "seq"
ERROR_LOG_EVERY_S = 10.0
LOOP_STOP_S = 2.0


class Publisher:
    def __init__(
        self,
        address: BrokerAddress,
        device_id: str,
        topics: protocol.Topics,
        outbox: Outbox,
        status: Callable[[str], protocol.Status],
        keepalive_s: int = 30,
        packer: Packer | None = None,
    ) -> None:
        self.address = address
        self.device_id = device_id
        self.outbox = outbox
        self._status = status
        self._topics = {
            kind: topics.topic(kind, device_id=device_id) for kind in protocol.WIRE if kind.sender == "device"
        }
        self._packer = packer or Packer(device_id)
        self._queue: queue.Queue[tuple[str, bytes, int, int | None]] = queue.Queue(maxsize=QUEUE_MAX)
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._flushing = threading.Event()  # partial batches leave without waiting for their delay
        self._acked_mids: list[int] = []  # appended by paho's thread, drained by ours
        self._acked = threading.Event()  # set with each append: a full window waits for it, not for a timeout
        self._handed: dict[int, list[int]] = {}  # paho mid -> outbox ids; only the publisher thread touches it
        self._in_flight = 0  # outbox rows in self._handed
        self._last_handed = 0
        self._ack_lock = threading.Lock()  # never held while calling into paho (paho calls us under its locks)
        self._seq_lock = threading.Lock()
        self._seq = outbox.counter(SEQ_COUNTER)
        self._error_logged = -ERROR_LOG_EVERY_S
        self.counts = {
            "published": 0, "messages": 0, "acked": 0, "refused": 0, "skipped_offline": 0, "outbox_errors": 0,
            "dropped": 0, "reconnects": 0,
        }  # fmt: skip
        self._subscriptions_lock = threading.Lock()
        self._refused: list[int] = []  # mids the broker answered with an error reason code
        self._client = make_client(address, f"edgeloop-{device_id}")
        self._client.max_inflight_messages_set(100)
        self._client.will_set(**self._status_message("offline"))
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._subscriptions: dict[str, Callable[[bytes], None]] = {}
        self._keepalive = keepalive_s
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)

    def next_seq(self) -> int:
        """The next prediction's sequence number (persisted with the prediction in the outbox)."""
        with self._seq_lock:
            self._seq += 1
            return self._seq

    def subscribe(self, topic: str, handler: Callable[[bytes], None]) -> None:
        """Call `handler(payload)` (on paho's thread: keep it short) for messages on `topic`, from every connect on."""
        with self._subscriptions_lock:
            self._subscriptions[topic] = handler
        if self.connected:
            self._client.subscribe(topic, qos=1)

    def _on_message(self, client, userdata, message) -> None:
        handler = self._subscriptions.get(message.topic)
        if handler is None:
            return
        try:
            handler(message.payload)
        except Exception:
            log.exception("handler for %s failed; carrying on", message.topic)

    def start(self) -> None:
        log.info("connecting to %s as %s", self.address, self.device_id)
        self._client.connect_async(self.address.host, self.address.port, self._keepalive)
        self._client.loop_start()
        self._thread.start()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def submit(self, kind: protocol.Kind, payload: bytes, seq: int | None = None) -> None:
        """Queue a message for the outbox (a QoS 1 kind); `seq` marks a prediction, given as
        `Prediction.batched()` for the packer, and persists the counter."""
        try:
            self._queue.put_nowait((self._topics[kind], payload, kind.qos, seq))
        except queue.Full:
            self.counts["dropped"] += 1

    def announce(self, message: str | None = None) -> None:
        """Publish the current status (retained), e.g. after a model swap or a rejected update."""
        status = self._status("online").model_copy(update={"message": message})
        self.publish_now(protocol.STATUS, status.encode())

    def publish_now(self, kind: protocol.Kind, payload: bytes, **properties) -> bool:
        """Send outside the outbox (telemetry, status, samples): skipped and counted when offline."""
        if not self.connected:
            self.counts["skipped_offline"] += 1
            return False
        props = publish_properties(**properties) if properties else None
        info = self._client.publish(self._topics[kind], payload, kind.qos, kind.retain, props)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def _status_message(self, state: str) -> dict:
        """paho's publish (or will_set) arguments for a status: its QoS and retain flag from the table."""
        kind = protocol.STATUS
        return {
            "topic": self._topics[kind],
            "payload": self._status(state).encode(),
            "qos": kind.qos,
            "retain": kind.retain,
        }

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        log.info("connected to %s", self.address)
        client.publish(**self._status_message("online"))
        with self._subscriptions_lock:
            topics = list(self._subscriptions)
        for topic in topics:
            client.subscribe(topic, qos=1)
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._stop.is_set():
            log.info("disconnected from %s", self.address)
        elif self._connected.is_set():
            self.counts["reconnects"] += 1
            log.warning("disconnected from %s (%s); reconnecting", self.address, reason_code)
        self._connected.clear()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._ack_lock:
            # An MQTT v5 PUBACK can refuse (not authorised, quota exceeded): that message is not delivered.
            (self._refused if reason_code.is_failure else self._acked_mids).append(mid)
            self._acked.set()

    def _store(self, block_s: float) -> None:
        """Move queued messages into the outbox, in one transaction."""
        batch = []
        try:
            batch.append(self._queue.get(timeout=block_s))
            while len(batch) < 5000:
                batch.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        if not batch:
            return
        seqs = [seq for *_, seq in batch if seq is not None]
        try:
            self.outbox.append(batch, {SEQ_COUNTER: max(seqs)} if seqs else None)
        except Exception:
            self.counts["outbox_errors"] += 1
            self.counts["dropped"] += len(batch)
            if time.monotonic() - self._error_logged >= ERROR_LOG_EVERY_S:  # a full disk: not a traceback a batch
                self._error_logged = time.monotonic()
                log.exception("outbox write failed; %d messages lost so far", self.counts["dropped"])

    def _hand_over(self) -> bool:
        """Give paho the next messages from the outbox, in order, keeping at most WINDOW rows unacknowledged.
        True when it gave some: a backlog is being drained."""
        with self._ack_lock:
            mids, self._acked_mids = self._acked_mids, []
            refused, self._refused = self._refused, []
            self._acked.clear()
        # Every mid handed over earlier is registered by now; others are status, sample or telemetry mids.
        acked = [i for mid in mids if mid in self._handed for i in self._handed.pop(mid)]
        refused_ids = [i for mid in refused if mid in self._handed for i in self._handed.pop(mid)]
        self._in_flight -= len(acked) + len(refused_ids)
        if refused_ids:
            self.counts["refused"] += len(refused_ids)
            log.error("the broker refused %d predictions (ACL or quota?); they stay in the outbox", len(refused_ids))
            self._last_handed = min(self._last_handed, min(refused_ids) - 1)
            self._stop.wait(1.0)  # back off before handing them over again
        self.outbox.remove(acked)
        self.counts["acked"] += len(acked)
        room = WINDOW - self._in_flight
        if room <= 0 or not self.connected:
            return False
        rows = self.outbox.pending(self._last_handed, room)
        messages = self._packer.pack(rows, len(rows) < room, time.time(), self._flushing.is_set())
        for message in messages:
            info = self._client.publish(message.topic, message.payload, message.qos)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                log.warning("publish refused (%s); will retry", mqtt.error_string(info.rc))
                return False
            self._handed[info.mid] = message.ids
            self._in_flight += len(message.ids)
            self._last_handed = message.ids[-1]
            self.counts["published"] += len(message.ids)
            self.counts["messages"] += 1
        return bool(messages)

    def _run(self) -> None:
        draining = False
        while not self._stop.is_set() or not self._queue.empty():
            try:
                self._store(0.0 if draining else 0.02)
                draining = self._hand_over()
                if not draining and self._in_flight >= WINDOW:  # a backlog: on as soon as the broker acknowledges
                    draining = self._acked.wait(0.02)
            except Exception:  # a full or broken disk: log, count, back off, carry on
                self.counts["outbox_errors"] += 1
                log.exception("publisher loop failed; retrying")
                time.sleep(1.0)

    def pending(self) -> int:
        return len(self.outbox) + self._queue.qsize()

    def flush(self, timeout_s: float, wait_for_broker: bool = True) -> bool:
        """Wait until everything queued has been acknowledged, or the timeout passes; without
        `wait_for_broker`, only while connected (a device told to stop waits for no broker that is down)."""
        deadline = time.monotonic() + timeout_s
        self._flushing.set()
        try:
            while time.monotonic() < deadline and (wait_for_broker or self.connected):
                if self.pending() == 0 and self.connected:
                    return True
                time.sleep(0.02)
            return self.pending() == 0
        finally:
            self._flushing.clear()

    def stop(self, flush_s: float = 5.0, wait_for_broker: bool = True) -> None:
        """Flush, announce `offline` (retained) and disconnect; what is left stays in the outbox."""
        self.flush(flush_s, wait_for_broker)
        self._stop.set()
        self._thread.join()
        self._hand_over()
        if self.connected:
            info = self._client.publish(**self._status_message("offline"))
            try:
                info.wait_for_publish(timeout=2)
            except (RuntimeError, ValueError):
                log.warning("could not publish offline before disconnecting; the last will says it")
        self._client.disconnect()
        # paho's network thread may sit in a connect or a name lookup that has no broker to reach: wait so long only.
        stopping = threading.Thread(target=self._client.loop_stop, name="mqtt-stop", daemon=True)
        stopping.start()
        stopping.join(LOOP_STOP_S)
        left = len(self.outbox)
        if left:
            log.warning("%d messages stay in the outbox for the next start", left)
        self.outbox.close()
