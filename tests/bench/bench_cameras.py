"""Benchmark: N cameras in one `python -m edge run` against N single-camera processes (N = 1, 2, 4).

Each camera is a 640x480 video: unpaced (the file itself, read as fast as the device takes frames) or
paced at 30 fps as a camera delivers (the same frames as MJPEG over HTTP, a live source that drops
what the device does not take in time). MobileNet 0.25 at 224 on TFLite, every prediction published to
a real Mosquitto. Figures over a window after every process classifies (from the devices' telemetry):
total fps, capture-to-publish p99, frames dropped, and the processes' RSS and PSS. Also the TFLite
backend's choice, measured: 4 frames in turn against one call at batch 4.
Targets: 4 cameras in one process <= 0.5x the memory of 4 processes and >= 1.0x their total unpaced
fps; 4 cameras paced at 30 fps classified with no frame dropped.

    .venv/bin/python tests/bench/bench_cameras.py [--cameras 1,2,4] [--window-s 15]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402

from cloud.retrain.config import RetrainConfig  # noqa: E402
from cloud.retrain.train import retrain  # noqa: E402
from common import bundle  # noqa: E402
from tests.support.broker import Mosquitto, Recorder  # noqa: E402
from tests.support.camera import Camera  # noqa: E402
from tests.support.data import write_dataset, write_video  # noqa: E402
from tests.support.keys import registry_keys  # noqa: E402
from tests.support.shared import MOBILENET_025_224  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402


def make_bundle(tmp: Path) -> Path:
    weights = str(MOBILENET_025_224) if MOBILENET_025_224.exists() else "none"
    retrain(
        RetrainConfig(
            image_dir=write_dataset(tmp / "images", per_label=20),
            output_dir=tmp / "bundle",
            bottleneck_dir=tmp / "bn",
            architecture="mobilenet_0.25_224",
            weights=weights,
            how_many_training_steps=50,
        )
    )
    return tmp / "bundle"


def serve_paced(video: Path) -> str:
    """The video's frames as an MJPEG camera at 30 fps (tests/support/camera.py), a stream per connection."""
    cap, jpegs = cv2.VideoCapture(str(video)), []
    while (read := cap.read())[0]:
        jpegs.append(cv2.imencode(".jpg", read[1])[1].tobytes())
    Camera.jpegs = jpegs
    server = ThreadingHTTPServer(("127.0.0.1", 0), Camera)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"


def tflite_batching(model: Path, repeats: int = 100) -> dict[str, float]:
    """ms for 4 frames: one invoke at batch 4 (interpreter resized once) against 4 invokes at batch 1."""
    from edge.backends.tflite import Interpreter

    data = bundle.load(model).read(bundle.TFLITE)
    meta = bundle.load(model).meta.input
    frames = np.random.default_rng(0).integers(0, 255, (4, meta.height, meta.width, 3), np.uint8)
    result = {}
    for batch in (4, 1):
        interpreter = Interpreter(model_content=data, num_threads=os.cpu_count())
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, [batch, meta.height, meta.width, 3])
        interpreter.allocate_tensors()
        chunks = [frames[i : i + batch] for i in range(0, 4, batch)]
        for _ in range(5):
            interpreter.set_tensor(index, chunks[0])
            interpreter.invoke()
        start = time.perf_counter()
        for _ in range(repeats):
            for chunk in chunks:
                interpreter.set_tensor(index, chunk)
                interpreter.invoke()
        result[f"batch{batch}_x{4 // batch}_ms"] = round((time.perf_counter() - start) / repeats * 1000, 2)
    return result


def edge(model: Path, broker: Mosquitto, device: str, sources: list[str], state: Path, paced: bool) -> subprocess.Popen:
    args = ["--model", model, "--broker", broker.url, "--device-id", device, "--state-dir", state]
    args += ["--trusted-key", registry_keys()[1], "--telemetry-interval-s", "1", "--backend", "tflite"]
    args += ["--sample-threshold", "0", "--sample-random-share", "0", "--sample-random-max", "0"]
    args += [] if paced else ["--loop"]
    for source in sources:
        args += ["--source", source]
    command = [sys.executable, "-m", "edge", "run", *map(str, args)]
    return subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)


def telemetry(recorder: Recorder, device: str) -> dict | None:
    messages = recorder.on(f"/devices/{device}/telemetry")
    return json.loads(messages[-1].payload) if messages else None


def measure(model: Path, tmp: Path, n: int, one_process: bool, sources: list[str], window_s: float) -> dict:
    broker = Mosquitto(tmp / f"broker-{n}-{one_process}-{sources[0][:4]}").start()
    recorder = Recorder(broker.url, "edgeloop/+/+/telemetry", "bench-recorder")
    paced = sources[0].startswith("http")
    groups = [sources[:n]] if one_process else [[s] for s in sources[:n]]
    devices = [f"dev-{i}" for i in range(len(groups))]
    procs = [
        edge(model, broker, d, g, tmp / f"state-{d}-{n}-{one_process}-{paced}", paced)
        for d, g in zip(devices, groups, strict=True)
    ]
    try:
        ready = lambda: all((t := telemetry(recorder, d)) and t["frames"]["processed"] > 0 for d in devices)  # noqa: E731
        wait_for(ready, 180, "every device to classify")
        time.sleep(2)  # past the first frames
        before = {d: telemetry(recorder, d) for d in devices}
        time.sleep(window_s)
        after = {d: telemetry(recorder, d) for d in devices}
        memory = [psutil.Process(p.pid).memory_full_info() for p in procs]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        recorder.close()
        broker.stop()

    def delta(key: str) -> int:
        return sum(after[d]["frames"][key] - before[d]["frames"][key] for d in devices)

    span = [after[d]["ts"] - before[d]["ts"] for d in devices]
    return {
        "cameras": n,
        "processes": len(procs),
        "paced": paced,
        "fps": round(delta("processed") / (sum(span) / len(span)), 1),
        "dropped": delta("dropped"),
        "capture_to_publish_p99_ms": max(after[d]["latency_ms"]["total_p99"] for d in devices),
        "rss_mib": round(sum(m.rss for m in memory) / 2**20, 1),
        "pss_mib": round(sum(m.pss for m in memory) / 2**20, 1),
        "batches": delta("batches"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", default="1,2,4")
    parser.add_argument("--window-s", type=float, default=15)
    args = parser.parse_args()
    counts = [int(n) for n in args.cameras.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = make_bundle(tmp)
        batching = tflite_batching(model)
        print(json.dumps({"tflite_4_frames": batching}), flush=True)
        videos = [str(write_video(tmp / f"cam{i}.avi", frames=300, seed=i)) for i in range(max(counts))]
        paced = [serve_paced(Path(videos[0]))] * len(videos)
        for sources in (videos, paced):
            for n in counts:
                for one_process in (True, False) if n > 1 else (True,):
                    rows.append(measure(model, tmp, n, one_process, sources, args.window_s))
                    print(json.dumps(rows[-1]), flush=True)
    four = {(r["processes"], r["paced"]): r for r in rows if r["cameras"] == 4}
    if (1, False) in four and (4, False) in four:
        one, many = four[(1, False)], four[(4, False)]
        print(
            f"4 cameras unpaced: one process {one['fps']} fps, {one['rss_mib']} MiB RSS; 4 processes {many['fps']} "
            f"fps, {many['rss_mib']} MiB: memory {one['rss_mib'] / many['rss_mib']:.2f}x (target <= 0.5), "
            f"fps {one['fps'] / many['fps']:.2f}x (target >= 1.0); paced, one process: "
            f"{four.get((1, True), {}).get('dropped')} dropped (target 0)"
        )


if __name__ == "__main__":
    main()
