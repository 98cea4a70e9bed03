"""A real RTSP camera for the tests: serves an H.264 .mp4 in a loop at rtsp://127.0.0.1:PORT/live.
Run by the system Python (/usr/bin/python3), which has GStreamer's RTSP server bindings."""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
video, port = sys.argv[1], sys.argv[2]
server = GstRtspServer.RTSPServer()
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(f"( multifilesrc location={video} loop=true ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 )")
factory.set_shared(True)
server.get_mount_points().add_factory("/live", factory)
server.attach(None)
print("ready", flush=True)
GLib.MainLoop().run()
