"""The compose files, resolved by docker-compose (`config` needs no engine) with their env.example filled in,
and the commands they give each service read by edgeloop's own parsers."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from cloud.training.trainer import SUMMARIES_DIR
from tests.support.deploy_options import options
from tests.support.paths import ROOT

COMPOSE = ROOT / "deploy" / "compose"
MQTT_CA = Path("/etc/edgeloop/mqtt-ca/ca.crt")

pytestmark = [
    pytest.mark.services,
    pytest.mark.skipif(
        not shutil.which("docker-compose"), reason="docker-compose is not installed (make test installs Debian's)"
    ),
]


def env_file(folder: Path, tmp_path: Path) -> Path:
    """The folder's env.example as an operator fills it in: every empty value given one."""
    lines = [f"{line}test-{line[:-1].lower()}" if line.endswith("=") else line for line in
             (folder / "env.example").read_text().splitlines()]  # fmt: skip
    path = tmp_path / f"{folder.name}.env"
    path.write_text("\n".join(lines) + "\n")
    return path


def compose(folder: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    command = ["docker-compose", "-f", str(folder / "compose.yaml"), *map(str, args), "config"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def mounts(service: dict) -> dict[str, str]:
    """A service's volumes, target: source."""
    return dict(reversed(volume.split(":")[:2]) for volume in service.get("volumes", []))


def resolved(folder: Path, *args: str | Path) -> dict:
    result = compose(folder, *args)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_cloud_compose_runs_the_service_beside_its_broker_and_postgres_in_a_profile(tmp_path):
    env = env_file(COMPOSE / "cloud", tmp_path)
    services = resolved(COMPOSE / "cloud", "--env-file", env, "--profile", "postgres")["services"]
    assert {name: s.get("profiles") for name, s in services.items()} == {
        "mosquitto": None, "cloud": None, "postgres": ["postgres"], "prometheus": ["monitoring"],
        "grafana": ["monitoring"], "tensorboard": ["tensorboard"],
    }  # fmt: skip
    assert [p["target"] for p in services["mosquitto"]["ports"]] == [8883], "the cloud's listener stays internal"
    serve = options(services["cloud"]["command"])
    assert (serve.broker, serve.ca_file) == ("mqtts://edgeloop-aggregator@mosquitto:8884", MQTT_CA)
    assert str(MQTT_CA) in mounts(services["cloud"])
    assert serve.db.startswith("sqlite:////data/")
    assert mounts(services["cloud"])[str(serve.signing_key)].endswith("/secrets/registry.key"), "announcements signed"
    holders = [name for name, s in services.items() if any(v.endswith("/registry.key") for v in mounts(s).values())]
    assert holders == ["cloud"], "the private key is the cloud service's only"


def test_cloud_compose_runs_tensorboard_in_a_profile_on_the_services_summaries(tmp_path):
    env = env_file(COMPOSE / "cloud", tmp_path)
    services = resolved(COMPOSE / "cloud", "--env-file", env, "--profile", "tensorboard")["services"]
    board, cloud = services["tensorboard"], services["cloud"]
    assert (board["profiles"], board["image"]) == (["tensorboard"], cloud["image"])
    assert board["entrypoint"] == ["tensorboard"]
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in board["command"])
    data = options(cloud["command"]).data_dir
    assert Path(flags["logdir"]) == data / SUMMARIES_DIR, "where the service's trainings write their summaries"
    assert f"{mounts(cloud)[str(data)]}:{data}:ro" in board["volumes"], "the service's data volume, read-only"
    assert board["ports"] == [f"127.0.0.1:{flags['port']}:{flags['port']}/tcp"], "no login: this host only"


def test_the_monitoring_profile_scrapes_the_service_with_the_shipped_config_and_dashboards(tmp_path):
    services = resolved(COMPOSE / "cloud", "--env-file", env_file(COMPOSE / "cloud", tmp_path))["services"]
    prometheus, grafana = mounts(services["prometheus"]), mounts(services["grafana"])
    deploy = ROOT / "deploy"
    assert Path(prometheus["/etc/prometheus/prometheus.yml"]) == deploy / "prometheus" / "prometheus.yml"
    assert Path(prometheus["/etc/prometheus/alerts.yml"]) == deploy / "prometheus" / "alerts.yml"
    assert prometheus["/etc/prometheus/secrets/api-token"].endswith("/secrets/api-token")
    assert Path(grafana["/etc/grafana/dashboards"]) == deploy / "grafana" / "dashboards"
    config = yaml.safe_load((deploy / "prometheus" / "prometheus.yml").read_text())
    cloud = next(job for job in config["scrape_configs"] if job["job_name"] == "edgeloop-cloud")
    host, port = cloud["static_configs"][0]["targets"][0].split(":")
    assert host in services["cloud"]["networks"]["default"]["aliases"]
    assert int(port) == options(services["cloud"]["command"]).http_port
    assert cloud["authorization"]["credentials_file"] == "/etc/prometheus/secrets/api-token"
    source = yaml.safe_load((deploy / "grafana/provisioning/datasources/prometheus.yml").read_text())["datasources"]
    assert urlsplit(source[0]["url"]).hostname in services["prometheus"]["networks"]["default"]["aliases"]


def test_jetson_compose_gives_the_runtime_the_gpu_camera_jtop_and_a_bridged_broker(tmp_path):
    config = resolved(COMPOSE / "jetson", "--env-file", env_file(COMPOSE / "jetson", tmp_path))
    edge = config["services"]["edge"]
    assert edge["runtime"] == "nvidia"
    assert "/dev/video0:/dev/video0" in edge["devices"]
    targets = mounts(edge)
    assert targets["/run/jtop.sock"] == "/run/jtop.sock"
    assert "/opt/edgeloop/bundle/.cache" in targets, "the TF-TRT engines live on a volume"
    run = options(edge["command"])
    assert (run.device_id, run.source, run.broker) == ("cam-7", ["csi://0"], "mqtt://cam-7@mosquitto:1883")
    assert edge["environment"]["EDGELOOP_MQTT_PASSWORD"] == "test-edgeloop_local_password", "the local one"
    broker = mounts(config["services"]["mosquitto"])
    assert {"/mosquitto/config/passwd", "/mosquitto/config/acl"} <= set(broker)
    assert broker["/mosquitto/config/mosquitto.conf"].endswith("/deploy/mosquitto/jetson.conf"), "the tracked one"
    bridge = next(t for t, s in broker.items() if s.endswith("/secrets/bridge.conf"))
    assert f"include_dir {Path(bridge).parent}" in (ROOT / "deploy/mosquitto/jetson.conf").read_text().splitlines()
    assert targets[str(run.trusted_key)].endswith("/secrets/registry.pub"), "the device runs only signed models"
    assert run.model_origin == "https://edgeloop.example.org:443"
    assert not any("registry.key" in source for source in targets.values()), "the private key stays in the cloud"
    assert str(run.state_dir) == next(t for t, s in targets.items() if s == "edge-state")


@pytest.mark.parametrize(("folder", "needed"), [("cloud", "EDGELOOP_PUBLIC_URL"), ("jetson", "EDGELOOP_DEVICE_ID")])
def test_compose_refuses_to_start_without_its_settings(folder, needed, tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = compose(COMPOSE / folder, "--env-file", empty)
    assert result.returncode != 0
    assert "Missing mandatory value" in result.stderr
