"""Running a sweep's trainings: one after another in this process, or side by side in worker
processes (`--jobs N`). A run that fails (no GPU, out of memory, weights that do not fit) is
recorded with its reason and the others go on."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

import cloud
from cloud.retrain.config import RetrainConfig
from cloud.retrain.errors import RetrainError
from cloud.sweep.grid import Run, waves
from common import bundle
from common.errors import ConfigError
from common.options import without_option_env

log = logging.getLogger(__name__)

TF_DEVICES = {"cpu": "/CPU:0", "gpu": "/GPU:0"}
SOURCE_ROOT = Path(cloud.__file__).resolve().parent.parent  # workers import the code this process runs


@dataclass
class Outcome:
    run: Run
    meta: bundle.ModelMeta | None = None
    error: str | None = None
    wall_s: float = 0.0


def _device_problem(device: str) -> str | None:
    import tensorflow as tf

    if device == "gpu" and not tf.config.list_physical_devices("GPU"):
        return "no GPU here: TensorFlow lists none (tf.config.list_physical_devices('GPU') is empty)"
    return None


def _reason(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return first if isinstance(exc, RetrainError | ConfigError) else f"{type(exc).__name__}: {first}"


def _config_file(run: Run) -> Path:
    """The run's options as a retrain YAML file beside its bundle: `python -m cloud retrain --config` repeats it."""
    path = run.config.output_dir.parent / f"{run.name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(run.config.model_dump(mode="json", exclude_none=True), sort_keys=False))
    return path


def _in_process(run: Run) -> Outcome:
    import keras
    import tensorflow as tf

    from cloud.retrain.train import retrain

    device = TF_DEVICES.get(run.device)
    try:
        with tf.device(device) if device else contextlib.nullcontext():
            return Outcome(run, meta=retrain(run.config))
    except Exception as exc:  # whatever ends one run (OOM included) must not end the sweep
        log.warning("run %s failed", run.name, exc_info=not isinstance(exc, RetrainError | ConfigError))
        return Outcome(run, error=_reason(exc))
    finally:
        keras.backend.clear_session()


def _worker_error(result: subprocess.CompletedProcess[str]) -> str:
    if result.returncode < 0:
        return f"killed by signal {-result.returncode} (out of memory?)"
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return (errors or lines or [f"exited {result.returncode}"])[-1]


def _in_worker(run: Run, config: Path) -> Outcome:
    """`python -m cloud retrain --config runs/<name>.yaml` in its own process; `cpu` hides the GPUs from it."""
    env = without_option_env(RetrainConfig, os.environ)  # the run's YAML says all: EDGELOOP_<OPTION> would win over it
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE_ROOT), os.environ.get("PYTHONPATH")]))
    if run.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = "-1"
    env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # workers sharing a GPU: none takes all its memory
    command = [sys.executable, "-m", "cloud", "retrain", "--config", str(config)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    run.config.output_dir.with_name(f"{run.name}.log").write_text(result.stderr)
    if result.returncode:
        return Outcome(run, error=_worker_error(result))
    return Outcome(run, meta=bundle.load(run.config.output_dir).meta)


def _one(run: Run, jobs: int) -> Outcome:
    start = time.perf_counter()
    config = _config_file(run)
    if problem := _device_problem(run.device):
        outcome = Outcome(run, error=problem)
    elif jobs > 1:
        outcome = _in_worker(run, config)
    else:
        outcome = _in_process(run)
    outcome.wall_s = round(time.perf_counter() - start, 3)
    log.info("run %s: %s in %.1fs", run.name, outcome.error or "done", outcome.wall_s)
    return outcome


def execute(runs: list[Run], jobs: int) -> list[Outcome]:
    """Every run's outcome, in the order of `runs`."""
    done: dict[str, Outcome] = {}
    for wave in waves(runs):
        if jobs == 1:
            done.update((run.name, _one(run, jobs)) for run in wave)
        else:
            with ThreadPoolExecutor(jobs) as pool:
                done.update((o.run.name, o) for o in pool.map(lambda run: _one(run, jobs), wave))
    return [done[run.name] for run in runs]
