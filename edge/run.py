"""`python -m edge run`: the streaming pipeline that runs in the Jetson container. SIGTERM (or
Ctrl-C) finishes the frame in flight, flushes the outbox, publishes `offline` and exits 0."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time

from common import bundle, protocol
from common.command import SubParsers
from common.mqtt import url
from common.options import add_config_flags, from_args
from common.signing import Verifier
from edge.classifier import Classifier
from edge.config import EdgeConfig
from edge.outbox import Outbox
from edge.pipeline import Pipeline, TelemetryReporter
from edge.preview import Preview
from edge.publisher import Publisher
from edge.sources import create as create_source
from edge.sources.capture import Capture
from edge.updates import ModelUpdater, remembered

log = logging.getLogger(__name__)

FLUSH_S = 10.0


def add_parser(subparsers: SubParsers) -> None:
    p = subparsers.add_parser("run", help="classify a camera's frames and publish them over MQTT")
    add_config_flags(p, EdgeConfig)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    stop = threading.Event()
    device = Device(from_args(EdgeConfig, args))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    device.operate(stop)
    return 0


class Device:
    """The device's parts wired together: bundle, backend, source, outbox, publisher, pipeline."""

    def __init__(self, cfg: EdgeConfig) -> None:
        self.cfg = cfg
        model = remembered(cfg.state_dir) or cfg.model
        if model != cfg.model:
            log.info("running %s, the model last updated to (not --model %s)", model, cfg.model)
        self.classifier = Classifier(bundle.load(model), cfg.backend)
        outbox = Outbox(cfg.state_dir / f"outbox-{cfg.device_id}.sqlite", cfg.outbox_max_messages, cfg.outbox_max_age_s)
        topics = protocol.Topics(cfg.prefix)
        self.publisher = Publisher(
            url.parse(cfg.broker, cfg.ca_file, cfg.cert_file),
            cfg.device_id,
            topics,
            outbox,
            self.status,
            cfg.keepalive_s,
        )
        self.capture = Capture(create_source(cfg.source), loop=cfg.loop)
        self.pipeline = Pipeline(cfg, self.classifier, self.capture, self.publisher)
        verifier = Verifier(cfg.trusted_key) if cfg.trusted_key else None
        self.updater = ModelUpdater(
            cfg.state_dir, cfg.backend, self._classifier, self._swap, self.publisher.announce, cfg.group, verifier
        )
        self.publisher.subscribe(topics.model(self.classifier.bundle.meta.name), self.updater.on_announcement)

    def _classifier(self) -> Classifier:
        return self.classifier

    def _swap(self, classifier: Classifier) -> None:
        self.classifier = classifier
        self.pipeline.swap(classifier)

    def status(self, state: str) -> protocol.Status:
        return protocol.Status(
            state=state,
            ts=time.time(),
            model=self.classifier.model_ref,
            backend=self.classifier.backend.name,
            group=self.cfg.group,
        )

    def operate(self, stop: threading.Event) -> None:
        """Classify and publish until `stop` is set or the source ends, then flush and say `offline`."""
        if self.cfg.preview_port is not None:
            self.pipeline.preview = Preview(self.cfg.preview_port)
        self.updater.start()
        self.publisher.start()
        self.capture.start()
        TelemetryReporter(self.pipeline, self.cfg.telemetry_interval_s, stop).start()
        log.info("running %s on %s with %s", self.classifier.bundle, self.capture.source, self.classifier.backend.name)
        try:
            self.pipeline.run(stop)
        finally:
            stop.set()
            self.updater.stop()
            self.capture.stop()
            self.publisher.stop(FLUSH_S)
            if self.pipeline.preview is not None:
                self.pipeline.preview.close()
        log.info("stopped: %s", self.pipeline.counts)
