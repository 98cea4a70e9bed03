"""Logging for every command: text for people, or one JSON object per line for a log pipeline (Loki,
Elasticsearch, `kubectl logs | jq`). Either way no password reaches the log: URLs lose theirs, and the
values of the secrets given through the environment are masked wherever they appear."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import datetime, timezone

from common.redact import redact_urls

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
SECRET_ENV = re.compile(r"PASSWORD|TOKEN|SECRET")
MASK = "***"
SECRET_MIN_CHARS = 6  # a shorter value would mask ordinary words of the log

_handler: logging.Handler | None = None


def _secrets() -> list[str]:
    """Values of the environment's secrets (EDGELOOP_MQTT_PASSWORD, EDGELOOP_API_TOKEN, PGPASSWORD…)."""
    return sorted(
        (v for k, v in os.environ.items() if SECRET_ENV.search(k) and len(v) >= SECRET_MIN_CHARS), key=len, reverse=True
    )


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return redact_urls(text)


class _Redacting(logging.Formatter):
    """Formats as its parent does, then takes the credentials out of the whole line (message and traceback)."""

    def __init__(self, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self._secrets = _secrets()

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record), self._secrets)


class JsonFormatter(_Redacting):
    """`{"ts", "level", "logger", "message", "exc"?}` on one line; the traceback, if any, in `exc`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage(), self._secrets),
        }
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info), self._secrets)
        return json.dumps(entry, ensure_ascii=False)


def setup(level: str = "INFO", fmt: str = "text") -> None:
    """Route every logger (uvicorn's, paho's, TensorFlow's Python side) through one handler on stderr."""
    global _handler
    root = logging.getLogger()
    if _handler is not None:  # a second command in one process (tests) replaces the first one's handler
        root.removeHandler(_handler)
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(JsonFormatter() if fmt == "json" else _Redacting(TEXT_FORMAT))
    root.addHandler(_handler)
    root.setLevel(level)
