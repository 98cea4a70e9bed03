"""scripts/gpu-check.sh as far as a machine without a GPU takes it: the clear message, the exit status, and
a report of the designed shape, here and in $OUT; and how the report records and judges its steps."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.gpu import gpu_report
from tests.support.paths import ROOT

REPORT_KEYS = {"schema", "created", "host", "gpu", "ok", "reason", "steps", "summary"}


def test_without_a_gpu_it_says_why_at_once_and_still_writes_its_report(tmp_path: Path) -> None:
    report_module = gpu_report()
    if report_module.probe_gpu()["present"]:
        pytest.skip("a GPU is here: gpu-check.sh would run its steps")
    env = {"PATH": "/usr/bin:/bin", "WORK": str(tmp_path / "work"), "OUT": str(tmp_path / "out")}
    start = time.monotonic()
    result = subprocess.run([ROOT / "scripts" / "gpu-check.sh"], capture_output=True, text=True, env=env, timeout=60)
    assert time.monotonic() - start < 10
    assert result.returncode == report_module.NO_GPU_EXIT, result.stderr
    assert "gpu-check: no NVIDIA GPU here: nvidia-smi is not on PATH" in result.stderr
    path = tmp_path / "work" / "gpu-report.json"
    assert str(path) in result.stderr
    report = json.loads(path.read_text())
    assert set(report) == REPORT_KEYS
    assert (report["schema"], report["ok"], report["steps"], report["summary"]) == (1, False, [], {})
    assert report["gpu"] == {"present": False, "via": None, "devices": [], "reason": report["reason"]}
    assert report["reason"].startswith("no NVIDIA GPU here")
    assert json.loads((tmp_path / "out" / "gpu-report.json").read_text()) == report


def test_the_report_keeps_each_steps_output_and_fails_on_any_failed_step() -> None:
    report_module = gpu_report()
    report = report_module.new_report({"present": True, "via": "nvidia-smi", "devices": ["H200"], "reason": None})
    report["steps"] = [
        report_module.run_step("prints", [sys.executable, "-c", "print('{\"fps\": 9.5}')"], timeout_s=30),
        report_module.run_step("lines", [sys.executable, "-c", "print('{\"a\": 1}'); print('{\"a\": 2}')"], 30),
        report_module.run_step("fails", [sys.executable, "-c", "import sys; sys.exit('boom')"], timeout_s=30),
        report_module.run_step("hangs", [sys.executable, "-c", "import time; time.sleep(30)"], timeout_s=0.5),
        report_module.skipped("tensorrt", "TF-TRT is gone from this TensorFlow"),
    ]
    report = json.loads(json.dumps(report_module.finish(report)))
    assert set(report) == REPORT_KEYS
    prints, lines, fails, hangs, tensorrt = report["steps"]
    assert (prints["ok"], prints["rc"], prints["result"], prints["error"]) == (True, 0, {"fps": 9.5}, None)
    assert lines["result"] == [{"a": 1}, {"a": 2}]
    assert (fails["ok"], fails["rc"], fails["error"]) == (False, 1, "boom")
    assert (hangs["ok"], hangs["error"]) == (False, "timed out after 0 s")
    assert (tensorrt["ok"], tensorrt["error"]) == (None, "TF-TRT is gone from this TensorFlow")
    assert report["summary"] == {"prints": True, "lines": True, "fails": False, "hangs": False, "tensorrt": None}
    assert (report["ok"], report["reason"]) == (False, "failed: fails, hangs")
