"""Who may use the HTTP API. With a token (EDGELOOP_API_TOKEN) every write takes it as `Authorization:
Bearer <token>`, and so does every read unless reads are left open (--no-protect-reads): samples are
camera frames, and logs and metrics describe the fleet. Open whatever the policy: /healthz and /readyz
(probes carry no token), the dashboard's page (it holds no data; its script asks for the token), and
the bundles devices download (devices hold no API token; the signed announcement's sha256 is what makes
a bundle trustworthy, and only deployable versions are served). Without a token the service listens on
loopback only, unless the operator says --insecure-open-api. One middleware covers every path, so a new
endpoint cannot forget the check."""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from common.errors import ConfigError

log = logging.getLogger(__name__)

TOKEN_ENV = "EDGELOOP_API_TOKEN"
READS = {"GET", "HEAD", "OPTIONS"}  # every other method may write, so takes the token
OPEN_READS = re.compile(r"/|/healthz|/readyz|/models/[^/]+/[^/]+\.tar\.gz")
SHORT_TOKEN = 16


@dataclass(frozen=True)
class Access:
    """The service's access policy, from its options and environment."""

    token: str | None = None
    protect_reads: bool = True
    public_host: str | None = None  # --public-url's host: a proxy in front may pass it as Host and Origin
    loopback_only: bool = False  # open on loopback: only loopback host names are answered (DNS rebinding)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None, insecure_open_api: bool) -> None:
    """Refuse to listen beyond loopback without a token, unless the operator explicitly opens the API."""
    if token:
        if len(token) < SHORT_TOKEN:
            log.warning("%s is shorter than %d characters: use `openssl rand -hex 32`", TOKEN_ENV, SHORT_TOKEN)
        return
    if is_loopback(host):
        log.warning("no %s: the API is open to every local user and process of this machine", TOKEN_ENV)
        return
    if not insecure_open_api:
        raise ConfigError(
            f"refusing to serve on {host} without an API token: set {TOKEN_ENV} (e.g. `openssl rand -hex 32`), "
            "listen on 127.0.0.1 (--http-host), or pass --insecure-open-api"
        )
    log.warning(
        "--insecure-open-api: anyone who reaches %s can read the cameras' samples, label them into the training "
        "data and start trainings",
        host,
    )


def protect(app: FastAPI, access: Access) -> None:
    if not access.token:
        return
    expected = f"Bearer {access.token}".encode()

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        if request.method in READS and (not access.protect_reads or OPEN_READS.fullmatch(request.url.path)):
            return await call_next(request)
        given = request.headers.get("authorization", "").encode()
        if not secrets.compare_digest(given, expected):
            return JSONResponse(
                {"detail": f"this endpoint needs the API token ({TOKEN_ENV})"},
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await call_next(request)
