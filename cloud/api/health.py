"""Liveness and readiness, for probes and load balancers, which carry no token: both answer without
one and show nothing but their checks. Alive: the HTTP server answers. Ready: the store answers a
trivial query and the aggregator's MQTT session is up, cheap at any store size."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse


def router(checks: Callable[[], dict[str, bool]]) -> APIRouter:
    api = APIRouter()

    @api.get("/healthz")
    def alive() -> dict[str, str]:
        return {"status": "alive"}

    @api.get("/readyz")
    def ready() -> JSONResponse:
        results = checks()
        ok = all(results.values())
        return JSONResponse({"status": "ready" if ok else "not ready", **results}, 200 if ok else 503)

    return api
