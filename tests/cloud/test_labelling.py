"""Labelling on SQLite and a real PostgreSQL: a label files the sample's picture under its model's
label folder by content hash (the layout the retrainer reads), a relabel moves it, a discard removes
it, the provenance stays on the row and in the API, and hostile ids and labels touch nothing."""

import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud import labelling
from cloud.aggregator.metrics import Metrics
from cloud.aggregator.writer import sample_path
from cloud.api.app import create_app
from cloud.retrain.dataset import Splits, scan
from cloud.store import connect
from tests.support.samples import dataset_files, store_samples

PROVENANCE = "device_id, seq, model_version, predicted, score, status, label, labelled_at, dataset_path"


@pytest.fixture
def store(db_url: str, tmp_path: Path):
    db = connect(db_url)
    (tmp_path / "data/datasets/flowers").mkdir(parents=True)  # the model is part of the loop
    yield db, tmp_path / "data"
    db.close()


def provenance(db, sample_id: str) -> dict:
    row = db.query(f"SELECT {PROVENANCE} FROM samples WHERE id = ?", (sample_id,))[0]
    return dict(zip(PROVENANCE.split(", "), row, strict=True))


def test_a_label_files_the_picture_by_hash_and_keeps_the_provenance(store) -> None:
    db, data = store
    (sample,) = store_samples(db, data, 1)
    assert labelling.labels_for(data, "flowers") == []
    before = time.time()
    path = labelling.label(db, data, sample.id, "tulips")
    assert path == f"datasets/flowers/tulips/{sample.id}.jpg"
    assert (data / path).read_bytes() == sample.jpeg
    assert sample_path(data, sample.id).read_bytes() == sample.jpeg  # the original stays for a relabel
    row = provenance(db, sample.id)
    assert before <= row.pop("labelled_at") <= time.time()
    assert row == {"device_id": "cam-1", "seq": 1, "model_version": "3", "predicted": "daisy", "score": 0.26,
                   "status": "labelled", "label": "tulips", "dataset_path": path}  # fmt: skip
    assert labelling.labels_for(data, "flowers") == ["tulips"]


def test_a_model_without_a_dataset_folder_is_refused(store) -> None:
    db, data = store
    (sample,) = store_samples(db, data, 1, model="hand-deployed")
    assert labelling.labels_for(data, "hand-deployed") == []
    with pytest.raises(labelling.UnknownModel, match="datasets/hand-deployed/ folder"):
        labelling.label(db, data, sample.id, "daisy")
    assert not (data / "datasets/hand-deployed").exists()
    assert provenance(db, sample.id)["status"] == "unlabelled"
    (data / "datasets/hand-deployed").mkdir()  # an operator makes it a model of the loop
    assert labelling.label(db, data, sample.id, "daisy") == f"datasets/hand-deployed/daisy/{sample.id}.jpg"


def test_a_relabel_moves_the_picture_and_a_discard_removes_it(store) -> None:
    db, data = store
    first, second = store_samples(db, data, 2)
    labelling.label(db, data, first.id, "roses")
    labelling.label(db, data, second.id, "roses")
    labelling.label(db, data, first.id, "daisy")
    assert dataset_files(data) == [f"datasets/flowers/daisy/{first.id}.jpg", f"datasets/flowers/roses/{second.id}.jpg"]
    assert provenance(db, first.id)["label"] == "daisy"
    labelling.discard(db, data, first.id)
    assert dataset_files(data) == [f"datasets/flowers/roses/{second.id}.jpg"]
    row = provenance(db, first.id)
    assert (row["status"], row["label"], row["dataset_path"]) == ("discarded", None, None)
    assert row["labelled_at"] is not None
    labelling.label(db, data, first.id, "tulips")  # a discard is not final
    assert (data / f"datasets/flowers/tulips/{first.id}.jpg").read_bytes() == first.jpeg
    assert labelling.labels_for(data, "flowers") == ["daisy", "roses", "tulips"]  # an emptied folder stays a choice


@pytest.mark.parametrize(
    "bad", ["../x", "..", ".hidden", "a/b", "x" * 65, "", "daisy\n", "daisy ", "café", "-x", "retrain.yaml"]
)
def test_hostile_labels_are_refused_and_touch_nothing(store, bad: str) -> None:
    db, data = store
    (sample,) = store_samples(db, data, 1)
    (data / "datasets/flowers/retrain.yaml").write_text("architecture: mobilenet_0.25_224\n")
    with pytest.raises(labelling.LabelError):
        labelling.label(db, data, sample.id, bad)
    assert dataset_files(data) == ["datasets/flowers/retrain.yaml"]
    assert sorted(p.name for p in data.iterdir()) == ["datasets", "samples"]
    assert provenance(db, sample.id)["status"] == "unlabelled"


def test_hostile_ids_and_model_names_are_refused(store) -> None:
    db, data = store
    (sample,) = store_samples(db, data, 1)
    (evil,) = store_samples(db, data, 1, model="../../evil", seed=1)  # a device's model name is not checked on ingest
    for bad_id in ["../x", "0" * 63, "0" * 65, "g" * 64, sample.id.upper(), "0" * 64]:
        with pytest.raises(labelling.UnknownSample):
            labelling.label(db, data, bad_id, "daisy")
        with pytest.raises(labelling.UnknownSample):
            labelling.discard(db, data, bad_id)
    with pytest.raises(labelling.LabelError):
        labelling.label(db, data, evil.id, "daisy")
    with pytest.raises(labelling.LabelError):
        labelling.labels_for(data, "../../evil")
    assert dataset_files(data) == []
    assert not (data.parent / "evil").exists()
    assert provenance(db, evil.id)["status"] == "unlabelled"


def test_the_retrainer_reads_the_labelled_samples_under_their_labels(store) -> None:
    db, data = store
    samples = store_samples(db, data, 5)
    names = ["daisy", "roses", "daisy", "roses", "daisy"]
    for sample, name in zip(samples, names, strict=True):
        labelling.label(db, data, sample.id, name)
    labelling.discard(db, data, samples[4].id)
    dataset = scan(data / "datasets/flowers", Splits(0, 0, 0, 0))
    assert dataset.labels == ["daisy", "roses"]
    found = {(r.path.name, dataset.labels[r.label]) for r in dataset.records}
    assert found == {(f"{s.id}.jpg", name) for s, name in zip(samples[:4], names[:4], strict=True)}


def test_two_people_labelling_one_sample_last_one_wins(db_url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "datasets/flowers").mkdir(parents=True)
    people = [connect(db_url), connect(db_url)]  # two connections, as two service instances would have
    (sample,) = store_samples(people[0], data, 1)
    errors: list[BaseException] = []

    def person(db, name: str) -> None:
        try:
            for _ in range(25):
                labelling.label(db, data, sample.id, name)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=person, args=(db, name)) for db, name in zip(people, ["daisy", "roses"], strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    row = provenance(people[0], sample.id)
    assert dataset_files(data) == [row["dataset_path"]] == [f"datasets/flowers/{row['label']}/{sample.id}.jpg"]
    for db in people:
        db.close()


def test_the_api_labels_discards_and_says_why_it_refuses(store) -> None:
    db, data = store
    first, second, third = store_samples(db, data, 3)
    api = TestClient(create_app(db, Metrics(), data))
    labelled = api.post(f"/api/samples/{first.id}/label", json={"label": "roses"})
    assert labelled.status_code == 200
    body = labelled.json()
    assert (body["status"], body["label"], body["dataset_path"]) == (
        "labelled",
        "roses",
        f"datasets/flowers/roses/{first.id}.jpg",
    )
    assert (body["device_id"], body["seq"], body["predicted"], body["model"]) == (
        "cam-1",
        1,
        "daisy",
        {"name": "flowers", "version": "3"},
    )
    assert api.post(f"/api/samples/{second.id}/discard").json()["status"] == "discarded"
    assert api.post(f"/api/samples/{'0' * 64}/label", json={"label": "roses"}).status_code == 404
    assert api.post("/api/samples/not-an-id/label", json={"label": "roses"}).status_code == 404
    assert api.post(f"/api/samples/{'0' * 64}/discard").status_code == 404
    refused = api.post(f"/api/samples/{third.id}/label", json={"label": "../x"})
    assert refused.status_code == 422
    assert "invalid label" in refused.json()["detail"]
    assert api.post(f"/api/samples/{third.id}/label", json={}).status_code == 422
    assert api.post(f"/api/samples/{third.id}/label", json={"label": "x" * 65}).status_code == 422
    assert [s["id"] for s in api.get("/api/samples").json()] == [third.id]
    assert [s["id"] for s in api.get("/api/samples", params={"status": "labelled"}).json()] == [first.id]
    discarded = api.get("/api/samples", params={"status": "discarded"}).json()
    assert [(s["id"], s["label"], s["dataset_path"]) for s in discarded] == [(second.id, None, None)]
    assert discarded[0]["labelled_at"] > 0
    assert api.get("/api/samples", params={"status": "bogus"}).status_code == 422
    assert api.get("/api/datasets/flowers/labels").json() == ["roses"]
    assert api.get("/api/datasets/unknown/labels").json() == []
    assert api.get("/api/datasets/.hidden/labels").status_code == 422
    assert api.get(f"/samples/{first.id}.jpg").content == first.jpeg
    (unknown,) = store_samples(db, data, 1, model="hand-deployed", seed=1)
    conflict = api.post(f"/api/samples/{unknown.id}/label", json={"label": "roses"})
    assert conflict.status_code == 409
    assert "no datasets/hand-deployed/ folder" in conflict.json()["detail"]
    assert api.post(f"/api/samples/{unknown.id}/discard").status_code == 200  # discarding needs no dataset
    metrics = api.get("/metrics").text
    assert "edgeloop_samples_labelled_total 1.0" in metrics
    assert "edgeloop_samples_discarded_total 2.0" in metrics
