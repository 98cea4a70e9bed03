"""The systemd units pass `systemd-analyze verify`, and their example option files are what the commands accept."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from cloud.options import ServeConfig
from common.options import build, read_yaml
from edge.config import EdgeConfig
from tests.support.paths import ROOT

SYSTEMD = ROOT / "deploy" / "systemd"
INSTALLED_PYTHON = "/opt/edgeloop/.venv/bin/python"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed (package systemd)")
@pytest.mark.parametrize("unit", ["edgeloop-edge.service", "edgeloop-cloud.service"])
def test_unit_passes_systemd_analyze_verify(unit, tmp_path):
    # verify checks that ExecStart's program exists: this environment's Python stands in for the installed one.
    text = (SYSTEMD / unit).read_text()
    assert INSTALLED_PYTHON in text
    (tmp_path / unit).write_text(text.replace(INSTALLED_PYTHON, sys.executable))
    result = subprocess.run(["systemd-analyze", "verify", tmp_path / unit], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize(("example", "model"), [("edge.yaml", EdgeConfig), ("cloud.yaml", ServeConfig)])
def test_example_options_are_accepted(example, model):
    options = build(model, read_yaml(SYSTEMD / example))
    assert (options.trusted_key if model is EdgeConfig else options.signing_key) is not None, "announcements signed"
    unit = "edgeloop-edge.service" if model is EdgeConfig else "edgeloop-cloud.service"
    assert f"--config /etc/edgeloop/{example}" in (SYSTEMD / unit).read_text()
