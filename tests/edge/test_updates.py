"""Hot swap against a real broker and a real HTTP server: a sound bundle is swapped in between two
frames; a bundle with a wrong checksum or altered files is refused while the old model runs on."""

import hashlib
import json
import signal
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from common import bundle, signing
from edge.announcements import Gate
from edge.classifier import Classifier
from edge.updates import ModelUpdater
from tests.support.bundle_server import BundleServer
from tests.support.device import seqs, start_edge, states, versions
from tests.support.keys import registry_keys
from tests.support.ports import free_port
from tests.support.updates import announce, announcement, version_of
from tests.support.waiting import wait_for


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def bundle_server(tmp_path: Path):
    root = tmp_path / "served"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_sound_bundle_swaps_in_and_a_bad_one_is_refused(
    tiny_bundle, video, broker, recorder, bundle_server, tmp_path
) -> None:
    served, base_url = bundle_server
    name = bundle.load(tiny_bundle).meta.name
    original = bundle.load(tiny_bundle).meta.version
    edge = start_edge(tiny_bundle, video, broker, tmp_path / "state", "--loop")
    try:
        wait_for(lambda: len(versions(recorder)) >= 50, 60, "predictions of the first model")

        archive = bundle.pack(version_of(tiny_bundle, tmp_path, "2"), served / "v2.tar.gz")
        sha = hashlib.sha256(archive.read_bytes()).hexdigest()
        announce(broker, name, "2", f"{base_url}/v2.tar.gz", sha)
        wait_for(lambda: versions(recorder)[-1:] == ["2"], 60, "predictions of version 2")

        wrong_sum = bundle.pack(version_of(tiny_bundle, tmp_path, "3"), served / "v3.tar.gz")
        announce(broker, name, "3", f"{base_url}/v3.tar.gz", "0" * 64)
        altered = version_of(tiny_bundle, tmp_path, "4")
        (altered / "labels.txt").write_text("cat\ndog\nfish\n")
        archive = bundle.pack(altered, served / "v4.tar.gz")
        announce(broker, name, "4", f"{base_url}/v4.tar.gz", hashlib.sha256(archive.read_bytes()).hexdigest())
        wait_for(
            lambda: any("rejected" in (json.loads(m.payload).get("message") or "") for m in recorder.on("/status")),
            30,
            "a rejection status",
        )
        count = len(versions(recorder))
        wait_for(lambda: len(versions(recorder)) > count + 50, 30, "predictions after the rejection")
        assert wrong_sum.exists()
        edge.send_signal(signal.SIGTERM)
        assert edge.wait(30) == 0
    finally:
        edge.kill()
    seen = versions(recorder)
    assert seen[0] == original
    assert "3" not in seen
    assert "4" not in seen
    switch = seen.index("2")
    assert set(seen[switch:]) == {"2"}, "after the swap every prediction carries the new version"
    received = seqs(recorder)
    assert set(received) == set(range(1, max(received) + 1)), "no prediction lost across the swap"
    last_status = json.loads(recorder.on("/status")[-1].payload)
    assert last_status["model"]["version"] == "2"
    assert states(recorder)[-1] == "offline"

    # A restart runs the model it last switched to, not the one on the command line.
    edge = start_edge(tiny_bundle, video, broker, tmp_path / "state", "--max-frames", "5", "--loop")
    assert edge.wait(60) == 0
    wait_for(lambda: versions(recorder)[-5:] == ["2"] * 5, 10, "version 2 after a restart")


@pytest.mark.parametrize("group", [None, "canary", "lab"])
def test_a_canary_announcement_applies_only_to_its_groups(tiny_bundle, bundle_server, tmp_path, group) -> None:
    served, base_url = bundle_server
    running = Classifier(bundle.load(tiny_bundle), "tflite")
    swapped, reports = [], []
    gate = Gate(tmp_path / "state", signing.Verifier(registry_keys()[1]))
    updater = ModelUpdater(tmp_path / "state", "tflite", lambda: running, swapped.append, reports.append, gate, group)
    archive = bundle.pack(version_of(tiny_bundle, tmp_path, "2"), served / "v2.tar.gz")
    where = (running.bundle.meta.name, "2", f"{base_url}/v2.tar.gz", hashlib.sha256(archive.read_bytes()).hexdigest())
    updater.on_announcement(announcement(*where, groups=["canary", "lab"]).encode())
    updater.on_announcement(announcement(*where).encode())  # widened to the fleet
    updater.stop()
    updater.run()
    versions_run = [c.bundle.meta.version for c in swapped]
    assert versions_run == (["2", "2"] if group else ["2"])  # the fleet-wide one applies to every device
    assert updater.counts["rejected"] == 0


def test_a_failed_download_is_tried_again_with_backoff_and_a_missing_one_is_not(tiny_bundle, tmp_path) -> None:
    server = BundleServer()
    server.failures = 2
    running = Classifier(bundle.load(tiny_bundle), "tflite")
    name = running.bundle.meta.name
    url, sha = server.add(
        "/v2.tar.gz", bundle.pack(version_of(tiny_bundle, tmp_path, "2"), tmp_path / "2.tgz").read_bytes()
    )
    swapped, reports = [], []
    gate = Gate(tmp_path / "state", signing.Verifier(registry_keys()[1]))
    updater = ModelUpdater(tmp_path / "state", "tflite", lambda: running, swapped.append, reports.append, gate,
                           retry_s=(0.1, 0.2))  # fmt: skip
    updater.start()
    try:
        updater.on_announcement(announcement(name, "2", url, sha).encode())
        wait_for(lambda: swapped, 30, "version 2 once the server answers")
        assert server.requests == ["/v2.tar.gz"] * 3, "tried again until it passed, without a new announcement"
        assert reports == ["rejected model update: download failed: http 503"] * 2 + [None]
        assert updater.counts["retries"] == 2
        assert (updater.counts["announcements"], updater.counts["rejected"]) == (1, 0), "a retry is neither"

        updater.on_announcement(announcement(name, "3", f"{server.url}/gone.tar.gz", sha).encode())
        wait_for(lambda: len(reports) == 4, 30, "the missing bundle refused")
        time.sleep(0.5)  # longer than the longest backoff: a retry would have come
        assert server.requests[3:] == ["/gone.tar.gz"], "a missing bundle is not asked for again"
        assert reports[3] == "rejected model update: download failed: http 404"
        assert (updater.counts["announcements"], updater.counts["rejected"]) == (2, 1)
    finally:
        updater.stop()
        updater.join(5)
        server.shutdown()
