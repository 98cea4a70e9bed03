"""The `gpu` marker's question, asked once a session: is there an NVIDIA GPU that TensorFlow can use?
The cheap look (nvidia-smi, a Jetson's GPU device) is scripts/gpu_report.py's, the one gpu-check.sh asks;
TensorFlow is imported only when that finds a GPU."""

from __future__ import annotations

import functools
import importlib.util
from types import ModuleType

from tests.support.paths import ROOT


def gpu_report() -> ModuleType:
    """scripts/gpu_report.py, which is a script and not in a package."""
    spec = importlib.util.spec_from_file_location("gpu_report", ROOT / "scripts" / "gpu_report.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def gpu_missing() -> str | None:
    """Why the `gpu` tests cannot run here, or None when they can."""
    probe = gpu_report().probe_gpu()
    if not probe["present"]:
        return probe["reason"]
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return f"TensorFlow lists no GPU beside {probe['devices']}: its CPU build? (pip install -e '.[gpu]')"
    return None
