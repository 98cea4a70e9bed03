"""The optional live preview (`--preview-port`): an MJPEG page of the frames with the current label
and score drawn on them, for whoever is pointing the camera. It shows what the camera sees, without a
password: it listens on loopback unless told otherwise (`--preview-host`; reach it through an SSH or
`kubectl port-forward` tunnel). Frames are encoded only while someone watches, at most MAX_FPS a
second, so the preview costs nothing when nobody looks."""

from __future__ import annotations

import logging
import threading
import time

import cv2
import numpy as np

from edge.httpd import Handler, serve

log = logging.getLogger(__name__)

MAX_FPS = 10
PAGE = b"""<!doctype html><html><head><title>edgeloop preview</title>
<style>body{margin:0;background:#111;color:#eee;font-family:sans-serif}img{max-width:100vw;max-height:100vh}</style>
</head><body><img src="/stream.mjpg" alt="live preview"></body></html>"""


class Preview:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self._jpeg: bytes | None = None
        self._cond = threading.Condition()
        self._viewers = 0
        self._last = 0.0
        preview = self

        class PreviewHandler(Handler):
            def do_GET(self) -> None:
                if self.path == "/":
                    self.send_common(200, "text/html", "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'")
                    self.end_headers()
                    self.wfile.write(PAGE)
                elif self.path == "/stream.mjpg":
                    preview._stream(self)
                else:
                    self.send_error(404)

        self.server = serve(host, port, PreviewHandler, "preview")
        self.port = self.server.server_address[1]

    def offer(self, image: np.ndarray, label: str, score: float) -> None:
        """Called for every frame; cheap unless a viewer is connected and a frame is due."""
        now = time.monotonic()
        if not self._viewers or now - self._last < 1 / MAX_FPS:
            return
        self._last = now
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        text = f"{label} {score:.2f}"
        cv2.putText(bgr, text, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(bgr, text, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2, cv2.LINE_AA)
        ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if ok:
            with self._cond:
                self._jpeg = jpeg.tobytes()
                self._cond.notify_all()

    def _stream(self, handler: Handler) -> None:
        handler.send_common(200, "multipart/x-mixed-replace; boundary=frame")
        handler.end_headers()
        with self._cond:
            self._viewers += 1
        try:
            while True:
                with self._cond:
                    self._cond.wait(5)
                    jpeg = self._jpeg
                if jpeg is None:
                    continue
                head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                handler.wfile.write(head + jpeg + b"\r\n")
        except OSError:
            pass  # the viewer went away
        finally:
            with self._cond:
                self._viewers -= 1

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
