"""What the machine's NVIDIA stack is, without importing TensorFlow: whether a GPU is here, which one,
and which TensorRT (TensorRT engines are specific to both)."""

from __future__ import annotations

import ctypes
import glob
import os
from importlib import metadata
from pathlib import Path

GPU_DEVICES = ("/dev/nvidiactl", "/dev/nvhost-ctrl-gpu")  # a discrete NVIDIA GPU, a Jetson's
JETSON_MODEL = Path("/proc/device-tree/model")
GPU_INFORMATION = "/proc/driver/nvidia/gpus/*/information"  # the discrete driver's, one per GPU
NVINFER = ("libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so")


def has_gpu() -> bool:
    """A cheap look for an NVIDIA GPU."""
    return any(os.path.exists(path) for path in GPU_DEVICES)


def gpu_name() -> str:
    """The first GPU's model ("NVIDIA H200", "NVIDIA Jetson Orin Nano ..."), or "unknown"."""
    for info in sorted(glob.glob(GPU_INFORMATION)):
        for line in Path(info).read_text(errors="replace").splitlines():
            if line.startswith("Model:"):
                return line.split(":", 1)[1].strip()
    if JETSON_MODEL.exists():
        return JETSON_MODEL.read_text(errors="replace").strip("\x00\n ")
    return "unknown"


def tensorrt_version() -> str:
    """TensorRT's version: the pip wheel's, else the library's own number (8502 for 8.5.2), else "unknown"."""
    try:
        return metadata.version("tensorrt")
    except metadata.PackageNotFoundError:
        pass
    for name in NVINFER:
        try:
            return f"libnvinfer {int(ctypes.CDLL(name).getInferLibVersion())}"
        except (OSError, AttributeError):
            continue
    return "unknown"
