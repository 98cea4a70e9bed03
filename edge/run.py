"""`python -m edge run`: the streaming pipeline that runs in the Jetson container. SIGTERM (or
Ctrl-C) finishes the frame in flight, flushes the outbox, publishes `offline` and exits 0."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from pathlib import Path

from edge import bundle, protocol
from edge.classifier import Classifier
from edge.command import SubParsers
from edge.config import EdgeConfig
from edge.flags import add_model_flags, build, read_yaml
from edge.mqtt import url
from edge.outbox import Outbox
from edge.pipeline import Pipeline, TelemetryLoop
from edge.publisher import Publisher
from edge.sources import create as create_source
from edge.sources.capture import Capture

log = logging.getLogger(__name__)

FLUSH_S = 10.0


def add_parser(subparsers: SubParsers) -> None:
    p = subparsers.add_parser("run", help="classify a camera's frames and publish them over MQTT")
    p.add_argument("--config", type=Path, help="YAML file of these options (either spelling); flags override it")
    add_model_flags(p, EdgeConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = {k: v for k, v in vars(args).items() if k in EdgeConfig.model_fields}
    cfg = build(EdgeConfig, read_yaml(args.config) if args.config else {}, options)
    return serve(cfg)


def serve(cfg: EdgeConfig, stop: threading.Event | None = None) -> int:
    stop = stop or threading.Event()
    classifier = Classifier(bundle.load(cfg.model), cfg.backend)
    topics = protocol.Topics(cfg.prefix)

    def status(state: str) -> protocol.Status:
        meta = classifier.bundle.meta
        return protocol.Status(
            state=state,
            ts=time.time(),
            model=protocol.ModelRef(name=meta.name, version=meta.version),
            backend=classifier.backend.name,
        )

    outbox = Outbox(cfg.state_dir / f"outbox-{cfg.device_id}.sqlite", cfg.outbox_max_messages, cfg.outbox_max_age_s)
    publisher = Publisher(url.parse(cfg.broker), cfg.device_id, topics, outbox, status, cfg.ca_file, cfg.keepalive_s)
    capture = Capture(create_source(cfg.source), loop=cfg.loop)
    pipeline = Pipeline(cfg, classifier, capture, publisher)
    for signum in (signal.SIGTERM, signal.SIGINT):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signum, lambda *_: stop.set())
    publisher.start()
    capture.start()
    TelemetryLoop(pipeline, cfg.telemetry_interval_s, stop).start()
    log.info("running %s on %s with %s", classifier.bundle, capture.source, classifier.backend.name)
    try:
        pipeline.run(stop)
    finally:
        stop.set()
        capture.stop()
        publisher.stop(FLUSH_S)
    log.info("stopped: %s", pipeline.counts)
    return 0
