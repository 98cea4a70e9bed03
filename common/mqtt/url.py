"""Broker URLs: `mqtt://[user:pass@]host[:port]` and `mqtts://…` (TLS). Secrets may also come from
the environment (EDGELOOP_MQTT_USERNAME, EDGELOOP_MQTT_PASSWORD); logs show them through `common.redact`.
The files TLS needs (the CA, a client certificate) are options of their own, beside the URL."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from common.errors import ConfigError
from common.redact import redact

USERNAME_ENV = "EDGELOOP_MQTT_USERNAME"
PASSWORD_ENV = "EDGELOOP_MQTT_PASSWORD"


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a repr: tracebacks and logging errors print them
    ca_file: Path | None = None  # the CA that signed the broker's certificate (None: the system's)
    cert_file: Path | None = None  # this client's certificate and key (PEM), for a broker that asks for one

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse(url: str, ca_file: Path | None = None, cert_file: Path | None = None) -> BrokerAddress:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(f"broker URL must start with mqtt:// or mqtts://, not {redact(url)!r}")
    if not parts.hostname:
        raise ConfigError(f"broker URL has no host: {redact(url)!r}")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ConfigError(f"broker URL has a bad port: {redact(url)!r}") from exc
    username = unquote(parts.username) if parts.username else os.environ.get(USERNAME_ENV)
    password = unquote(parts.password) if parts.password else os.environ.get(PASSWORD_ENV)
    return BrokerAddress(parts.hostname, port, tls, username, password, ca_file, cert_file)
