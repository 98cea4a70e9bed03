"""The optional live preview (`--preview-port`): an MJPEG page of the frames with the current label
and score drawn on them, for whoever is pointing the camera. It shows what the camera sees, without a
password: it listens on loopback unless told otherwise (`--preview-host`; reach it through an SSH or
`kubectl port-forward` tunnel). Frames are encoded only while someone watches, at most MAX_FPS a
second, so the preview costs nothing when nobody looks. `/` shows every camera; `/camera/NAME` one."""

from __future__ import annotations

import logging
import threading
import time

import cv2
import numpy as np

from edge.httpd import Handler, serve

log = logging.getLogger(__name__)

MAX_FPS = 10
PAGE = """<!doctype html><html><head><title>edgeloop preview</title>
<style>body{margin:0;background:#111;color:#eee;font-family:sans-serif}figure{display:inline-block;margin:4px}
img{max-width:100vw;max-height:100vh}</style></head><body>%s</body></html>"""
FIGURE = '<figure><img src="/camera/%s/stream.mjpg" alt="camera %s"><figcaption>%s</figcaption></figure>'


class Feed:
    """One camera's newest labelled JPEG, encoded only while someone watches it."""

    def __init__(self) -> None:
        self.jpeg: bytes | None = None
        self.cond = threading.Condition()
        self.viewers = 0
        self.last = 0.0


class Preview:
    def __init__(self, cameras: list[str], port: int, host: str = "127.0.0.1") -> None:
        self._feeds = {name: Feed() for name in cameras}
        preview = self

        class PreviewHandler(Handler):
            def do_GET(self) -> None:
                parts = self.path.split("?")[0].strip("/").split("/")
                if parts == [""]:
                    preview._page(self, list(preview._feeds))
                elif len(parts) == 2 and parts[0] == "camera" and parts[1] in preview._feeds:
                    preview._page(self, [parts[1]])
                elif parts[2:] == ["stream.mjpg"] and parts[0] == "camera" and parts[1] in preview._feeds:
                    preview._stream(self, preview._feeds[parts[1]])
                else:
                    self.send_error(404)

        self.server = serve(host, port, PreviewHandler, "preview")
        self.port = self.server.server_address[1]

    def offer(self, camera: str, image: np.ndarray, label: str, score: float) -> None:
        """Called for every frame; cheap unless a viewer of this camera is connected and a frame is due."""
        feed = self._feeds[camera]
        now = time.monotonic()
        if not feed.viewers or now - feed.last < 1 / MAX_FPS:
            return
        feed.last = now
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        text = f"{label} {score:.2f}"
        cv2.putText(bgr, text, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(bgr, text, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2, cv2.LINE_AA)
        ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if ok:
            with feed.cond:
                feed.jpeg = jpeg.tobytes()
                feed.cond.notify_all()

    @staticmethod
    def _page(handler: Handler, cameras: list[str]) -> None:
        figures = "".join(FIGURE % (name, name, name) for name in cameras)  # names are ids: nothing to escape
        handler.send_common(200, "text/html", "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'")
        handler.end_headers()
        handler.wfile.write((PAGE % figures).encode())

    @staticmethod
    def _stream(handler: Handler, feed: Feed) -> None:
        handler.send_common(200, "multipart/x-mixed-replace; boundary=frame")
        handler.end_headers()
        with feed.cond:
            feed.viewers += 1
        try:
            while True:
                with feed.cond:
                    feed.cond.wait(5)
                    jpeg = feed.jpeg
                if jpeg is None:
                    continue
                head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                handler.wfile.write(head + jpeg + b"\r\n")
        except OSError:
            pass  # the viewer went away
        finally:
            with feed.cond:
                feed.viewers -= 1

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
