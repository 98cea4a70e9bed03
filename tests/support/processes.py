"""Stopping the services a test started, as an operator would: SIGTERM, then wait for a clean exit."""

import signal
import subprocess


def terminate(*processes: subprocess.Popen | None, timeout_s: float = 30) -> None:
    """SIGTERM each process that was started (None: it never was), in order, and wait for each."""
    for process in processes:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout_s)
