"""Runs queued trainings, one at a time, each as its own `python -m cloud retrain` process (so
ingest never stalls and a crash in TensorFlow cannot take the service down), then registers the
bundle, puts it through the gate and, if it passes, promotes and announces it. A model whose
dataset has a `sweep.yaml` is trained by `python -m cloud sweep`, and the sweep's best run is the
candidate."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from cloud.datasets import dataset_dir, dataset_prefix
from cloud.registry.gate import GatePolicy
from cloud.registry.rollout import Rollout
from cloud.registry.versions import Registry
from cloud.retrain.config import RetrainConfig
from cloud.store import samples as sample_store
from cloud.training.jobs import Job, Jobs
from common.options import without_option_env

log = logging.getLogger(__name__)

RETRAIN_YAML = "retrain.yaml"
SWEEP_YAML = "sweep.yaml"  # with it, each training of the model is a sweep, and its best run the candidate
SUMMARIES_DIR = "tensorboard"  # under the data directory: each training's TensorBoard summaries, by model and version


@dataclass(frozen=True)
class TrainingPolicy:
    gate: GatePolicy = field(default_factory=GatePolicy)
    canary_groups: list[str] | None = None  # a passing candidate is announced to these groups first
    poll_s: float = 1.0


def job_log(data_dir: Path, job_id: str) -> Path:
    return data_dir / "jobs" / f"{job_id}.log"


class Trainer(threading.Thread):
    def __init__(self, jobs: Jobs, registry: Registry, rollout: Rollout, data_dir: Path, policy: TrainingPolicy):
        super().__init__(name="training", daemon=True)
        self.jobs, self.registry, self.rollout = jobs, registry, rollout
        self.data_dir = data_dir
        self.policy = policy
        self._stopping = threading.Event()
        self._process: subprocess.Popen | None = None

    def stop(self) -> None:
        self._stopping.set()
        if self._process and self._process.poll() is None:
            self._process.terminate()
        self.join(timeout=30)

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                job = self.jobs.claim()
            except Exception as exc:  # the database away: try again later
                log.warning("cannot look for training jobs: %r", exc)
                job = None
            if job is None:
                self._stopping.wait(self.policy.poll_s)
                continue
            try:
                ok, version, message = self._train(job)
            except Exception as exc:  # whatever goes wrong, the job ends and the service goes on
                log.exception("training job %s failed", job.id)
                ok, version, message = False, None, f"{type(exc).__name__}: {exc}"
            self.jobs.finish(job, ok, version, message)

    def _version(self, model: str) -> str:
        version = datetime.now(timezone.utc).strftime("%Y%m%d.%H%M%S")
        while self.registry.bundle_dir(model, version).exists():
            time.sleep(1)
            version = datetime.now(timezone.utc).strftime("%Y%m%d.%H%M%S")
        return version

    def _train(self, job: Job) -> tuple[bool, str | None, str]:
        images = dataset_dir(self.data_dir, job.model)
        if not images.is_dir():
            return False, None, f"no dataset at {images}"
        version = self._version(job.model)
        output = self.registry.bundle_dir(job.model, version)
        output.parent.mkdir(parents=True, exist_ok=True)
        sweep = images / SWEEP_YAML
        runs = self.data_dir / "sweeps" / job.model / version
        config, target = (sweep, runs) if sweep.is_file() else (images / RETRAIN_YAML, output)
        command = [sys.executable, "-m", "cloud", "sweep" if sweep.is_file() else "retrain"]
        if config.is_file():
            command += ["--config", str(config)]
        command += ["--image-dir", str(images), "--output-dir", str(target), "--name", job.model]
        command += ["--version", version, "--bottleneck-dir", str(self.data_dir / "bottlenecks")]
        command += ["--field-devices", str(self._field_devices(job))]
        if not sweep.is_file():  # a sweep keeps its runs' summaries under its own folder
            command += ["--summaries-dir", str(self.data_dir / SUMMARIES_DIR / job.model / version)]
        logfile = job_log(self.data_dir, job.id)
        logfile.parent.mkdir(parents=True, exist_ok=True)
        log.info("job %s: training %s %s (%s); log in %s", job.id, job.model, version, "; ".join(job.reasons), logfile)
        with open(logfile, "ab") as out:
            # The model's retrain.yaml and these flags say all: the service host's EDGELOOP_<OPTION> must not win.
            env = without_option_env(RetrainConfig, os.environ)
            self._process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
            rc = self._process.wait()
        if rc != 0:
            return False, None, f"the training exited with status {rc}; see its log"
        if sweep.is_file():
            best = runs / "best"
            if not best.exists():
                return False, None, "every run of the sweep failed; see its log"
            shutil.copytree(best.resolve(), output)  # the sweep's winner goes through the gate like any candidate
        return True, version, self._decide(job, output)

    def _field_devices(self, job: Job) -> Path:
        """Which device sent each labelled sample, for the retrainer's accuracy per device."""
        path = self.data_dir / "jobs" / f"{job.id}.devices.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(sample_store.labelled_devices(self.registry.db, dataset_prefix(job.model))))
        return path

    def _decide(self, job: Job, output: Path) -> str:
        candidate = self.registry.add(output, trigger="; ".join(job.reasons), job_id=job.id)
        images = dataset_dir(self.data_dir, job.model)
        return self.rollout.gate_and_promote(candidate, images, self.policy.gate, self.policy.canary_groups)
