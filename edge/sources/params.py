"""Camera settings in a source URI's query, as `csi://0?width=1920&height=1080&fps=30&flip=2`: each
source names the keys it takes and their ranges; any other key, a key given twice or a value out of
range is a SourceError that says what the source takes, before any camera is opened."""

from __future__ import annotations

from urllib.parse import parse_qsl

from edge.sources.base import SourceError

Ranges = dict[str, tuple[int, int]]

SIZE = (1, 16384)
FPS = (1, 1000)
FRAME: Ranges = {"width": SIZE, "height": SIZE, "fps": FPS}


def split(uri: str, ranges: Ranges) -> tuple[str, dict[str, int]]:
    """`uri` without its query, and the query's values (whole numbers within `ranges`)."""
    base, _, query = uri.partition("?")
    values: dict[str, int] = {}
    known = ", ".join(ranges) or "none"
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise SourceError(f"{base}: a malformed query {query!r} ({exc}); it takes {known}") from exc
    for key, text in pairs:
        if key not in ranges:
            raise SourceError(f"{base}: unknown parameter {key!r}; it takes {known}")
        if key in values:
            raise SourceError(f"{base}: {key} is given twice")
        low, high = ranges[key]
        if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
            raise SourceError(f"{base}: {key} must be a whole number from {low} to {high}, not {text!r}")
        values[key] = int(text)
    return base, values
