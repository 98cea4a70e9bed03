"""Monitoring with the ecosystem's own tools, every part real: Debian's Prometheus, with the shipped
scrape config and alert rules (its targets and interval made the test's), scrapes a running `cloud
serve` fed by a real device (`python -m edge run`, also scraped on its health port) and by a Jetson's
telemetry and a malformed message through the broker; every query of the Grafana dashboard then returns
data through Prometheus's HTTP API, and `promtool check metrics` has nothing to say about either /metrics."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from cloud.store import connect
from common import protocol
from tests.support.api import answers, api
from tests.support.broker import Mosquitto
from tests.support.data import write_video
from tests.support.device import start_edge
from tests.support.fleet import Publisher
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.processes import terminate
from tests.support.registry import register
from tests.support.serve import metric, start_serve
from tests.support.waiting import wait_for

PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "fleet.json"
# What Grafana puts in a query before it sends it: a rate window of a few scrapes, every device
VARIABLES = {"$__rate_interval": "15s", "$device": ".*"}
JETSON = protocol.Telemetry(
    device_id="jetson-1",
    fps=29.7,
    system={"gpu_percent": 41.0, "cpu_percent": 23.5, "memory_percent": 60.1, "power_mw": 5200,
            "temperatures": {"GPU": 48.5, "CPU": 50.0}, "source": "jtop"},
    updates={"announcements": 1, "swapped": 0, "rejected": 1, "rejected download failed: timeout": 1},
    outbox={"pending": 3, "dropped": 0},
)  # fmt: skip

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(not shutil.which("prometheus"), reason="prometheus is not installed (make test installs it)"),
]


class Monitored(NamedTuple):
    cloud: int  # the service's HTTP port
    device: int  # the device's health port
    prometheus: int


def prometheus_config(folder: Path, cloud: int, device: int) -> Path:
    """The shipped configuration, scraping the test's service and device every second."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS / "alerts.yml")]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    del jobs["edgeloop-cloud"]["authorization"]  # the test's service listens on loopback without a token
    jobs["edgeloop-cloud"]["static_configs"] = [{"targets": [f"127.0.0.1:{cloud}"]}]
    targets = folder / "devices.json"
    targets.write_text(json.dumps([{"targets": [f"127.0.0.1:{device}"], "labels": {"device": "cam-1"}}]))
    jobs["edgeloop-devices"]["file_sd_configs"] = [{"files": [str(targets)]}]
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def get(port: int, path: str, **params: str) -> dict:
    url = f"http://127.0.0.1:{port}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        answer: dict = json.loads(response.read())
    return answer


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def feed(broker: Mosquitto, db_url: str, cloud: int) -> None:
    """What the device alone does not send: a Jetson's telemetry, a malformed prediction, a queued training,
    and the device's model in the registry with the labels it was trained on (for the drift)."""
    topics, jetson = protocol.Topics(), Publisher(broker.port, "test-jetson")
    try:
        status = protocol.Status(state="online", ts=0, model=protocol.ModelRef(name="colours", version="1"))
        jetson.send(topics.status("jetson-1"), status.encode()).wait_for_publish(10)
        jetson.send(topics.telemetry("jetson-1"), JETSON.encode()).wait_for_publish(10)
        jetson.send(topics.predictions("jetson-1"), b"{not json").wait_for_publish(10)
    finally:
        jetson.close()
    api(cloud, "/api/retrain", {"model": "colours", "reason": "the monitoring test"})
    device = next(d for d in answers(cloud, "/api/devices") if d["device_id"] == "cam-1")
    db = connect(db_url)
    try:
        register(db, device["model"]["version"], {"red": 10, "green": 10, "blue": 10}, name="colours")
    finally:
        db.close()


@pytest.fixture(scope="module")
def monitored(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitored]:
    folder = tmp_path_factory.mktemp("monitoring")
    broker = Mosquitto(folder / "broker").start()
    data, db_url = folder / "data", f"sqlite:///{folder / 'db.sqlite'}"
    (data / "datasets" / "colours").mkdir(parents=True)
    cloud, device, port = free_port(), free_port(), free_port()
    serve = start_serve(broker, db_url, data, cloud, "--no-train")
    video = write_video(folder / "colours.avi", frames=30)
    edge = start_edge(tiny_bundle, video, broker, folder / "state", "--loop", "--health-port", device,
                      "--health-host", "127.0.0.1")  # fmt: skip
    command = ["prometheus", f"--config.file={prometheus_config(folder, cloud, device)}",
               f"--storage.tsdb.path={folder / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"]  # fmt: skip
    log = (folder / "prometheus.log").open("w")
    prometheus = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    try:  # Prometheus scrapes from the start: the service and the device answer once they are up
        wait_for(lambda: metric(cloud, "stored") > 0, 60, "the device's predictions stored", interval_s=0.2)
        feed(broker, db_url, cloud)
        wait_for(lambda: ready(port), 20, "Prometheus ready", interval_s=0.2)
        yield Monitored(cloud, device, port)
    finally:
        terminate(prometheus, edge, serve)
        broker.stop()
        log.close()


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, query) of every target of every panel, Grafana's variables filled in."""
    queries = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            queries.append((panel["title"], expr))
    return queries


def test_promtool_has_nothing_to_say_about_the_service_or_the_device(monitored: Monitored) -> None:
    for port in (monitored.cloud, monitored.device):
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        checked = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30)
        assert (checked.returncode, checked.stdout + checked.stderr) == (0, b""), port


def test_prometheus_scrapes_both_and_every_dashboard_query_returns_data(monitored: Monitored) -> None:
    def all_up() -> bool:
        targets = get(monitored.prometheus, "/api/v1/targets")["data"]["activeTargets"]
        return len(targets) == 2 and all(t["health"] == "up" for t in targets)

    wait_for(all_up, 10, "the service and the device scraped", interval_s=0.2)
    queries = dashboard_queries()
    assert len(queries) >= 25
    for title, expr in queries:

        def answered(expr: str = expr) -> bool:
            return bool(get(monitored.prometheus, "/api/v1/query", query=expr)["data"]["result"])

        wait_for(answered, 15, f"data for the panel {title!r}: {expr}", interval_s=0.1)

    def only(expr: str) -> float:
        (result,) = get(monitored.prometheus, "/api/v1/query", query=expr)["data"]["result"]
        return float(result["value"][1])

    assert only('edgeloop_device_up{device="cam-1"}') == 1
    assert only('edgeloop_device_model_info{device="jetson-1", model="colours", version="1"}') == 1
    assert (only('edgeloop_device_gpu_ratio{device="jetson-1"}'), only("edgeloop_device_power_watts")) == (0.41, 5.2)
    assert only('edgeloop_device_temperature_celsius{sensor="GPU"}') == 48.5
    assert only('edgeloop_rejected_total{reason="bad_json"}') == 1
    assert only('edgeloop_training_jobs{model="colours", state="queued"}') == 1
    assert only("edgeloop_edge_broker_connected") == 1
    rules = get(monitored.prometheus, "/api/v1/rules")["data"]["groups"]
    assert {g["name"] for g in rules} == {"edgeloop-fleet", "edgeloop-cloud"}
    assert all(rule["health"] == "ok" for g in rules for rule in g["rules"]), "every rule evaluates"
