"""The k3s manifests pass Kubernetes' own schemas (strict: no unknown fields; shipped by kubernetes-validate,
nothing downloaded), and what they run is what edgeloop's commands accept."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from cloud.training.trainer import SUMMARIES_DIR
from tests.support.deploy_options import options
from tests.support.paths import ROOT

K8S = ROOT / "deploy" / "k8s"
VALIDATE = Path(sys.executable).parent / "kubernetes-validate"


def resources() -> dict[str, dict]:
    docs = [doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())]
    return {f"{doc['kind']}/{doc['metadata']['name']}": doc for doc in docs}


def pod(name: str) -> dict:
    spec = resources()[name]["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    return spec


def test_manifests_pass_strict_schema_validation():
    files = sorted(K8S.glob("*.yaml"))
    result = subprocess.run([VALIDATE, "--strict", "--quiet", *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert set(resources()) == {
        "Namespace/edgeloop", "DaemonSet/edgeloop-edge", "PersistentVolumeClaim/edgeloop-data",
        "Deployment/edgeloop-cloud", "Service/edgeloop-cloud", "ConfigMap/edgeloop-retrain", "Job/edgeloop-retrain",
        "Deployment/edgeloop-tensorboard", "Service/edgeloop-tensorboard",
        "PersistentVolumeClaim/edgeloop-prometheus-data", "Deployment/edgeloop-prometheus",
        "Service/edgeloop-prometheus", "Deployment/edgeloop-grafana", "Service/edgeloop-grafana",
    }  # fmt: skip


def test_edge_runs_on_every_jetson_node_with_the_gpu_and_jtop():
    spec = pod("DaemonSet/edgeloop-edge")
    assert spec["nodeSelector"]["edgeloop/jetson"] == "true"
    assert spec["runtimeClassName"] == "nvidia"
    assert {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}["jtop"] == "/run/jtop.sock"
    command = spec["containers"][0]["args"][0]
    trust = next(m["mountPath"] for m in spec["containers"][0]["volumeMounts"] if m["name"] == "trust")
    assert f"--trusted-key {trust}/registry.pub --model-origin" in command, "the device runs only signed models"
    assert {v["name"]: v.get("configMap", {}).get("name") for v in spec["volumes"]}["trust"] == "edgeloop-trust"


def test_cloud_deployment_serves_with_options_serve_accepts():
    spec = pod("Deployment/edgeloop-cloud")
    serve = options(spec["containers"][0]["args"])
    assert (serve.data_dir, serve.http_port) == (Path("/data"), 8080)
    database = urlsplit(serve.db)
    assert (database.scheme, database.password) == ("postgresql", None), "the password comes from PGPASSWORD"
    assert resources()["Service/edgeloop-cloud"]["spec"]["ports"][0]["port"] == serve.http_port
    mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
    secret = {v["name"]: v.get("secret", {}).get("secretName") for v in spec["volumes"]}
    assert secret[mounts[str(serve.signing_key.parent)]] == "edgeloop-signing", "announcements signed"


def test_tensorboard_reads_the_services_summaries_on_its_node():
    spec, cloud = pod("Deployment/edgeloop-tensorboard"), pod("Deployment/edgeloop-cloud")
    board = spec["containers"][0]
    assert (board["image"], board["command"]) == (cloud["containers"][0]["image"], ["tensorboard"])
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in board["args"])
    data = options(cloud["containers"][0]["args"]).data_dir
    assert Path(flags["logdir"]) == data / SUMMARIES_DIR, "where the service's trainings write their summaries"
    mount = mounted_from(spec, data)
    assert mount["persistentVolumeClaim"] == {"claimName": "edgeloop-data", "readOnly": True}
    assert board["ports"][0]["containerPort"] == int(flags["port"])
    assert resources()["Service/edgeloop-tensorboard"]["spec"]["ports"][0]["targetPort"] == board["ports"][0]["name"]
    assert resources()["Service/edgeloop-tensorboard"]["spec"].get("type", "ClusterIP") == "ClusterIP", "no login"
    beside = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert beside["labelSelector"]["matchLabels"] == resources()["Deployment/edgeloop-cloud"]["metadata"]["labels"]
    assert beside["topologyKey"] == "kubernetes.io/hostname", "a ReadWriteOnce volume is mounted on one node"


def test_prometheus_scrapes_the_cloud_service_with_its_token_and_grafana_reads_prometheus():
    deploy = ROOT / "deploy"
    config = yaml.safe_load((deploy / "prometheus" / "prometheus.yml").read_text())
    cloud = next(job for job in config["scrape_configs"] if job["job_name"] == "edgeloop-cloud")
    host, port = cloud["static_configs"][0]["targets"][0].split(":")
    assert (host, int(port)) == ("edgeloop-cloud", resources()["Service/edgeloop-cloud"]["spec"]["ports"][0]["port"])
    spec = pod("Deployment/edgeloop-prometheus")
    token = mounted_from(spec, Path(cloud["authorization"]["credentials_file"]))["secret"]
    assert (token["secretName"], token["items"]) == ("edgeloop-api", [{"key": "token", "path": "api-token"}])
    files = {m["subPath"] for m in spec["containers"][0]["volumeMounts"] if "subPath" in m}
    assert files == {"prometheus.yml", "alerts.yml"}, "the shipped files, from the ConfigMap made of them"
    source = yaml.safe_load((deploy / "grafana/provisioning/datasources/prometheus.yml").read_text())["datasources"][0]
    url = urlsplit(source["url"])
    assert (url.hostname, url.port) == (
        "edgeloop-prometheus",
        resources()["Service/edgeloop-prometheus"]["spec"]["ports"][0]["port"],
    )
    provider = yaml.safe_load((deploy / "grafana/provisioning/dashboards/edgeloop.yml").read_text())["providers"][0]
    assert mounted_from(pod("Deployment/edgeloop-grafana"), Path(provider["options"]["path"]))["configMap"] == {
        "name": "edgeloop-grafana-dashboards"
    }


def test_retrain_job_runs_retrain_on_a_gpu_with_options_retrain_accepts(tmp_path):
    spec = pod("Job/edgeloop-retrain")
    container = spec["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    options_file = tmp_path / "retrain.yaml"
    options_file.write_text(resources()["ConfigMap/edgeloop-retrain"]["data"]["retrain.yaml"])
    args = container["args"]
    assert args[:2] == ["retrain", "--config"]
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "options")
    assert Path(args[2]).parent == Path(mount)
    retrain = options([*args[:2], str(options_file)])
    assert retrain.image_dir == Path("/data/datasets/flowers")


def secrets_read_by(spec: dict) -> set[str]:
    """Every Secret a pod reads: as a volume (plain or projected), an environment variable or envFrom."""
    names = {v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
    names |= {
        s["secret"]["name"] for v in spec["volumes"] for s in v.get("projected", {}).get("sources", []) if "secret" in s
    }
    for container in spec.get("initContainers", []) + spec["containers"]:
        names |= {
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        names |= {s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s}
    return names


def listener_of(password_file: str) -> int:
    """The port of deploy/mosquitto/cloud.conf's listener that checks `password_file`."""
    port = 0
    for words in (line.split() for line in (ROOT / "deploy" / "mosquitto" / "cloud.conf").read_text().splitlines()):
        if words[:1] == ["listener"]:
            port = int(words[1])
        elif words[:1] == ["password_file"] and Path(words[1]).name == password_file:
            return port
    raise AssertionError(f"no listener of cloud.conf checks {password_file}")


def mounted_from(spec: dict, path: Path) -> dict:
    """The volume a file of the pod's first container comes from."""
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if path.is_relative_to(m["mountPath"]))
    assert mount.get("readOnly") is True, mount
    return next(v for v in spec["volumes"] if v["name"] == mount["name"])


def test_each_edge_pod_reads_its_own_nodes_password_over_tls_and_no_secret():
    spec = pod("DaemonSet/edgeloop-edge")
    assert secrets_read_by(spec) == set(), "a Secret in the DaemonSet reaches every device's pod: it is no device's"
    # The shell command as a pod on node jetson-01 runs it: NODE_NAME comes from the node, the rest is given.
    values = {e["name"]: e.get("value", "jetson-01") for e in spec["containers"][0]["env"]}
    script = re.sub(r"\$(\w+)", lambda name: values[name[1]], spec["containers"][0]["args"][0])
    setup, command = script.split(" && exec python3 -m edge ")
    password_file = Path(re.fullmatch(r'export EDGELOOP_MQTT_PASSWORD="\$\(cat (\S+)\)"', setup)[1])
    assert mounted_from(spec, password_file)["hostPath"] == {"path": str(password_file), "type": "File"}, "the node's"
    run = options(shlex.split(command))
    broker = urlsplit(run.broker)
    assert (broker.scheme, broker.username, run.device_id) == ("mqtts", "jetson-01", "jetson-01")
    assert broker.port == listener_of("passwd")
    assert mounted_from(spec, run.ca_file)["configMap"]["name"] == "edgeloop-mqtt-ca"


def test_cloud_reaches_the_broker_over_tls_on_its_own_listener():
    spec = pod("Deployment/edgeloop-cloud")
    serve = options(spec["containers"][0]["args"])
    broker = urlsplit(serve.broker)
    assert (broker.scheme, broker.username, broker.password) == ("mqtts", "edgeloop-aggregator", None)
    assert broker.port == listener_of("cloud.passwd")
    assert mounted_from(spec, serve.ca_file)["configMap"]["name"] == "edgeloop-mqtt-ca"
