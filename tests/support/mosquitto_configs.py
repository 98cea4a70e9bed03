"""The repository's Mosquitto configurations, run by a real Mosquitto: each file as it is, with its listeners
moved to free ports on 127.0.0.1 and the container's /mosquitto/ folder moved to the test's folder; and the
production broker (cloud.conf) and a Jetson's (jetson.conf, with the bridge file jetson-bridge.sh writes) set up
as docs/deploy.md says."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.broker import Mosquitto
from tests.support.certs import make_certs
from tests.support.mqtt_client import Client
from tests.support.ports import free_port

CONFIGS = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
BRIDGE = Path("config") / "bridge" / "edgeloop-cloud.conf"  # where jetson.conf includes the bridge from
AGGREGATOR = "edgeloop-aggregator"
HOMEASSISTANT = "homeassistant"  # Home Assistant's user on the fleet's listener
PASSWORDS = {"cam-7": "cam-7-secret", "cam-8": "cam-8-secret", HOMEASSISTANT: "ha-secret"}  # the fleet's password file
CLOUD_PASSWORDS = {AGGREGATOR: "aggregator-secret"}  # the cloud listener's
JETSON_PASSWORDS = {"cam-7": "cam-7-local-secret"}  # cam-7's own broker: the runtime's, not the cloud's


def localize(name: str, workdir: Path, ports: dict[int, int], added: dict[int, list[str]] | None = None) -> str:
    """deploy/mosquitto/NAME for this test: `ports` maps the file's listener ports to free ones, `added` gives
    a listener lines of its own (what docs/deploy.md adds)."""
    lines = []
    for line in (CONFIGS / name).read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "listener":
            port = int(value.split()[0])
            line = "\n".join([f"listener {ports[port]} 127.0.0.1", *(added or {}).get(port, [])])
        elif key == "log_dest":
            line = f"log_dest file {workdir / 'mosquitto.log'}"
        lines.append(line.replace("/mosquitto/", f"{workdir}/"))
    # Started as root, mosquitto would switch to user mosquitto, who cannot write the test's folders.
    return "\n".join([*lines, "user root", ""])


def start(
    name: str, workdir: Path, listeners: list[int], added: dict[int, list[str]] | None = None
) -> tuple[Mosquitto, dict[int, int]]:
    """Start deploy/mosquitto/NAME; returns the broker and the free port each of the file's listeners got."""
    ports = {port: free_port() for port in listeners}
    config = localize(name, workdir, ports, added)
    first, *others = (ports[port] for port in listeners)
    return Mosquitto(workdir, config, port=first, also=tuple(others)).start(), ports


def write_passwords(path: Path, passwords: dict[str, str]) -> None:
    """A password file made by mosquitto_passwd, as an operator makes it."""
    if not shutil.which("mosquitto_passwd"):
        raise RuntimeError("mosquitto_passwd is not installed (make test installs mosquitto)")
    path.parent.mkdir(parents=True, exist_ok=True)
    for i, (user, password) in enumerate(passwords.items()):
        create = ["-c"] if i == 0 else []
        subprocess.run(["mosquitto_passwd", *create, "-b", str(path), user, password], check=True, capture_output=True)


@dataclass
class Cloud:
    """deploy/mosquitto/cloud.conf running: the fleet's listener and the cloud service's, both over TLS."""

    broker: Mosquitto
    internal: int  # the cloud service's listener
    fleet: int  # the devices'
    ca: Path

    def device(self, device_id: str, password: str | None = None, **kwargs) -> Client:
        return Client(self.fleet, device_id, password or PASSWORDS[device_id], self.ca, **kwargs)

    def aggregator(self, **kwargs) -> Client:
        return Client(self.internal, AGGREGATOR, CLOUD_PASSWORDS[AGGREGATOR], self.ca, **kwargs)


def start_cloud(workdir: Path, fleet_added: list[str] | None = None) -> Cloud:
    """cloud.conf with its certificates, ACLs and password files in place, started; `fleet_added`: lines for the
    fleet's listener."""
    ca, _, _ = make_certs(workdir / "config" / "certs")
    for acl in ("acl", "cloud.acl"):
        shutil.copy(CONFIGS / acl, workdir / "config" / acl)
    write_passwords(workdir / "config" / "passwd", PASSWORDS)
    write_passwords(workdir / "config" / "cloud.passwd", CLOUD_PASSWORDS)
    broker, ports = start("cloud.conf", workdir, [8883, 8884], {8883: fleet_added or []})
    return Cloud(broker, ports[8884], ports[8883], ca)


def write_bridge(path: Path, device_id: str, address: str, password: str) -> subprocess.CompletedProcess[str]:
    """deploy/mosquitto/jetson-bridge.sh run as docs/deploy.md runs it, the password on standard input."""
    command = [str(CONFIGS / "jetson-bridge.sh"), device_id, address, str(path)]
    return subprocess.run(command, input=f"{password}\n", capture_output=True, text=True, timeout=10)


def start_jetson(workdir: Path, cloud: Cloud) -> tuple[Mosquitto, int]:
    """jetson.conf for cam-7, bridged to `cloud`'s fleet listener; returns the broker and its local port."""
    (workdir / "config" / "certs").mkdir(parents=True)
    (workdir / BRIDGE).parent.mkdir()
    shutil.copy(cloud.ca, workdir / "config" / "certs" / "ca.crt")
    shutil.copy(CONFIGS / "acl", workdir / "config" / "acl")
    write_passwords(workdir / "config" / "passwd", JETSON_PASSWORDS)
    written = write_bridge(workdir / BRIDGE, "cam-7", f"127.0.0.1:{cloud.fleet}", PASSWORDS["cam-7"])
    if written.returncode != 0:
        raise RuntimeError(f"jetson-bridge.sh failed: {written.stderr}")
    bridge = (workdir / BRIDGE).read_text()
    (workdir / BRIDGE).write_text(bridge.replace("/mosquitto/", f"{workdir}/"))
    jetson, ports = start("jetson.conf", workdir, [1883])
    return jetson, ports[1883]
