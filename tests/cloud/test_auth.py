"""With EDGELOOP_API_TOKEN set, every writing endpoint wants `Authorization: Bearer <token>`;
reads stay open. Checked against the real service over HTTP."""

import json
import signal
import urllib.error
import urllib.request

import pytest

from tests.support.ports import free_port
from tests.support.serve import start_serve
from tests.support.waiting import wait_for

WRITES = [("/api/retrain", {"model": "colours"}), (f"/api/samples/{'0' * 64}/label", {"label": "red"}),
          (f"/api/samples/{'0' * 64}/discard", None)]  # fmt: skip


def status(port: int, path: str, body=None, token: str | None = None) -> int:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    data = json.dumps(body).encode() if body is not None else (b"" if path.endswith("discard") else None)
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:  # not listening yet
        return -1


@pytest.fixture
def service(broker, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELOOP_API_TOKEN", "s3cret")
    port = free_port()
    serve = start_serve(broker, f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "data", port, "--no-train")
    try:
        wait_for(lambda: status(port, "/api/devices") == 200, 60, "the service", interval_s=0.3)
        yield port
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)


def test_writes_need_the_token_reads_do_not(service: int) -> None:
    for path, body in WRITES:
        assert status(service, path, body) == 401, path
        assert status(service, path, body, token="wrong") == 401, path
        assert status(service, path, body, token="s3cret") == 404, f"{path}: past the check, nothing to change"
    for path in ("/api/devices", "/api/samples", "/api/models", "/api/jobs", "/metrics", "/"):
        assert status(service, path) == 200, path
