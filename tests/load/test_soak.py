"""A simulated fleet against one `python -m cloud serve`: hundreds of device clients in a few
processes publish predictions at QoS 1 for a while. The service's memory must stay flat, its lag
bounded, and every prediction must be stored exactly once. `make test` runs a short version;
`make soak` runs it for minutes. The figures are printed and kept in test-artifacts/soak.json."""

import json
import multiprocessing
import signal
import sqlite3
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from common import protocol
from tests.support.fleet import prediction
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.serve import metric, start_serve
from tests.support.waiting import wait_for

PROCESSES = 4
DEVICES_PER_PROCESS = 75  # 300 devices
RATE_HZ = 2.0  # predictions per second per device: 600/s for the fleet


def fleet_process(port: int, first: int, seconds: float, sent) -> None:
    """DEVICES_PER_PROCESS clients, each publishing RATE_HZ predictions a second with its own seq."""
    topics = protocol.Topics()
    clients = []
    for i in range(first, first + DEVICES_PER_PROCESS):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"soak-{i}", protocol=mqtt.MQTTv5)
        c.connect("127.0.0.1", port)
        c.loop_start()
        clients.append((f"soak-{i}", c, []))
    start, seq = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        seq += 1
        for device, client, infos in clients:
            infos.append(client.publish(topics.predictions(device), prediction(device, seq), qos=1))
        time.sleep(max(0.0, start + seq / RATE_HZ - time.monotonic()))
    for _, client, infos in clients:
        for info in infos:
            info.wait_for_publish(60)
        client.disconnect()
        client.loop_stop()
    sent.value = seq


def lag(port: int) -> tuple[float, float]:
    """The ingest lag histogram's sum and count so far."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    found = dict(line.split() for line in text.splitlines() if line.startswith("edgeloop_ingest_lag_seconds_"))
    return float(found["edgeloop_ingest_lag_seconds_sum"]), float(found["edgeloop_ingest_lag_seconds_count"])


@pytest.mark.parametrize(
    "seconds", [pytest.param(20, id="short"), pytest.param(300, id="long", marks=pytest.mark.soak)]
)
def test_a_fleet_for_minutes_memory_flat_lag_bounded_nothing_lost(broker, tmp_path: Path, seconds: int) -> None:
    db_file, port = tmp_path / "db.sqlite", free_port()
    serve = start_serve(broker, f"sqlite:///{db_file}", tmp_path / "data", port, "--no-train")
    try:
        wait_for(lambda: metric(port, "stored") >= 0, 60, "the service", interval_s=0.3)
        ctx = multiprocessing.get_context("spawn")
        sent = [ctx.Value("q", 0) for _ in range(PROCESSES)]
        fleet = [ctx.Process(target=fleet_process, args=(broker.port, i * DEVICES_PER_PROCESS, seconds, sent[i]))
                 for i in range(PROCESSES)]  # fmt: skip
        for p in fleet:
            p.start()
        service, samples = psutil.Process(serve.pid), []
        started, before = time.monotonic(), lag(port)
        while any(p.is_alive() for p in fleet):
            time.sleep(2)
            now = lag(port)  # the mean lag of the predictions stored in the last 2 s
            mean = (now[0] - before[0]) / max(now[1] - before[1], 1)
            samples.append((time.monotonic() - started, service.memory_info().rss / 2**20, mean))
            before = now
        for p in fleet:
            p.join()
        expected = sum(v.value for v in sent) * DEVICES_PER_PROCESS
        wait_for(lambda: metric(port, "stored") >= expected, 120, "every prediction stored")
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)
    with sqlite3.connect(db_file) as conn:
        rows, distinct = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT device_id || ':' || seq) FROM predictions"
        ).fetchone()
    warm = [rss for t, rss, _ in samples if t >= min(10, seconds / 2)]
    figures = {
        "devices": PROCESSES * DEVICES_PER_PROCESS, "seconds": seconds, "sent": expected, "stored": rows,
        "lost": expected - distinct, "duplicated": rows - distinct, "max_lag_s": round(max(s[2] for s in samples), 2),
        "rss_mb_after_warmup": round(warm[0], 1), "rss_mb_end": round(warm[-1], 1), "rss_mb_max": round(max(warm), 1),
        "rss_mb_each_minute": [round(rss, 1) for t, rss, _ in samples if t // 60 > (t - 2) // 60],
    }  # fmt: skip
    print(json.dumps(figures))
    (ROOT / "test-artifacts").mkdir(exist_ok=True)
    (ROOT / "test-artifacts" / f"soak-{seconds}s.json").write_text(json.dumps(figures, indent=1))
    assert (figures["lost"], figures["duplicated"]) == (0, 0)
    assert figures["max_lag_s"] < 10, "the service keeps up with the fleet"
    assert figures["rss_mb_max"] < figures["rss_mb_after_warmup"] * 1.5 + 20, "memory stays flat"
