"""System readings for the telemetry topic: jetson-stats on a Jetson (GPU load, temperatures,
power, memory), psutil elsewhere."""

from __future__ import annotations

import logging
from typing import Any

import psutil

log = logging.getLogger(__name__)


class JetsonStats:
    """jtop, when its service runs (a Jetson with jetson-stats, /run/jtop.sock mounted)."""

    def __init__(self) -> None:
        from jtop import jtop  # jetson-stats: raises JtopException off a Jetson

        self._jtop = jtop()
        self._jtop.start()

    def read(self) -> dict[str, Any]:
        stats = dict(self._jtop.stats)
        return {
            "gpu_percent": stats.get("GPU"),
            "cpu_percent": psutil.cpu_percent(),
            "memory_percent": psutil.virtual_memory().percent,
            "temperatures": {k.removeprefix("Temp "): v for k, v in stats.items() if k.startswith("Temp ")},
            "power_mw": stats.get("Power TOT"),
            "source": "jtop",
        }

    def close(self) -> None:
        self._jtop.close()


class PsutilStats:
    def read(self) -> dict[str, Any]:
        temps = {}
        try:
            for name, entries in (psutil.sensors_temperatures() or {}).items():
                if entries:
                    temps[name] = entries[0].current
        except (AttributeError, OSError):
            pass
        return {
            "cpu_percent": psutil.cpu_percent(),
            "memory_percent": psutil.virtual_memory().percent,
            "temperatures": temps,
            "source": "psutil",
        }

    def close(self) -> None:
        pass


def system_stats() -> JetsonStats | PsutilStats:
    try:
        return JetsonStats()
    except Exception as exc:  # ImportError off a Jetson, JtopException when the service is not running
        log.info("jetson-stats unavailable (%s); telemetry from psutil", exc)
        return PsutilStats()
