"""The GStreamer pipelines that use a Jetson's own hardware, as jetson-inference and NVIDIA's
samples write them: the CSI camera through nvarguscamerasrc, and RTSP decoded by nvv4l2decoder (the
NVDEC engine) instead of FFmpeg on the CPU. Both need an OpenCV built with GStreamer (the Jetson
image's)."""

from __future__ import annotations

import functools
from pathlib import Path

import cv2

#: nvvidconv's flip-method: 0 none, 1 a quarter turn anticlockwise, 2 a half turn, 3 a quarter turn clockwise,
#: 4 mirrored left to right, 5 along the upper-right diagonal, 6 upside down, 7 along the upper-left diagonal.
FLIPS = (0, 7)
TO_BGR = "video/x-raw, format=(string)BGRx ! videoconvert ! video/x-raw, format=(string)BGR"
SINK = "appsink drop=true max-buffers=1"
RTSP_LATENCY_MS = 200
JETSON_RELEASE = Path("/etc/nv_tegra_release")  # L4T's release file, on the board and in its containers


@functools.cache
def available() -> bool:
    """Whether this OpenCV can open GStreamer pipelines."""
    return any(
        line.split(":")[0].strip() == "GStreamer" and "YES" in line for line in cv2.getBuildInformation().splitlines()
    )


def on_jetson() -> bool:
    return JETSON_RELEASE.exists()


def csi_pipeline(sensor_id: int, width: int = 1280, height: int = 720, fps: int = 30, flip: int = 0) -> str:
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM), width=(int){width}, height=(int){height}, framerate=(fraction){fps}/1 ! "
        f"nvvidconv flip-method={flip} ! {TO_BGR} ! {SINK}"
    )


def rtsp_pipelines(uri: str) -> list[str]:
    """One pipeline per codec a camera commonly streams, H.264 first; it holds the URI's credentials,
    so it is never logged."""
    location = uri.replace("\\", "\\\\").replace('"', '\\"')
    return [
        f'rtspsrc location="{location}" latency={RTSP_LATENCY_MS} ! rtp{codec}depay ! {codec}parse ! '
        f"nvv4l2decoder ! nvvidconv ! {TO_BGR} ! {SINK}"
        for codec in ("h264", "h265")
    ]
