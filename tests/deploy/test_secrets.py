"""No file git tracks under deploy/ holds a secret: a setting named *password, *secret or *token is given
nothing, a placeholder, or a reference to where the secret lives (`${VAR}`, `$(cat FILE)`); the secrets
themselves are in files an operator makes (secrets/, .env), which git ignores."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support.paths import ROOT

# A line's setting: NAME=value, NAME: value, Mosquitto's `name value`, a flag --name=value (a YAML list's
# item, a shell's export); comments are prose and are left out.
SETTING = re.compile(r"\s*(?:-\s+|export\s+)?(?:--)?[\w-]*(?:password|secret|token)(?:=|:\s+|\s+)(\S*)", re.IGNORECASE)
COMMENT = re.compile(r"(^|\s)#.*")


def literal_secrets(text: str) -> list[str]:
    """The lines of `text` that give a secret setting a value of their own."""
    found = []
    for line in text.splitlines():
        setting = SETTING.match(COMMENT.sub("", line))
        if setting and setting[1] and not setting[1].lstrip("'\"").startswith("$"):
            found.append(line.strip())
    return found


def tracked(folder: str) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z", folder], cwd=ROOT, capture_output=True, text=True, check=True)
    return [name for name in listed.stdout.split("\0") if name]


@pytest.mark.parametrize(
    ("line", "caught"),
    [
        ("remote_password change-me", True),
        ("EDGELOOP_LOCAL_PASSWORD=hunter2", True),
        ("      PGPASSWORD: 'hunter2'  # libpq", True),
        ("      - --password=hunter2", True),
        ("EDGELOOP_API_TOKEN=", False),
        ("remote_password ${EDGELOOP_BRIDGE_PASSWORD}", False),
        ('export EDGELOOP_MQTT_PASSWORD="$(cat /etc/edgeloop/mqtt-password)" &&', False),
        ("password_file /mosquitto/config/passwd  # the device's password file", False),
    ],
)
def test_the_check_tells_a_secret_from_a_placeholder(line, caught):
    assert bool(literal_secrets(line)) is caught


def test_no_tracked_deploy_file_holds_a_secret():
    names = tracked("deploy")
    assert "deploy/mosquitto/jetson.conf" in names
    found = {name: literal_secrets((ROOT / name).read_text(errors="replace")) for name in names}
    assert {name: lines for name, lines in found.items() if lines} == {}
