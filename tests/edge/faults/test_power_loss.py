"""Power lost in the middle of a model update (SIGKILL while the bundle downloads, and while it is
unpacked and swapped in): after a restart the device runs a complete model, old or new, never a
half-written one, and what the dead update left behind does not stop the next one."""

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from common import bundle
from tests.support.device import predictions, seqs, start_edge, versions
from tests.support.device_faults import delivered, device_row, outbox_counters
from tests.support.ports import free_port
from tests.support.updates import announce, version_of
from tests.support.waiting import wait_for


class SlowBundles:
    """Serves archives by path; until `release` is set, only their first half, then it hangs:
    a download the test can catch in the middle."""

    def __init__(self) -> None:
        self.archives: dict[str, bytes] = {}
        self.release = threading.Event()
        slow = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = slow.archives.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    slow.release.wait(30)
                    self.wfile.write(data[len(data) // 2 :])
                except OSError:
                    pass  # the device died mid-download

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, archive: Path) -> tuple[str, str]:
        data = archive.read_bytes()
        self.archives[f"/{archive.name}"] = data
        return f"{self.url}/{archive.name}", hashlib.sha256(data).hexdigest()


@pytest.fixture
def slow_bundles():
    server = SlowBundles()
    yield server
    server.release.set()
    server.server.shutdown()


def killed_when(edge, appears, what: str) -> float:
    """SIGKILL the device the moment `appears()` holds: a power cut at that point."""
    deadline = time.monotonic() + 60
    while not appears():
        assert edge.poll() is None, "the device died by itself"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)
    edge.kill()
    edge.wait(10)
    return time.monotonic()


def test_power_loss_during_download_and_swap_leaves_a_complete_model(
    tiny_bundle, video, broker, recorder, slow_bundles, tmp_path, fault_report
) -> None:
    name = bundle.load(tiny_bundle).meta.name
    original = bundle.load(tiny_bundle).meta.version
    state = tmp_path / "state"
    models = state / "models"
    started = []

    def start():
        started.append(start_edge(tiny_bundle, video, broker, state, "--loop"))
        return started[-1]

    try:
        edge = start()
        wait_for(lambda: len(versions(recorder)) >= 20, 60, "predictions of the first model")

        # 1. Cut while the bundle of version 2 is half downloaded.
        url, sha = slow_bundles.add(bundle.pack(version_of(tiny_bundle, tmp_path, "2"), tmp_path / "v2.tar.gz"))
        announce(broker, name, "2", url, sha)
        killed_when(edge, lambda: any(models.glob("*.part")), "the download of version 2")
        assert list(models.glob("*.part")), "the cut left a partial download behind"
        slow_bundles.release.set()
        count = len(versions(recorder))
        edge = start()  # the retained announcement brings version 2 again; the old .part is no obstacle
        wait_for(lambda: versions(recorder)[-1:] == ["2"], 60, "version 2 after the restart")
        assert set(versions(recorder)[count:]) <= {original, "2"}

        # 2. Cut while version 3 is unpacked, verified and swapped in.
        url, sha = slow_bundles.add(bundle.pack(version_of(tiny_bundle, tmp_path, "3"), tmp_path / "v3.tar.gz"))
        announce(broker, name, "3", url, sha)
        cut = killed_when(edge, lambda: (models / f"{name}-3").exists(), "the unpacking of version 3")
        current = json.loads((state / "current.json").read_text())["bundle"]
        assert bundle.load(current).meta.version in {"2", "3"}, "the remembered model is complete"
        # Predictions made before the cut may still arrive after it: the restarted device's first is made + 1.
        made = outbox_counters(state)["seq"]
        edge = start()
        wait_for(lambda: max(seqs(recorder)) > made, 60, "a prediction of the restarted device")
        recovery_s = time.monotonic() - cut
        after_cut = next(p for p in predictions(recorder) if p["seq"] > made)
        assert after_cut["model"]["version"] in {"2", "3"}, "the restart runs the last complete model"
        wait_for(lambda: versions(recorder)[-1:] == ["3"], 60, "version 3 once the update is done again")
        edge.terminate()
        assert edge.wait(30) == 0
    finally:
        for process in started:
            process.kill()
    assert not [*models.glob("*.part"), *models.glob("*/.*")], "the restarts cleared what the cuts left"
    for version in ("2", "3"):
        bundle.load(next((models / f"{name}-{version}").glob("*/model.json")).parent)  # each one verifies
    assert set(versions(recorder)) == {original, "2", "3"}
    end, received = delivered(recorder, state)
    # Appended once the complete models are asserted above: the row's name claims them.
    fault = f"power cut mid-download, mid-swap: {len(started) - 1} restarts, each on a complete model"
    row = device_row(fault, end["seq"], received, end.get("dropped", 0), recovery_s)
    fault_report.append(row)
    assert row.missing == 0, "a power cut loses no stored prediction"
