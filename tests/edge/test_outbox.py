import json
import sqlite3
import time
from pathlib import Path

from common import protocol
from common.mqtt import url
from edge.batching import Packer
from edge.outbox import Message, Outbox
from edge.publisher import Publisher
from tests.support.device import unpacked
from tests.support.fleet import predicted
from tests.support.waiting import wait_for

TOPIC = protocol.Topics().predictions("cam-1")


def _messages(n: int, start: int = 0) -> list[tuple[str, bytes, int, int | None]]:
    return [("t", str(i).encode(), 1, None) for i in range(start, start + n)]


def _rows(seqs, created: float = 100.0, label: str = "daisy") -> list[Message]:
    """Predictions as the outbox holds them: items of a batch, with their seq."""
    return [Message(seq, TOPIC, predicted("cam-1", seq, label).batched(), 1, created, seq) for seq in seqs]


def _seqs(payload: bytes) -> list[int]:
    return [p["seq"] for p in unpacked(payload)]


def test_messages_come_back_in_order_until_removed(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.append(_messages(5))
    pending = box.pending()
    assert [m.payload for m in pending] == [b"0", b"1", b"2", b"3", b"4"]
    box.remove([pending[0].id, pending[2].id])
    assert [m.payload for m in box.pending()] == [b"1", b"3", b"4"]
    assert len(box) == 3
    assert [m.payload for m in box.pending(after_id=pending[3].id)] == [b"4"]


def test_survives_a_restart_with_its_counters(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.append(_messages(3), {"seq": 3})
    box.close()
    again = Outbox(tmp_path / "o.sqlite")
    assert len(again) == 3
    assert again.counter("seq") == 3
    assert again.counter("never-set") == 0


def test_bounded_in_size_dropping_oldest_and_counting(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_messages=10)
    assert box.append(_messages(8)) == 0
    assert box.append(_messages(5, start=8)) == 3
    assert [m.payload for m in box.pending()] == [str(i).encode() for i in range(3, 13)]
    assert len(box) == 10
    assert box.counter("dropped") == 3


def test_bounded_in_age(tmp_path: Path, monkeypatch) -> None:
    import edge.outbox

    box = Outbox(tmp_path / "o.sqlite", max_age_s=60)
    clock = [1000.0]
    monkeypatch.setattr(edge.outbox.time, "time", lambda: clock[0])
    box.append(_messages(2))
    clock[0] += 61
    assert box.append(_messages(1, start=2)) == 2
    assert [m.payload for m in box.pending()] == [b"2"]
    assert len(box) == 1
    assert box.counter("dropped") == 2


def test_predictions_leave_in_batches_and_a_partial_one_after_its_delay() -> None:
    packer = Packer("cam-1", max_predictions=3, max_delay_s=0.2)
    rows = _rows(range(1, 8), created=100.0)
    early = packer.pack(rows, complete=True, now=100.1)
    assert [m.ids for m in early] == [[1, 2, 3], [4, 5, 6]], "the seventh waits for company"
    assert [_seqs(m.payload) for m in early] == [[1, 2, 3], [4, 5, 6]]
    batch = protocol.decode_predictions(early[0].payload)
    assert isinstance(batch, protocol.PredictionBatch)
    assert batch.device_id == "cam-1"
    assert [m.ids for m in packer.pack(rows, complete=True, now=100.3)][-1] == [7], "its delay is over"
    assert [m.ids for m in packer.pack(rows, complete=True, now=100.1, flush=True)][-1] == [7], "flushing"
    assert len(packer.pack(rows, complete=False, now=999)) == 2, "the rows the read left out may join it"


def test_one_per_message_is_schema_1_and_a_whole_message_goes_as_it_is() -> None:
    single = Packer("cam-1", max_predictions=1)
    (message,) = single.pack(_rows([5]), complete=True, now=0)
    assert protocol.decode_predictions(message.payload) == predicted("cam-1", 5).model_copy(
        update={"ts": protocol.Prediction.decode(message.payload).ts}
    )
    old = Message(9, TOPIC, b'{"schema":1}', 1, 100.0, None)  # written before batching: sent unchanged
    rows = [*_rows([1, 2]), old, *_rows([3])]
    packed = Packer("cam-1").pack(rows, complete=True, now=200)
    assert [(m.ids, m.payload == old.payload) for m in packed] == [([1, 2], False), ([9], True), ([3], False)]


def test_a_batch_stays_within_the_byte_limit() -> None:
    rows = _rows(range(1, 8), label="x" * 300_000)
    packed = Packer("cam-1", max_predictions=100).pack(rows, complete=True, now=1000)
    assert [m.ids for m in packed] == [[1, 2, 3], [4, 5, 6], [7]]
    assert all(len(m.payload) <= protocol.BATCH_MAX_BYTES for m in packed)
    assert [_seqs(m.payload) for m in packed] == [[1, 2, 3], [4, 5, 6], [7]]


def test_an_outbox_from_before_batching_keeps_its_messages(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
                    "payload BLOB NOT NULL, qos INTEGER NOT NULL, created REAL NOT NULL)")  # fmt: skip
        old.execute("INSERT INTO messages (topic, payload, qos, created) VALUES ('t', x'7b7d', 1, ?)", (time.time(),))
    box = Outbox(path)
    box.append([(TOPIC, b"{}", 1, 2)])
    assert [(m.payload, m.seq) for m in box.pending()] == [(b"{}", None), (b"{}", 2)]


def test_a_backlog_drains_in_batches_each_acknowledged_batch_removing_its_rows(broker, recorder, tmp_path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    outbox.append([(TOPIC, predicted("cam-1", seq).batched(), 1, seq) for seq in range(1, 251)], {"seq": 250})
    publisher = Publisher(
        url.parse(broker.url), "cam-1", protocol.Topics(), outbox, lambda state: protocol.Status(state=state, ts=0),
        packer=Packer("cam-1", max_predictions=100, max_delay_s=0.5),
    )  # fmt: skip
    publisher.start()
    try:
        wait_for(lambda: len(outbox) == 0, 10, "the backlog to drain")
        wait_for(lambda: len(recorder.on("/predictions")) == 3, 10, "the backlog at the broker")
        assert [len(_seqs(m.payload)) for m in recorder.on("/predictions")] == [100, 100, 50]
        submitted = time.monotonic()
        publisher.submit(protocol.PREDICTIONS, predicted("cam-1", publisher.next_seq()).batched(), 251)
        wait_for(lambda: len(recorder.on("/predictions")) == 4, 10, "the live prediction at the broker")
        assert time.monotonic() - submitted >= 0.45, "alone, it waited for company up to its delay"
        wait_for(lambda: publisher.pending() == 0, 10, "the live prediction acknowledged")
        assert sorted(p["seq"] for m in recorder.on("/predictions") for p in unpacked(m.payload)) == list(range(1, 252))
        assert (publisher.counts["acked"], publisher.counts["messages"]) == (251, 4)
    finally:
        publisher.stop(flush_s=0)
    assert json.loads(recorder.on("/status")[-1].payload)["state"] == "offline"
