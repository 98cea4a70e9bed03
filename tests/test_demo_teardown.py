"""The demo's Ctrl-C (scripts/processes.sh, which scripts/demo.sh sources): a real process tree, a real
broker; the device is stopped first, while its broker is still there, and everything is gone within 5 s,
even a service that ignores SIGTERM."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.services

STOP_WAIT_S = 2

DEVICE = """
import signal, socket, sys, time
port, log = int(sys.argv[1]), sys.argv[2]

def stop(signum, frame):
    time.sleep(0.3)  # a flush: a broker stopped at the same time would be gone by now
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        seen = "broker up"
    except OSError:
        seen = "broker gone"
    open(log, "a").write(f"device stopped by {signal.Signals(signum).name}, {seen}\\n")
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)  # as edge run and cloud serve do
open(log, "a").write("device running\\n")
while True:
    time.sleep(0.05)
"""

SCRIPT = """
set -euo pipefail
source scripts/processes.sh
trap stop_all EXIT
trap 'exit 130' INT TERM
start mosquitto -p "$PORT" >/dev/null 2>&1
start bash -c 'trap "" TERM; while :; do sleep 0.05; done'
start "$PYTHON" -c "$DEVICE" "$PORT" "$LOG"
echo "${pids[*]}" >"$PIDS"
wait "${pids[@]}"
"""


def test_ctrl_c_stops_the_device_before_its_broker_and_everything_within_5_s(tmp_path: Path) -> None:
    port, log, pids = free_port(), tmp_path / "log", tmp_path / "pids"
    env = {**os.environ, "PORT": str(port), "LOG": str(log), "PIDS": str(pids), "PYTHON": sys.executable,
           "DEVICE": DEVICE, "STOP_WAIT_S": str(STOP_WAIT_S)}  # fmt: skip
    demo = subprocess.Popen(["bash", "-c", SCRIPT], cwd=ROOT, env=env, start_new_session=True)
    try:
        wait_for(lambda: log.exists() and pids.exists() and pids.read_text().strip(), 20, "the services")
        wait_for(lambda: subprocess.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"]).returncode == 0, 20,
                 "the broker")  # fmt: skip
        sent = time.monotonic()
        os.killpg(demo.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
        assert demo.wait(10) == 130
        took = time.monotonic() - sent
    finally:
        demo.kill()
    assert log.read_text().splitlines() == ["device running", "device stopped by SIGTERM, broker up"]
    assert took < 5, f"{took:.1f} s to stop"
    assert took >= STOP_WAIT_S - 0.5, "the service that ignores SIGTERM was waited for, then killed"
    for pid in map(int, pids.read_text().split()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
