"""Packing the outbox's predictions into messages. A broker and a cloud pay per message, not per
prediction: a batch of the predictions ready (several cameras, a high frame rate, a backlog after an
outage) costs them one. A batch holds up to --batch-max-predictions (and protocol.BATCH_MAX_BYTES);
a partial one leaves once its oldest prediction has waited --batch-max-delay-ms, so a quiet device's
predictions still arrive within that delay. With a maximum of 1, each goes alone as schema 1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from common import protocol
from edge.outbox import Message

_ENVELOPE_BYTES = 200  # a batch's own keys and the device id, around its items


@dataclass(frozen=True)
class Outgoing:
    """One MQTT message and the outbox rows it carries, removed together when the broker acknowledges it."""

    topic: str
    payload: bytes
    qos: int
    ids: list[int]


class Packer:
    def __init__(self, device_id: str, max_predictions: int = 100, max_delay_s: float = 0.2) -> None:
        if not 1 <= max_predictions <= protocol.BATCH_MAX:
            raise ValueError(f"a batch holds 1 to {protocol.BATCH_MAX} predictions, not {max_predictions}")
        self.device_id = device_id
        self.max_predictions = max_predictions
        self.max_delay_s = max_delay_s

    def pack(self, rows: list[Message], complete: bool, now: float, flush: bool = False) -> list[Outgoing]:
        """Messages for pending `rows` (in outbox order). `complete`: no row is pending after them, so a
        partial batch at the end may leave (once its delay is over, or at once when flushing); otherwise
        it waits for the rows that the read left out."""
        groups = list(self._groups(rows))
        if groups and self._partial(groups[-1]):
            oldest = groups[-1][0].created
            if not complete or (not flush and now - oldest < self.max_delay_s):
                groups.pop()
        return [self._message(group) for group in groups]

    def _groups(self, rows: list[Message]) -> Iterator[list[Message]]:
        """Consecutive predictions on one topic, up to the count and the bytes; other rows alone."""
        group: list[Message] = []
        size = 0
        for row in rows:
            fits = len(group) < self.max_predictions and size + len(row.payload) < protocol.BATCH_MAX_BYTES
            if group and row.seq is not None and group[0].seq is not None and row.topic == group[0].topic and fits:
                group.append(row)
                size += len(row.payload) + 1
                continue
            if group:
                yield group
            group, size = [row], _ENVELOPE_BYTES + len(row.payload)
        if group:
            yield group

    def _partial(self, group: list[Message]) -> bool:
        """A batch that more predictions could join."""
        return group[0].seq is not None and len(group) < self.max_predictions

    def _message(self, group: list[Message]) -> Outgoing:
        first = group[0]
        if first.seq is None:
            payload = first.payload
        elif self.max_predictions == 1:
            payload = protocol.prediction_payload(self.device_id, first.payload)
        else:
            payload = protocol.batch_payload(self.device_id, [row.payload for row in group])
        return Outgoing(first.topic, payload, first.qos, [row.id for row in group])
