"""Hostile bundle archives: escaping paths, links, devices, huge or lying members, duplicates, wrong
checksums, mangled bytes. unpack refuses each with BundleError, writes nothing outside its target,
leaves no partial bundle behind and keeps the bundle already there as it was."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from common import bundle
from tests.support.fuzz import FUZZ, mutations

NAME = "b"
OUT = "1/2/3/4/5/6/out"  # deep in the temporary folder: a member escaping six levels still lands where we look


def _write_bundle(path: Path, labels: list[str]) -> Path:
    """A bundle that passes every check of load() without TensorFlow: its models are placeholder bytes."""
    (path / bundle.SAVED_MODEL).mkdir(parents=True)
    (path / bundle.TFLITE).write_bytes(b"TFL3 placeholder")
    (path / bundle.SAVED_MODEL / "saved_model.pb").write_bytes(b"placeholder")
    meta = bundle.ModelMeta(
        name=NAME,
        version="1",
        created="2024-01-01T00:00:00Z",
        architecture="mobilenet_0.25_128",
        input=bundle.InputSpec(height=128, width=128, mean=127.5, std=127.5),
        labels=labels,
        metrics=bundle.Metrics(test_accuracy=1, validation_accuracy=1, confusion_matrix=[], per_class={}),
        timings=bundle.Timings(bottleneck_s=0, train_s=0),
        bottlenecks=bundle.BottleneckStats(computed=0, cached=0),
        images=bundle.ImageStats(train=0, validation=0, test=0),
    )
    bundle.write_meta(path, meta)
    return path


SOURCE = _write_bundle(Path(tempfile.mkdtemp(prefix="fuzz-bundle-")) / NAME, ["red", "green"])
MEMBERS = {p.relative_to(SOURCE).as_posix(): p.read_bytes() for p in sorted(SOURCE.rglob("*")) if p.is_file()}


def _member(
    name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = ""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data) if kind == tarfile.REGTYPE else 0
    return info, data


GOOD = [_member(f"{NAME}/{name}", data) for name, data in MEMBERS.items()]


def _archive(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue()


GOOD_ARCHIVE = _archive(GOOD)


def _snapshot(root: Path) -> dict[str, str]:
    """Every entry under root, links not followed: what it is and what it holds."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[relative] = "link to " + os.readlink(path)
            elif path.is_file():
                found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[relative] = "dir" if path.is_dir() else "other"
    return found


def _unpack_over_a_good_bundle(archive: bytes) -> tuple[bundle.Bundle | None, dict[str, str], dict[str, str]]:
    """(the bundle unpacked, None if refused; the tree before; the tree after), in a fresh folder
    holding an archive and, deep below, `out/`, where an older good bundle is unpacked already."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "good.tar.gz").write_bytes(GOOD_ARCHIVE)
        bundle.unpack(root / "good.tar.gz", root / OUT)
        (root / "hostile.tar.gz").write_bytes(archive)
        before = _snapshot(root)
        try:
            unpacked = bundle.unpack(root / "hostile.tar.gz", root / OUT)
        except bundle.BundleError:
            unpacked = None
        return unpacked, before, _snapshot(root)


def _assert_refused_and_nothing_changed(archive: bytes) -> None:
    unpacked, before, after = _unpack_over_a_good_bundle(archive)
    assert unpacked is None, f"accepted {unpacked}"
    assert after == before


def _assert_refused_or_sound(archive: bytes) -> None:
    """Refused with nothing changed, or a bundle that passes every check, written only under out/b."""
    unpacked, before, after = _unpack_over_a_good_bundle(archive)
    if unpacked is None:
        assert after == before
        return
    assert unpacked.meta.files.keys() >= set(bundle.REQUIRED)
    outside = {k: v for k, v in after.items() if not k.startswith(f"{OUT}/{NAME}")}
    assert outside == {k: v for k, v in before.items() if not k.startswith(f"{OUT}/{NAME}")}


def test_the_good_archive_unpacks() -> None:
    unpacked, before, after = _unpack_over_a_good_bundle(GOOD_ARCHIVE)
    assert unpacked is not None
    assert unpacked.meta.labels == ["red", "green"]
    assert after == before


SEGMENTS = st.sampled_from(["..", ".", "", NAME, "etc", "model.json", "x", "~", "\\..", "..."])


@FUZZ
@given(parts=st.lists(SEGMENTS | st.text(max_size=6), min_size=1, max_size=5), absolute=st.booleans())
@example(parts=["..", "escape.txt"], absolute=False)
@example(parts=[NAME, "..", "..", "escape.txt"], absolute=False)
@example(parts=["etc", "passwd-copy"], absolute=True)
def test_member_paths_never_escape(parts: list[str], absolute: bool) -> None:
    name = ("/" if absolute else "") + "/".join(parts)
    _assert_refused_or_sound(_archive([*GOOD, _member(name, b"planted")]))


LINK_TARGETS = ["/etc/passwd", "../../outside", "model.tflite", f"{NAME}/model.tflite", "../good.tar.gz", "."]


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE], ids=["symlink", "hardlink"])
@pytest.mark.parametrize("target", LINK_TARGETS)
@pytest.mark.parametrize("name", [f"{NAME}/model.tflite", f"{NAME}/extra", f"{NAME}/saved_model"])
def test_links_are_refused(kind: bytes, target: str, name: str) -> None:
    members = [m for m in GOOD if m[0].name != name]
    _assert_refused_and_nothing_changed(_archive([*members, _member(name, kind=kind, link=target)]))


@pytest.mark.parametrize(
    "kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, b"Z"], ids=["chr", "blk", "fifo", "Z"]
)
def test_devices_fifos_and_unknown_types_are_refused(kind: bytes) -> None:
    _assert_refused_and_nothing_changed(_archive([*GOOD, _member(f"{NAME}/dev", kind=kind)]))


def test_members_beyond_the_size_limit_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle, "MAX_ARCHIVE_BYTES", sum(map(len, MEMBERS.values())) + 1000)
    _assert_refused_or_sound(GOOD_ARCHIVE)  # within the limit
    _assert_refused_and_nothing_changed(_archive([*GOOD, _member(f"{NAME}/padding", bytes(1001))]))


def test_a_member_whose_header_claims_more_than_the_archive_holds_is_refused() -> None:
    """A 3 GB size in a header of a 1 KB archive: refused without reading or writing 3 GB."""
    raw = bytearray(gzip.decompress(_archive([*GOOD, _member(f"{NAME}/huge", b"x" * 512)])))
    header = raw.index(f"{NAME}/huge".encode() + b"\0")
    raw[header + 124 : header + 136] = b"%011o\0" % (3 * 1024**3)
    raw[header + 148 : header + 156] = b" " * 8  # the checksum counts its own field as spaces
    raw[header + 148 : header + 156] = b"%06o\0 " % sum(raw[header : header + 512])
    _assert_refused_and_nothing_changed(gzip.compress(bytes(raw)))


@pytest.mark.parametrize(
    "duplicate",
    [
        _member(f"{NAME}/model.json", b'{"name": "b"}'),
        _member(f"{NAME}/labels.txt", b"blue\n"),
        _member(f"{NAME}/model.tflite", kind=tarfile.DIRTYPE),
        _member(f"{NAME}/model.tflite/x", b"x"),
        _member(NAME, b"a file where the folder was"),
    ],
    ids=["model.json", "labels.txt", "file-then-dir", "file-as-parent", "root-as-file"],
)
def test_duplicate_names_are_refused(duplicate: tuple[tarfile.TarInfo, bytes]) -> None:
    _assert_refused_and_nothing_changed(_archive([*GOOD, duplicate]))


def _with_meta(change, labels_txt: bytes | None = None) -> bytes:
    """The good archive with model.json changed by `change(meta dict)` and labels.txt replaced."""
    meta = json.loads(MEMBERS["model.json"])
    files = dict(MEMBERS)
    if labels_txt is not None:
        files["labels.txt"] = labels_txt
    change(meta)
    files["model.json"] = json.dumps(meta).encode()
    return _archive([_member(f"{NAME}/{name}", data) for name, data in files.items()])


def _set_sha(name: str, data: bytes):
    return lambda meta: meta["files"].__setitem__(name, hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize(
    "archive",
    [
        _with_meta(lambda meta: meta["files"].__setitem__("model.tflite", "0" * 64)),
        _with_meta(lambda meta: meta["files"].pop("model.tflite")),
        _with_meta(lambda meta: meta["files"].__setitem__("../../etc/hostname", "0" * 64)),
        _with_meta(lambda meta: meta.__setitem__("labels", ["green", "red"])),
        _with_meta(_set_sha("labels.txt", b"red\n"), b"red\n"),
        _with_meta(_set_sha("labels.txt", b"\xff\xfe\n"), b"\xff\xfe\n"),
        _with_meta(lambda meta: meta.pop("input")),
        _with_meta(lambda meta: meta.__setitem__("files", [])),
    ],
    ids=[
        "wrong-sha256",
        "unlisted-model",
        "listed-outside",
        "labels-reordered",
        "labels-txt-short",
        "labels-not-utf8",
        "no-input",
        "files-not-a-map",
    ],
)
def test_bad_metadata_is_refused(archive: bytes) -> None:
    _assert_refused_and_nothing_changed(archive)


@FUZZ
@given(archive=mutations(GOOD_ARCHIVE) | st.binary(max_size=200))
@example(archive=GOOD_ARCHIVE[: len(GOOD_ARCHIVE) // 2])
def test_mangled_archives_are_refused_or_sound(archive: bytes) -> None:
    _assert_refused_or_sound(archive)


@FUZZ
@given(data=st.data())
def test_mangled_tar_inside_a_good_gzip_is_refused_or_sound(data: st.DataObject) -> None:
    """Past the gzip layer: headers, sizes and names of the tar itself changed."""
    _assert_refused_or_sound(gzip.compress(data.draw(mutations(gzip.decompress(GOOD_ARCHIVE)))))
