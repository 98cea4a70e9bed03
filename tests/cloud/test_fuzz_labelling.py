"""Hostile ids and labels against labelling (they come from the API, and become file names): a
sample id is 64 lowercase hex digits or UnknownSample; a label files the picture under its own
folder or raises LabelError, and no other file moves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cloud import labelling
from cloud.store import connect
from tests.support.fuzz import FUZZ, IDS
from tests.support.samples import dataset_files, store_samples

HEX = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@FUZZ
@given(value=st.text(max_size=70) | HEX | HEX.map(lambda h: h + "\n") | HEX.map(str.upper))
@example(value="0" * 64 + "\n")
@example(value="../" + "0" * 61)
def test_sample_ids_are_exactly_64_lowercase_hex_digits(value: str) -> None:
    try:
        assert labelling.check_sample_id(value) == value
    except labelling.UnknownSample:
        assert not re.fullmatch("[0-9a-f]{64}", value)
        return
    assert re.fullmatch("[0-9a-f]{64}", value)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("labelling") / "data"
    (data / "datasets/flowers").mkdir(parents=True)
    db = connect(f"sqlite:///{data.parent / 'edgeloop.db'}")
    yield db, data, store_samples(db, data, 1)[0].id
    db.close()


@FUZZ
@given(name=st.text(max_size=70) | IDS)
@example(name="../../../etc")
@example(name="..")
@example(name="roses\n")
def test_any_label_files_the_picture_in_its_folder_or_is_refused(store, name: str) -> None:
    db, data, sample_id = store
    before = dataset_files(data)
    try:
        path = labelling.label(db, data, sample_id, name)
    except labelling.LabelError:
        assert dataset_files(data) == before
        return
    assert path == f"datasets/flowers/{name}/{sample_id}.jpg"
    assert dataset_files(data) == [path]
    assert (data / path).resolve().is_relative_to((data / "datasets/flowers").resolve())


@FUZZ
@given(sample_id=st.text(max_size=70) | HEX, name=IDS)
def test_labelling_an_unknown_or_hostile_id_changes_nothing(store, sample_id: str, name: str) -> None:
    db, data, known = store
    before = sorted(p.relative_to(data).as_posix() for p in Path(data).rglob("*"))
    if sample_id == known:
        return
    with pytest.raises(labelling.UnknownSample):
        labelling.label(db, data, sample_id, name)
    with pytest.raises(labelling.UnknownSample):
        labelling.discard(db, data, sample_id)
    assert sorted(p.relative_to(data).as_posix() for p in Path(data).rglob("*")) == before
