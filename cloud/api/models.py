"""The closed loop over HTTP: manual retrain requests, training jobs with their logs, the registry's
versions, and the bundles devices download."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, PlainTextResponse
from pydantic import BaseModel, Field

from cloud.datasets import dataset_dir
from cloud.registry.figures import SliceFigures, slice_figures
from cloud.registry.versions import Registry, RegistryError, Version
from cloud.training.jobs import Job, Jobs
from cloud.training.trainer import job_log
from common import protocol

log = logging.getLogger(__name__)

LOG_TAIL_BYTES = 64 * 1024
DEPLOYABLE = {"promoted", "retired"}


class RetrainIn(BaseModel):
    model: str
    reason: str = Field("manual", max_length=200)


@dataclass(frozen=True)
class JobOut(Job):
    coalesced: bool = False  # this request joined a training already queued or running


@dataclass(frozen=True)
class VersionOut(SliceFigures, Version):
    """A version as stored, with its per-slice test accuracy lifted out of `metrics`."""

    url: str  # where devices download it


def _version_out(v: Version) -> VersionOut:
    return VersionOut(**vars(v), **vars(slice_figures(v.metrics)), url=f"/models/{v.name}/{v.version}.tar.gz")


def _checked(value: str, what: str) -> str:
    try:
        return protocol.check_id(value, what)
    except protocol.ProtocolError as exc:
        raise HTTPException(422, str(exc)) from exc


def router(jobs: Jobs, registry: Registry, data_dir: Path) -> APIRouter:
    api = APIRouter()

    @api.post("/api/retrain", response_model=JobOut)
    def retrain(body: RetrainIn) -> JobOut:
        model = _checked(body.model, "model name")
        if not dataset_dir(data_dir, model).is_dir():
            raise HTTPException(404, f"no dataset for model {model!r}")
        job, created = jobs.request(model, f"manual (http): {body.reason}")
        return JobOut(**vars(job), coalesced=not created)

    @api.get("/api/jobs", response_model=list[JobOut])
    def recent_jobs(limit: int = Query(20, ge=1, le=200)) -> list[JobOut]:
        return [JobOut(**vars(j)) for j in jobs.recent(limit)]

    @api.get("/api/jobs/{job_id}/log", response_class=PlainTextResponse)
    def job_output(job_id: str) -> str:
        path = job_log(data_dir, _checked(job_id, "job id"))
        if not path.is_file():
            raise HTTPException(404, "no log for this job (yet)")
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
            return f.read().decode(errors="replace")

    @api.get("/api/models", response_model=list[VersionOut])
    def versions(name: str | None = None) -> list[VersionOut]:
        return [_version_out(v) for v in registry.list(_checked(name, "model name") if name else None)]

    @api.get("/models/{name}/{version}.tar.gz", response_class=FileResponse)
    def archive(name: str, version: str) -> FileResponse:
        """A deployable version's bundle, open to devices (they hold no API token): promoted (to the fleet or
        a canary) or retired (what a rollback returns to); never a candidate or a rejected version."""
        name, version = _checked(name, "model name"), _checked(version, "model version")
        try:
            deployable = registry.get(name, version).state in DEPLOYABLE
        except RegistryError:
            deployable = False
        path = registry.archive(name, version)
        if not deployable or not path.is_file():
            raise HTTPException(404, "no such deployable model version")
        return FileResponse(path, media_type="application/gzip", filename=path.name)

    return api
