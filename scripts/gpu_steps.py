"""The steps of scripts/gpu-check.sh, run by gpu_report.py with the check's venv: what the venv offers, a
tiny CPU-against-GPU sweep on the flowers, then `edge classify` and `edge bench` (batch 1 and 8) per backend
on the GPU run's bundle, and ONNX Runtime's TensorRT, CUDA and CPU providers on its ONNX model. A backend this
machine cannot load (TF-TRT is gone from TensorFlow 2.18 on) is recorded as skipped with the reason."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from gpu_report import BACKENDS, BATCHES, FLOWERS, INCEPTION_GLOB, MOBILENET, ORT_PROVIDERS, run_step, skipped

REQUIRED = ("tflite", "tf")  # a GPU machine that cannot run these fails the check; the others may be missing
CPU_ONLY = {"CUDA_VISIBLE_DEVICES": "-1"}


def environment() -> dict[str, Any]:
    """TensorFlow and its GPUs, ONNX Runtime and its providers, and each edge backend's availability."""
    found: dict[str, Any] = {"python": sys.version.split()[0]}
    try:
        import tensorflow as tf

        build = tf.sysconfig.get_build_info()
        found["tensorflow"] = {
            "version": tf.__version__,
            "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
            "cuda": build.get("cuda_version"),
            "cudnn": build.get("cudnn_version"),
        }
    except ImportError as exc:
        found["tensorflow"] = {"error": str(exc)}
    try:
        import onnxruntime as ort

        found["onnxruntime"] = {"version": ort.__version__, "providers": ort.get_available_providers()}
    except ImportError as exc:
        found["onnxruntime"] = {"error": str(exc)}
    from edge import backends

    found["backends"] = backends.availability()
    return found


def provider_timings(model: Path, cache: Path) -> dict[str, Any]:
    """Each provider's session on `model`: the provider it really got, its first call (TensorRT builds its
    FP16 engine then), frames/s at each batch and top-1 agreement with the CPU provider on random frames."""
    import numpy as np
    import onnxruntime as ort

    meta = json.loads((model.parent / "model.json").read_text())["input"]
    available = ort.get_available_providers()
    options = {"TensorrtExecutionProvider": {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
                                             "trt_engine_cache_path": str(cache)}}  # fmt: skip
    cache.mkdir(parents=True, exist_ok=True)
    frames = np.random.default_rng(0).integers(0, 256, (max(BATCHES), meta["height"], meta["width"], 3), np.uint8)
    reference = None
    result: dict[str, Any] = {}
    for provider in reversed(ORT_PROVIDERS):  # the CPU first: the others are compared with it
        if provider not in available:
            result[provider] = {"available": False}
            continue
        try:
            session = ort.InferenceSession(
                str(model), providers=[(provider, options.get(provider, {})), "CPUExecutionProvider"]
            )
            entry = _time_session(session, frames)
        except Exception as exc:  # a provider that fails to build its session is a finding, not the end
            result[provider] = {"available": True, "error": f"{type(exc).__name__}: {exc}"[:500]}
            continue
        top1 = entry.pop("top1")
        reference = top1 if reference is None else reference
        entry["top1_agreement_with_cpu"] = float(np.mean(top1 == reference))
        result[provider] = {"available": True, **entry}
    return result


def _time_session(session: Any, frames: Any) -> dict[str, Any]:
    import numpy as np

    name = session.get_inputs()[0].name
    dtype = np.uint8 if session.get_inputs()[0].type == "tensor(uint8)" else np.float32
    start = time.perf_counter()
    probabilities = session.run(None, {name: frames.astype(dtype)})[0]
    entry: dict[str, Any] = {"used": session.get_providers()[0], "first_call_s": round(time.perf_counter() - start, 3)}
    for batch in BATCHES:
        calls, start = max(1, 64 // batch), time.perf_counter()
        for _ in range(calls):
            session.run(None, {name: frames[:batch].astype(dtype)})
        entry[f"fps_batch_{batch}"] = round(calls * batch / (time.perf_counter() - start), 1)
    entry["top1"] = np.argmax(probabilities, axis=1)
    return entry


def flowers_subset(target: Path, per_label: int) -> Path:
    """The first `per_label` photos of each flower, linked (0: every photo): bottlenecks of all 3,670 on
    the CPU would take most of the check's eight minutes."""
    if per_label == 0:
        return FLOWERS
    for folder in sorted(p for p in FLOWERS.iterdir() if p.is_dir()):
        (target / folder.name).mkdir(parents=True, exist_ok=True)
        for photo in sorted(folder.glob("*.jpg"))[:per_label]:
            link = target / folder.name / photo.name
            if not link.exists():
                link.symlink_to(photo)
    return target


def _sweep(architecture: str, weights: Path, images: Path, args: argparse.Namespace, known: set[str]) -> dict:
    out = args.work / f"sweep-{architecture}"
    command = [sys.executable, "-m", "cloud", "sweep", "--json", "--image-dir", str(images),
               "--architecture", architecture, "--weights", str(weights), "--device", "cpu,gpu",
               "--how-many-training-steps", str(args.steps), "--output-dir", str(out),
               "--bottleneck-dir", str(args.work / "bottlenecks"), "--edge-frames", "50",
               "--edge-backends", ",".join(b for b in BACKENDS if b in known)]  # fmt: skip
    return run_step(f"sweep {architecture} cpu,gpu", command, timeout_s=300)


def _gpu_bundle(sweep: dict[str, Any]) -> Path | None:
    runs = (sweep["result"] or {}).get("runs", [])
    done = [run for run in runs if run["bundle"] and run["error"] is None]
    done.sort(key=lambda run: run["params"].get("device") != "gpu")
    return Path(done[0]["bundle"]) if done else None


def _test_images(bundle_dir: Path, images: Path) -> list[str]:
    """The bundle's test split, those of its photos that are here."""
    from common import bundle

    paths = [images / row["file"] for row in bundle.evaluation(bundle.load(bundle_dir))]
    return [str(path) for path in paths if path.exists()]


def _edge_steps(bundle: Path, images: list[str], availability: dict[str, str | None], frames: int) -> list[dict]:
    steps, top1 = [], {}
    runs = [(b, b, {}) for b in BACKENDS] + [("tf cpu", "tf", CPU_ONLY)]
    for label, backend, env in runs:
        if backend not in availability or (availability[backend] and backend not in REQUIRED):
            steps.append(skipped(f"classify {label}", availability.get(backend) or "not in this checkout"))
            continue
        command = [sys.executable, "-m", "edge", "classify", "--model", str(bundle), "--backend", backend,
                   "--top-k", "1", "--json", *images]  # fmt: skip
        step = run_step(f"classify {label}", command, timeout_s=180, env=env)
        top1[label] = [row["top_k"][0]["label"] for row in step["result"] or []] if step["ok"] else None
        steps.append(step)
        for batch in BATCHES:
            bench = [sys.executable, "-m", "edge", "bench", "--model", str(bundle), "--backend", backend,
                     "--frames", str(frames), "--batch", str(batch), "--json"]  # fmt: skip
            steps.append(run_step(f"bench {label} batch {batch}", bench, timeout_s=180, env=env))
    for step in steps:
        label = step["name"].removeprefix("classify ")
        if step["name"].startswith("classify ") and top1.get(label) and top1.get("tflite"):
            same = sum(a == b for a, b in zip(top1[label], top1["tflite"], strict=True))
            step["top1_agreement_with_tflite"] = round(same / len(top1["tflite"]), 4)
    return steps


def run_all(report: dict[str, Any], args: argparse.Namespace) -> None:
    """Append every step to `report["steps"]`, in order; a step that fails leaves the others to run."""
    steps = report["steps"]
    args.work.mkdir(parents=True, exist_ok=True)
    env = run_step("environment", [sys.executable, str(Path(__file__).with_name("gpu_report.py")), "environment"], 300)
    steps.append(env)
    availability = (env["result"] or {}).get("backends", {})
    if not FLOWERS.exists():
        steps.append(skipped("sweep", f"{FLOWERS} is absent: no flowers to train on"))
        return
    if args.bundle:  # a device image without the cloud's libraries: its bundle, trained on the flowers elsewhere
        steps.append(skipped("sweep", f"--bundle {args.bundle} given"))
        bundle, images = args.bundle, FLOWERS
    else:
        images = flowers_subset(args.work / "flowers", args.per_label)
        sweep = _sweep(MOBILENET[0], MOBILENET[1], images, args, set(availability))
        steps.append(sweep)
        inception = sorted(MOBILENET[1].parent.glob(INCEPTION_GLOB))
        if inception:
            steps.append(_sweep("inception_v3", inception[0], images, args, set(availability)))
        else:
            steps.append(skipped("sweep inception_v3 cpu,gpu", f"no {INCEPTION_GLOB} in {MOBILENET[1].parent}"))
        bundle = _gpu_bundle(sweep)
    if bundle is None:
        steps.append(skipped("edge", "the sweep trained no bundle"))
        return
    steps.extend(_edge_steps(bundle, _test_images(bundle, images), availability, args.frames))
    onnx = sorted(bundle.glob("*.onnx"))
    if not onnx:
        steps.append(skipped("onnxruntime providers", f"no .onnx model in {bundle}"))
        return
    script = str(Path(__file__).with_name("gpu_report.py"))
    command = [sys.executable, script, "providers", str(onnx[0]), "--cache", str(args.work / "trt-cache")]
    steps.append(run_step("onnxruntime providers", command, timeout_s=240))
