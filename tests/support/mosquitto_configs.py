"""The repository's Mosquitto configurations, run by a real Mosquitto: each file as it is, with its listeners
moved to free ports on 127.0.0.1 and the container's /mosquitto/ folder moved to the test's folder."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.broker import Mosquitto
from tests.support.ports import free_port

CONFIGS = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"


def localize(name: str, workdir: Path, ports: dict[int, int], **overrides: str) -> str:
    """deploy/mosquitto/NAME for this test: `ports` maps the file's listener ports to free ones, `overrides`
    replaces whole directives (the bridge's address, its password)."""
    lines = []
    for line in (CONFIGS / name).read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "listener":
            line = f"listener {ports[int(value.split()[0])]} 127.0.0.1"
        elif key in overrides:
            line = f"{key} {overrides[key]}"
        elif key == "log_dest":
            line = f"log_dest file {workdir / 'mosquitto.log'}"
        lines.append(line.replace("/mosquitto/", f"{workdir}/"))
    # Started as root, mosquitto would switch to user mosquitto, who cannot write the test's folders.
    return "\n".join([*lines, "user root", ""])


def start(name: str, workdir: Path, listeners: list[int], **overrides: str) -> tuple[Mosquitto, dict[int, int]]:
    """Start deploy/mosquitto/NAME; returns the broker and the free port each of the file's listeners got."""
    ports = {port: free_port() for port in listeners}
    config = localize(name, workdir, ports, **overrides)
    return Mosquitto(workdir, config, port=ports[listeners[0]]).start(), ports


def write_passwords(path: Path, passwords: dict[str, str]) -> None:
    """A password file made by mosquitto_passwd, as an operator makes it."""
    if not shutil.which("mosquitto_passwd"):
        raise RuntimeError("mosquitto_passwd is not installed (make test installs mosquitto)")
    path.parent.mkdir(parents=True, exist_ok=True)
    for i, (user, password) in enumerate(passwords.items()):
        create = ["-c"] if i == 0 else []
        subprocess.run(["mosquitto_passwd", *create, "-b", str(path), user, password], check=True, capture_output=True)
