"""The samples API: the queue of samples waiting for a label (newest first, or in the order a
selection strategy gives them, near-duplicates collapsed), their pictures with their provenance,
and a person's decisions (label or discard), which cloud.labelling turns into training images."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from cloud import labelling
from cloud.aggregator.metrics import Metrics
from cloud.aggregator.writer import sample_path
from cloud.options import QueueOrder
from cloud.selection.queue import ModelQueue, Queue
from cloud.store import Database
from cloud.store import samples as sample_store
from common import protocol

log = logging.getLogger(__name__)


ORDER = Query(
    None,
    description="of the unlabelled: newest, or a selection strategy over the promoted version's embeddings "
    "and probabilities, each model's samples in turn, near-duplicates collapsed (default: the service's "
    "--queue-order); the labelled and discarded are newest first",
)


class SampleOut(BaseModel):
    id: str
    device_id: str
    camera: str | None = Field(description="which of the device's cameras saw it; None: the device has one")
    seq: int
    ts: float
    predicted: str
    score: float
    reason: str
    status: str
    label: str | None
    labelled_at: float | None = Field(description="when a person labelled or discarded it")
    dataset_path: str | None = Field(description="its training image, relative to the data directory")
    model: protocol.ModelRef
    url: str
    duplicates: int = Field(
        0, description="near-duplicates it stands for, left out of the queue (a label is not given to them)"
    )


class LabelIn(BaseModel):
    label: str = Field(description="1-64 of A-Z a-z 0-9 _ . - (it becomes a folder name)")


def _out(sample: sample_store.StoredSample, duplicates: int = 0) -> SampleOut:
    values = dataclasses.asdict(sample)
    model = protocol.ModelRef(name=values.pop("model_name"), version=values.pop("model_version"))
    return SampleOut(**values, model=model, url=f"/samples/{sample.id}.jpg", duplicates=duplicates)


def _ordered(queues: list[ModelQueue], response: Response) -> list[SampleOut]:
    """The models' queues one after the other, and how each was ordered in the X-Queue-Order header."""
    response.headers["X-Queue-Order"] = "; ".join(f"{quote(q.model)}: {q.order}" for q in queues)
    response.headers["X-Queue-Unreadable"] = str(sum(q.unreadable for q in queues))
    return [_out(o.sample, o.duplicates) for q in queues for o in q.offers]


def router(db: Database, data_dir: Path, metrics: Metrics, queue: Queue) -> APIRouter:
    api = APIRouter()

    def decided(sample_id: str, decide) -> SampleOut:
        try:
            decide()
        except labelling.UnknownSample as exc:
            raise HTTPException(404, str(exc)) from exc
        except labelling.UnknownModel as exc:
            raise HTTPException(409, str(exc)) from exc
        except labelling.LabelError as exc:
            log.info("refused a decision on sample %s: %s", sample_id[:12], exc)
            raise HTTPException(422, str(exc)) from exc
        stored = sample_store.get(db, sample_id)
        if stored is None:
            raise HTTPException(404, "no such sample")
        return _out(stored)

    @api.get("/api/samples", response_model=list[SampleOut])
    def samples(
        response: Response,
        status: Literal["unlabelled", "labelled", "discarded"] = "unlabelled",
        order: QueueOrder | None = ORDER,
        model: str | None = Query(None, description="only this model's samples"),
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[SampleOut]:
        order = order or queue.policy.order
        if status != "unlabelled" or order == "newest":
            response.headers["X-Queue-Order"] = "newest"
            return [_out(s) for s in sample_store.with_status(db, status, limit, model)]
        return _ordered(queue.offers(order, limit, model), response)

    @api.get("/samples/{sample_id}.jpg", response_class=FileResponse)
    def sample_picture(sample_id: str) -> FileResponse:
        path = sample_path(data_dir, sample_id) if labelling.SAMPLE_ID.match(sample_id) else None
        if path is None or not path.is_file():
            raise HTTPException(404, "no such sample")
        return FileResponse(path, media_type="image/jpeg")

    @api.post("/api/samples/{sample_id}/label", response_model=SampleOut)
    def label(sample_id: str, body: LabelIn) -> SampleOut:
        """A person's label: the sample joins its model's training images under that label."""
        out = decided(sample_id, lambda: labelling.label(db, data_dir, sample_id, body.label))
        metrics.add(samples_labelled=1)
        return out

    @api.post("/api/samples/{sample_id}/discard", response_model=SampleOut)
    def discard(sample_id: str) -> SampleOut:
        """Not worth training on: out of the queue, and out of the training images if it was labelled."""
        out = decided(sample_id, lambda: labelling.discard(db, data_dir, sample_id))
        metrics.add(samples_discarded=1)
        return out

    @api.get("/api/datasets/{model}/labels", response_model=list[str])
    def labels(model: str) -> list[str]:
        """The label folders of a model's training images (empty for a model without any yet)."""
        try:
            return labelling.labels_for(data_dir, model)
        except labelling.LabelError as exc:
            raise HTTPException(422, str(exc)) from exc

    return api
