"""What the fuzz tests share: one hypothesis budget that keeps `make test` fast, and hostile inputs
(JSON-like values, mutations of a valid encoding) that every parser must turn into its own error."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def objects_like(keys: list[str]) -> st.SearchStrategy[dict]:
    """Objects with the keys a parser expects (and some it does not), holding any JSON values."""
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=8), JSON_VALUES, max_size=len(keys) + 2)


def mutations(data: bytes) -> st.SearchStrategy[bytes]:
    """A valid encoding cut short, with bytes changed, or with a slice repeated: what a bad link or a
    hostile sender makes of it."""

    def flip(changes: list[tuple[int, int]]) -> bytes:
        out = bytearray(data)
        for index, value in changes:
            out[index % len(out)] = value
        return bytes(out)

    cut = st.integers(0, len(data)).map(lambda n: data[:n])
    changed = st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), min_size=1, max_size=8).map(flip)
    repeated = st.tuples(st.integers(0, len(data)), st.integers(0, len(data))).map(
        lambda ab: data[: max(ab)] + data[min(ab) :]
    )
    return cut | changed | repeated


def jpeg_claiming(jpeg: bytes, height: int, width: int) -> bytes:
    """The same JPEG with a frame header that claims another size: a few KB that would decode to gigabytes."""
    sof = jpeg.index(b"\xff\xc0")
    return jpeg[: sof + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[sof + 9 :]
