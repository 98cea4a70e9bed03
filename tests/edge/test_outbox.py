from pathlib import Path

from edge.outbox import Outbox


def _messages(n: int, start: int = 0) -> list[tuple[str, bytes, int]]:
    return [("t", str(i).encode(), 1) for i in range(start, start + n)]


def test_messages_come_back_in_order_until_removed(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.append(_messages(5))
    pending = box.pending()
    assert [m.payload for m in pending] == [b"0", b"1", b"2", b"3", b"4"]
    box.remove([pending[0].id, pending[2].id])
    assert [m.payload for m in box.pending()] == [b"1", b"3", b"4"]
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
    assert box.counter("dropped") == 2
