"""Secure by default over HTTP, against a real `python -m cloud serve` listening on every address with
its API token: nothing is labelled or trained without the token, reads of frames, logs and metrics
need it too, a browser on another site cannot write, bodies are small and JSON, every answer carries
the security headers, only deployable bundles are served, the probes need nothing, and the dashboard
still labels once given the token. Without a token, serve will not listen beyond loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import yaml

from cloud.store import connect
from cloud.store import models as model_store
from tests.cloud.conftest import browser  # noqa: F401 (the fixture)
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.samples import store_samples
from tests.support.serve import start_serve
from tests.support.waiting import wait_for

pytestmark = pytest.mark.services  # starts its own Mosquitto, once for the module

TOKEN = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BUNDLES = {"v1": "retired", "v2": "promoted", "v3": "rejected", "v4": "candidate"}
HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


def call(port: int, path: str, body: bytes | None = None, headers: dict | None = None, method: str | None = None):
    """(status, headers, body) of one request; a refusal is an answer too."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", body, headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def post(port: int, path: str, body: object, headers: dict | None = None) -> int:
    return call(port, path, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})[0]


def ready(port: int) -> bool:
    try:
        return call(port, "/readyz")[0] == 200
    except OSError:  # not listening yet
        return False


def add_versions(db_url: str, data) -> None:
    """flowers v1 (promoted, then retired by v2), v2 (promoted), v3 (rejected), v4 (candidate), each archived."""
    db = connect(db_url)
    for n, (version, state) in enumerate(BUNDLES.items()):
        model_store.add(
            db, name="flowers", version=version, created=1000.0 + n, parent=None, trigger="test", job_id=None,
            sha256="0" * 64, metrics_json="{}", label_counts={}, images=[],
        )  # fmt: skip
        if state in ("retired", "promoted"):
            model_store.promote(db, "flowers", version, 2000.0 + n, None)
        else:
            model_store.set_gate(db, "flowers", version, state, {"passed": state == "candidate", "why": "test"})
        archive = data / "models" / "flowers" / f"{version}.tar.gz"
        archive.parent.mkdir(parents=True, exist_ok=True)
        archive.write_bytes(f"bundle {version}".encode())
    db.close()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    from tests.support.broker import Mosquitto

    server = Mosquitto(tmp_path_factory.mktemp("broker")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service(broker, tmp_path_factory):
    """(port, data dir, sample ids): the service on 0.0.0.0 with its token, a sample to label, the versions."""
    root = tmp_path_factory.mktemp("cloud")
    data, db_url, port = root / "data", f"sqlite:///{root / 'db.sqlite'}", free_port()
    for label in ("red", "green"):
        (data / "datasets" / "colours" / label).mkdir(parents=True)
    db = connect(db_url)
    samples = [s.id for s in store_samples(db, data, 2, model="colours")]
    db.close()
    add_versions(db_url, data)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("EDGELOOP_API_TOKEN", TOKEN)
        serve = start_serve(
            broker, db_url, data, port, "--no-train", "--http-host", "0.0.0.0", "--queue-order", "newest"
        )
    try:
        wait_for(lambda: ready(port), 60, "the service, ready", interval_s=0.2)
        yield port, data, samples
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)


def test_serve_refuses_to_listen_beyond_loopback_without_a_token(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "EDGELOOP_API_TOKEN"}
    command = [sys.executable, "-m", "cloud", "serve", "--http-host", "0.0.0.0", "--http-port", str(free_port()),
               "--data-dir", tmp_path, "--db", f"sqlite:///{tmp_path / 'db.sqlite'}"]  # fmt: skip
    result = subprocess.run(list(map(str, command)), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "refusing to serve on 0.0.0.0 without an API token" in result.stderr
    assert "EDGELOOP_API_TOKEN" in result.stderr


def test_writes_without_the_token_are_refused_and_change_nothing(service) -> None:
    port, data, samples = service
    for token in (None, "wrong"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        assert post(port, f"/api/samples/{samples[0]}/label", {"label": "red"}, headers) == 401
        assert post(port, f"/api/samples/{samples[0]}/discard", None, headers) == 401
        assert post(port, "/api/retrain", {"model": "colours"}, headers) == 401
    assert json.loads(call(port, "/api/samples?status=labelled", headers=AUTH)[2]) == []
    assert json.loads(call(port, "/api/jobs", headers=AUTH)[2]) == [], "no training was queued"
    assert not list((data / "datasets").rglob("*.jpg")), "nothing joined the training images"


def test_reads_need_the_token_but_probes_page_and_deployable_bundles_do_not(service) -> None:
    port, _, samples = service
    protected = ["/api/samples", f"/samples/{samples[0]}.jpg", f"/api/jobs/{'0' * 32}/log", "/metrics",
                 "/api/devices", "/api/models", "/openapi.json"]  # fmt: skip
    for path in protected:
        status, headers, _ = call(port, path)
        assert (status, headers["WWW-Authenticate"]) == (401, "Bearer"), path
    assert call(port, f"/samples/{samples[0]}.jpg", headers=AUTH)[1]["Content-Type"] == "image/jpeg"
    status, _, metrics = call(port, "/metrics", headers=AUTH)  # as Prometheus scrapes, with a bearer token
    assert status == 200
    assert b"edgeloop_messages_in_total" in metrics
    assert json.loads(call(port, "/readyz")[2]) == {"status": "ready", "store": True, "mqtt": True}
    assert json.loads(call(port, "/healthz")[2]) == {"status": "alive"}
    assert call(port, "/")[0] == 200
    assert call(port, "/docs", headers=AUTH)[0] == 404, "no interactive docs (they load scripts from a CDN)"
    for version, state in BUNDLES.items():  # devices hold no token
        status, _, body = call(port, f"/models/flowers/{version}.tar.gz")
        if state in ("promoted", "retired"):
            assert (status, body) == (200, f"bundle {version}".encode()), version
        else:
            assert status == 404, f"a {state} version is not deployable"


def test_a_browser_on_another_site_cannot_write_and_bodies_are_small_json(service) -> None:
    port, data, samples = service
    label = f"/api/samples/{samples[0]}/label"
    assert post(port, label, {"label": "red"}, {**AUTH, "Origin": "http://evil.example"}) == 403
    assert post(port, label, {"label": "red"}, {**AUTH, "Origin": "null"}) == 403
    form = call(port, label, b"label=red", {**AUTH, "Content-Type": "application/x-www-form-urlencoded"})
    assert form[0] == 415
    assert post(port, label, {"label": "r" * 70_000}, AUTH) == 413
    assert post(port, f"/api/samples/{'0' * 64}/discard", None, {**AUTH, "Origin": f"http://127.0.0.1:{port}"}) == 404
    assert not list((data / "datasets").rglob("*.jpg"))


def test_every_answer_carries_the_security_headers(service) -> None:
    port, _, _ = service
    for path, headers in (("/", {}), ("/api/devices", AUTH), ("/api/devices", {}), ("/nowhere", AUTH),
                          ("/healthz", {}), ("/models/flowers/v3.tar.gz", {})):  # fmt: skip
        answer = call(port, path, headers=headers)[1]
        assert {name: answer[name] for name in HEADERS} == HEADERS, path
        assert "frame-ancestors 'none'" in answer["Content-Security-Policy"], path
    page = call(port, "/")[1]["Content-Security-Policy"]
    assert "script-src 'sha256-" in page, "only the page's own script runs"
    assert "unsafe-inline" not in page.split("script-src")[1].split(";")[0]


def test_the_dashboard_labels_with_its_token_under_its_content_security_policy(service, browser) -> None:  # noqa: F811
    port, data, samples = service
    page = browser.new_page()  # CSP enforced: waits are selectors, never evaluated strings
    refused = []
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else 0)
    page.goto(f"http://127.0.0.1:{port}/#token={TOKEN}")  # as the demo prints it
    page.wait_for_selector("#focus-picture[src^='blob:']", timeout=15_000)  # fetched with the token
    assert "token" not in page.url, "the page drops the token from its address"
    chosen = page.get_attribute("#focus-picture", "data-sample")
    page.click("#choices button[data-label='green']")

    def labelled() -> list:  # the image is placed inside the transaction: the row is the last to land
        return json.loads(call(port, "/api/samples?status=labelled", headers=AUTH)[2])

    wait_for(lambda: labelled() != [], 10, "the labelled sample")
    assert [(s["id"], s["label"]) for s in labelled()] == [(chosen, "green")]
    assert (data / "datasets/colours/green" / f"{chosen}.jpg").is_file()
    assert chosen in samples
    page.wait_for_selector("#versions tr[data-version='v2']")  # every section drawn
    assert page.is_hidden("#sign-in")
    assert refused == []


def test_deployments_probe_health_endpoints_and_take_the_token_from_a_secret() -> None:
    for dockerfile in ("Dockerfile.cloud", "Dockerfile.jetson"):
        text = (ROOT / dockerfile).read_text()
        check = text[text.index("HEALTHCHECK ") :].split("\n", 2)[1]
        assert "/healthz'" in check, dockerfile
    manifests = [doc for path in (ROOT / "deploy/k8s").glob("*.yaml") for doc in yaml.safe_load_all(path.read_text())]
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]
        for d in manifests
        if d["kind"] != "Job" and "template" in d.get("spec", {})
    }
    probes = {
        (name, kind): container[kind]["httpGet"]
        for name, pod in pods.items()
        for container in pod["containers"]
        for kind in ("readinessProbe", "livenessProbe")
        if kind in container
    }
    assert probes == {
        ("edgeloop-cloud", "readinessProbe"): {"path": "/readyz", "port": "http"},
        ("edgeloop-cloud", "livenessProbe"): {"path": "/healthz", "port": "http"},
        ("edgeloop-edge", "livenessProbe"): {"path": "/healthz", "port": "health"},
        ("edgeloop-prometheus", "readinessProbe"): {"path": "/-/ready", "port": "http"},  # deploy/k8s/monitoring.yaml
        ("edgeloop-prometheus", "livenessProbe"): {"path": "/-/healthy", "port": "http"},
        ("edgeloop-grafana", "readinessProbe"): {"path": "/api/health", "port": "http"},
        ("edgeloop-tensorboard", "readinessProbe"): {"path": "/", "port": "http"},  # deploy/k8s/tensorboard.yaml
        ("edgeloop-tensorboard", "livenessProbe"): {"path": "/", "port": "http"},
    }
    env = {e["name"]: e for e in pods["edgeloop-cloud"]["containers"][0]["env"]}
    assert "secretKeyRef" in env["EDGELOOP_API_TOKEN"]["valueFrom"]
    compose = yaml.safe_load((ROOT / "deploy/compose/cloud/compose.yaml").read_text())
    assert compose["services"]["cloud"]["environment"]["EDGELOOP_API_TOKEN"].startswith("${EDGELOOP_API_TOKEN:?")
