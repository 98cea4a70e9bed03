"""The one JSON report of scripts/gpu-check.sh, and the steps behind it. Each step is a command in its own
process (a CUDA or TensorRT crash ends that step, not the report), recorded with its exit status, time and
parsed JSON output. `probe` needs only the standard library, so it runs before anything is installed, and
the tests' `gpu` marker asks it the same question.

    python3 scripts/gpu_report.py probe --report R.json       # exit 3, and a report saying why, without a GPU
    VENV/bin/python scripts/gpu_report.py run --report R.json --work DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger("gpu_report")

SCHEMA = 1
NO_GPU_EXIT = 3
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FLOWERS = SHARED / "data" / "flower_photos"
MOBILENET = ("mobilenet_0.25_224", SHARED / "weights" / "keras" / "mobilenet_2_5_224_tf_no_top.h5")
INCEPTION_GLOB = "inception_v3*notop*.h5"  # Keras's inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5
JETSON_GPU = Path("/dev/nvhost-ctrl-gpu")
BACKENDS = ("tflite", "tf", "onnx", "tensorrt")
BATCHES = (1, 8)
ORT_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def probe_gpu() -> dict[str, Any]:
    """Whether an NVIDIA GPU is here, by nvidia-smi (a discrete GPU) or the Jetson's GPU device node."""
    smi = shutil.which("nvidia-smi")
    if smi:
        query = [smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
        try:
            result = subprocess.run(query, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"present": False, "via": "nvidia-smi", "devices": [], "reason": f"nvidia-smi failed: {exc}"}
        devices = [line.strip() for line in result.stdout.splitlines() if line.strip()]
        if result.returncode == 0 and devices:
            return {"present": True, "via": "nvidia-smi", "devices": devices, "reason": None}
        why = (result.stderr or result.stdout).strip().splitlines()[:1] or [f"exit {result.returncode}"]
        return {"present": False, "via": "nvidia-smi", "devices": [], "reason": f"nvidia-smi lists no GPU: {why[0]}"}
    if JETSON_GPU.exists():
        model = Path("/proc/device-tree/model")
        name = model.read_text().strip("\x00\n") if model.exists() else "Jetson"
        return {"present": True, "via": str(JETSON_GPU), "devices": [name], "reason": None}
    reason = f"no NVIDIA GPU here: nvidia-smi is not on PATH and there is no Jetson GPU ({JETSON_GPU})"
    return {"present": False, "via": None, "devices": [], "reason": reason}


def new_report(gpu: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": {"machine": platform.machine(), "system": platform.platform(), "python": platform.python_version()},
        "gpu": gpu,
        "ok": False,
        "reason": gpu["reason"],
        "steps": [],
        "summary": {},
    }


def run_step(name: str, command: list[str], timeout_s: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one step; its stdout's JSON (one object, or one per line) becomes `result`, stderr's tail `error`."""
    start = time.monotonic()
    step: dict[str, Any] = {"name": name, "command": command, "rc": None, "wall_s": 0.0, "result": None}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, cwd=ROOT, env={**os.environ, **(env or {})}
        )
        step["rc"] = done.returncode
        step["result"] = _parse(done.stdout)
        step["error"] = None if done.returncode == 0 else done.stderr.strip()[-2000:]
    except subprocess.TimeoutExpired:
        step["error"] = f"timed out after {timeout_s:.0f} s"
    step["wall_s"] = round(time.monotonic() - start, 2)
    step["ok"] = step["rc"] == 0
    log.info("%s: %s in %.1f s", name, "ok" if step["ok"] else "FAILED", step["wall_s"])
    return step


def skipped(name: str, reason: str) -> dict[str, Any]:
    return {"name": name, "command": None, "rc": None, "wall_s": 0.0, "result": None, "ok": None, "error": reason}


def _parse(stdout: str) -> Any:
    try:
        return json.loads(stdout)
    except json.JSONDecodeError:
        lines = [line for line in stdout.splitlines() if line.startswith("{")]
        try:
            return [json.loads(line) for line in lines] or None
        except json.JSONDecodeError:
            return None


def finish(report: dict[str, Any]) -> dict[str, Any]:
    """`ok` when a GPU was found and no step failed (a skipped step, ok None, does not count)."""
    report["summary"] = {step["name"]: step["ok"] for step in report["steps"]}
    failed = [name for name, ok in report["summary"].items() if ok is False]
    report["ok"] = report["gpu"]["present"] and not failed
    if report["gpu"]["present"]:
        report["reason"] = f"failed: {', '.join(failed)}" if failed else None
    return report


def write(report: dict[str, Any], path: Path) -> list[Path]:
    """Write the report to `path`, and into $OUT too when it is set (the device machine's return folder)."""
    paths = [path]
    if out := os.environ.get("OUT"):
        paths.append(Path(out) / path.name)
    for target in paths:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report, indent=2) + "\n")
    return paths


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    probe = sub.add_parser("probe", help="look for a GPU; without one write the report and exit 3")
    probe.add_argument("--report", type=Path, required=True)
    run = sub.add_parser("run", help="run every step and write the report")
    run.add_argument("--report", type=Path, required=True)
    run.add_argument("--work", type=Path, required=True, help="scratch folder: the flowers subset, sweeps, caches")
    run.add_argument("--per-label", type=int, default=60, help="flower photos per label (0: all of them)")
    run.add_argument("--steps", type=int, default=30, help="training steps per sweep run")
    run.add_argument("--frames", type=int, default=200, help="frames per edge bench figure")
    run.add_argument("--bundle", type=Path, help="a flowers bundle for the edge steps, instead of the sweeps")
    env = sub.add_parser("environment", help="print what this Python offers: TensorFlow, ONNX Runtime, backends")
    env.set_defaults(report=None)
    providers = sub.add_parser("providers", help="time an ONNX model under each ONNX Runtime provider")
    providers.add_argument("model", type=Path)
    providers.add_argument("--cache", type=Path, required=True, help="TensorRT engine cache folder")
    providers.set_defaults(report=None)
    args = parser.parse_args(argv)
    if args.command in ("environment", "providers"):
        from gpu_steps import environment, provider_timings  # the venv's libraries, imported only here

        print(json.dumps(environment() if args.command == "environment" else provider_timings(args.model, args.cache)))
        return 0
    gpu = probe_gpu()
    report = new_report(gpu)
    if not gpu["present"]:
        finish(report)
        paths = write(report, args.report)
        print(f"gpu-check: {gpu['reason']}; report: {', '.join(map(str, paths))}", file=sys.stderr)
        return NO_GPU_EXIT
    if args.command == "probe":  # replaced by `run`'s report, unless the install before it fails
        report["reason"] = "a GPU is here, but the steps did not run: gpu-check.sh stopped before them"
        write(report, args.report)
        print(f"gpu-check: {', '.join(gpu['devices'])} (by {gpu['via']})")
        return 0
    from gpu_steps import run_all

    run_all(report, args)
    finish(report)
    paths = write(report, args.report)
    print(f"gpu-check: {'ok' if report['ok'] else report['reason']}; report: {', '.join(map(str, paths))}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
