"""Writing endpoints (labels, discards, retrain requests) take a bearer token when the service has
one (EDGELOOP_API_TOKEN); reads stay open, as Frigate's and Prometheus' do behind a proxy. One
middleware covers every POST under /api/, so a new writing endpoint cannot forget the check."""

from __future__ import annotations

import logging
import secrets

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

TOKEN_ENV = "EDGELOOP_API_TOKEN"
READS = {"GET", "HEAD", "OPTIONS"}  # every other method may write, so takes the token


def protect_writes(app: FastAPI, token: str | None) -> None:
    if not token:
        log.warning("the API's writing endpoints are open to anyone who reaches it: set %s", TOKEN_ENV)
        return
    expected = f"Bearer {token}".encode()

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        if request.method not in READS and request.url.path.startswith("/api/"):
            given = request.headers.get("authorization", "").encode()
            if not secrets.compare_digest(given, expected):
                return JSONResponse(
                    {"detail": "this endpoint needs the API token"}, 401, headers={"WWW-Authenticate": "Bearer"}
                )
        return await call_next(request)
