"""ONNX Runtime on the bundle's model.onnx, on the best execution provider this machine has: TensorRT
(FP16, engines built on the device and cached beside the bundle), then CUDA, then the CPU. Each one
left out is reported with why. The engines in `.cache/` are the device's own (an archive never brings
one), keyed by the GPU, ONNX Runtime's and TensorRT's versions and the model's sha256."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from common.bundle import ONNX, Bundle
from edge.backends import nvidia, onnx_ops
from edge.backends.base import Backend, BackendUnavailable, engine_cache

log = logging.getLogger(__name__)

TENSORRT, CUDA, CPU = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
PREFERENCE = (TENSORRT, CUDA, CPU)
GPU_PACKAGES = {
    TENSORRT: "onnxruntime-gpu with TensorRT's libraries (on a Jetson, NVIDIA's onnxruntime-gpu wheel)",
    CUDA: "onnxruntime-gpu",
}
# TensorRT builds an engine for a range of batch sizes: one frame to the 32 of Classifier.probabilities_of_files,
# tuned for 8 (several cameras' frames at once).
PROFILE = (("min", 1), ("opt", 8), ("max", 32))
ORT_ERRORS = (
    OSError,  # the engine cache cannot be made (a read-only bundle): TensorRT is passed over, with why
    RuntimeError,
    ValueError,
    ort_state.Fail,
    ort_state.EPFail,
    ort_state.InvalidArgument,
    ort_state.InvalidGraph,
    ort_state.InvalidProtobuf,
    ort_state.NotImplemented,
    ort_state.RuntimeException,
)


def missing_providers() -> dict[str, str]:
    """Each execution provider of PREFERENCE this machine cannot offer, with why."""
    compiled = ort.get_available_providers()
    missing = {}
    for provider in PREFERENCE:
        if provider not in compiled:
            missing[provider] = f"this onnxruntime {ort.__version__} has none; it needs {GPU_PACKAGES[provider]}"
        elif provider != CPU and not nvidia.has_gpu():
            missing[provider] = "no NVIDIA GPU here"
    return missing


def engine_dir(bundle: Bundle) -> Path:
    """Where this GPU's TensorRT engines for this model live."""
    key = (nvidia.gpu_name(), ort.__version__, nvidia.tensorrt_version(), bundle.meta.files[ONNX])
    return engine_cache(bundle, "onnx-tensorrt-fp16", *key)


class OnnxBackend(Backend):
    name = "onnx"
    reads = ONNX

    @classmethod
    def unavailable(cls) -> str | None:
        return "this onnxruntime has no CPU execution provider" if CPU in missing_providers() else None

    @classmethod
    def notes(cls) -> list[str]:
        missing = missing_providers()
        return [f"{p}: {'missing: ' + missing[p] if p in missing else 'available'}" for p in PREFERENCE]

    def __init__(self, bundle: Bundle, providers: Sequence[str] | None = None) -> None:
        """`providers`: those to try, best first (default: every one this machine has)."""
        if ONNX not in bundle.meta.files:
            raise BackendUnavailable(f"{bundle} has no {ONNX} (it was trained before bundles carried one)")
        super().__init__(bundle)
        model = bundle.read(ONNX)  # the session gets the very bytes checked here, not a path
        onnx_ops.check(model, str(bundle.path / ONNX))
        self.missing = {p: why for p, why in missing_providers().items() if providers is None or p in providers}
        chain = [p for p in providers or PREFERENCE if p not in self.missing]
        self._input, self._output = bundle.meta.input.layer, bundle.meta.output_layer
        self._session = self._open(model, chain)
        self.provider = self._session.get_providers()[0]
        for provider, why in self.missing.items():
            log.log(logging.WARNING if nvidia.has_gpu() else logging.INFO, "onnx: no %s: %s", provider, why)
        inputs = [i.name for i in self._session.get_inputs()]
        outputs = [o.name for o in self._session.get_outputs()]
        if inputs != [self._input] or self._output not in outputs:
            raise BackendUnavailable(f"{bundle.path / ONNX} takes {inputs} and gives {outputs}, not {self._input}")
        log.info("onnx backend on %s", self.provider)

    def _options(self, provider: str) -> dict[str, str]:
        if provider != TENSORRT:
            return {}
        cache = engine_dir(self.bundle)
        cache.mkdir(parents=True, exist_ok=True)
        shape = "x".join(map(str, self.input_shape))
        return {
            "trt_fp16_enable": "True",
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": str(cache),
            **{f"trt_profile_{k}_shapes": f"{self._input}:{n}x{shape}" for k, n in PROFILE},
        }

    def _open(self, model: bytes, chain: list[str]) -> ort.InferenceSession:
        """A session on the first providers of `chain` that start; those that do not are added to missing."""
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: a provider that fails is reported here, with why
        # Workers that spin between frames take the cores capture and decoding need: up to 5x slower here.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        while chain:
            try:
                session = ort.InferenceSession(
                    model, options, providers=[(p, self._options(p)) for p in chain], enable_fallback=0
                )
            except ORT_ERRORS as exc:
                if chain == [CPU]:
                    raise BackendUnavailable(f"cannot load {self.bundle.path / ONNX}: {exc}") from exc
                self.missing[chain.pop(0)] = f"ONNX Runtime could not start it: {exc}"
                continue
            for provider in set(chain) - set(session.get_providers()):
                self.missing[provider] = "ONNX Runtime left it out (a CUDA, cuDNN or TensorRT library missing?)"
            return session
        raise BackendUnavailable(f"none of the execution providers asked for can run here: {self.missing}")

    def auto_refusal(self, gpu: bool) -> str | None:
        if gpu and self.provider != TENSORRT:
            return f"ONNX Runtime runs on {self.provider} here, not TensorRT: TF-TRT and TensorFlow come first"
        return None

    def predict(self, batch: np.ndarray) -> np.ndarray:
        outputs = self._session.run([self._output], {self._input: np.ascontiguousarray(batch, np.uint8)})
        return np.asarray(outputs[0], np.float32)
