"""Inference backends, chosen by name. Each is imported only when asked for, so a backend whose
library is missing on this machine is reported as unavailable instead of breaking the others."""

from __future__ import annotations

import importlib
import logging

from common.bundle import Bundle
from edge.backends.base import Backend, BackendUnavailable
from edge.backends.nvidia import has_gpu

log = logging.getLogger(__name__)

# name -> "module:class"
REGISTRY: dict[str, str] = {
    "tflite": "edge.backends.tflite:TFLiteBackend",
    "tf": "edge.backends.tf:TFBackend",
    "tensorrt": "edge.backends.tensorrt:TensorRTBackend",
    "onnx": "edge.backends.onnx:OnnxBackend",
}
# What `auto` tries, fastest first. On a GPU: ONNX Runtime on TensorRT (passed over on CUDA or the CPU
# alone), TF-TRT, TensorFlow, LiteRT. On a CPU: LiteRT (XNNPACK: more frames per CPU second than ONNX
# Runtime, measured in the README), then ONNX Runtime, TensorFlow.
GPU_ORDER = ("onnx", "tensorrt", "tf", "tflite")
CPU_ORDER = ("tflite", "onnx", "tf")


def auto_order() -> tuple[str, ...]:
    return GPU_ORDER if has_gpu() else CPU_ORDER


__all__ = ["REGISTRY", "Backend", "BackendUnavailable", "auto_order", "availability", "create", "notes"]


def _backend_class(name: str) -> type[Backend]:
    if name not in REGISTRY:
        raise BackendUnavailable(f"unknown backend {name!r}; known: {', '.join(REGISTRY)}")
    module_name, class_name = REGISTRY[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendUnavailable(f"backend {name!r} cannot load here: {exc}") from exc
    backend: type[Backend] = getattr(module, class_name)
    if reason := backend.unavailable():
        raise BackendUnavailable(f"backend {name!r} cannot run here: {reason}")
    return backend


def create(name: str, bundle: Bundle, warm_up: bool = True) -> Backend:
    """Build backend `name` (or the first that loads, for `auto`) for `bundle`."""
    gpu = has_gpu()
    candidates = auto_order() if name == "auto" else [name]
    reasons = []
    for candidate in candidates:
        try:
            backend = _backend_class(candidate)(bundle)
            if name == "auto" and (refusal := backend.auto_refusal(gpu)):
                del backend  # its runtime's memory (a GPU's, shared on a Jetson) goes before the next one's comes
                raise BackendUnavailable(f"auto passes over {candidate!r}: {refusal}")
        except BackendUnavailable as exc:
            reasons.append(str(exc))
            log.info("%s", exc)
            continue
        if warm_up:
            backend.warm_up()
        log.info("backend %s loaded %s", candidate, bundle)
        return backend
    raise BackendUnavailable("; ".join(reasons))


def availability() -> dict[str, str | None]:
    """Each registered backend mapped to None when it can load here, else the reason it cannot."""
    result: dict[str, str | None] = {}
    for name in REGISTRY:
        try:
            _backend_class(name)
            result[name] = None
        except BackendUnavailable as exc:
            result[name] = str(exc)
    return result


def notes(name: str) -> list[str]:
    """What else there is to say of a backend that can load here (ONNX Runtime's execution providers)."""
    return _backend_class(name).notes()
