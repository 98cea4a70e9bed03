"""`python -m edge run`: the streaming pipeline that runs in the Jetson container. SIGTERM (or
Ctrl-C) finishes the frame in flight, flushes the outbox while the broker is there (FLUSH_S at
most), publishes `offline` and exits 0 within 10 s; before the model has loaded, SIGTERM's default
action ends the process at once (nothing is queued yet, and a model's loading cannot be cut short)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time

from common import bundle, protocol
from common.command import SubParsers
from common.errors import ConfigError
from common.mqtt import url
from common.options import add_config_flags, from_args
from common.signing import Verifier
from edge.announcements import Gate
from edge.batching import Packer
from edge.cameras import Camera
from edge.classifier import Classifier
from edge.config import EdgeConfig
from edge.frame_collector import Collector
from edge.health import Health
from edge.outbox import Outbox
from edge.pipeline import Pipeline, TelemetryReporter
from edge.preview import Preview
from edge.publisher import Publisher
from edge.sources import create as create_source
from edge.updates import ModelUpdater, remembered

log = logging.getLogger(__name__)

# Out within 10 s of SIGTERM, whatever the state: cameras, the flush and paho's thread each get a share
# (a download or a model loading in the updater's daemon thread is abandoned). What is not sent stays in the outbox.
CAPTURE_STOP_S = 2.0
FLUSH_S = 4.0


def add_parser(subparsers: SubParsers) -> None:
    p = subparsers.add_parser("run", help="classify cameras' frames and publish them over MQTT")
    add_config_flags(p, EdgeConfig)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    stop = threading.Event()
    device = Device(from_args(EdgeConfig, args))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    device.operate(stop)
    return 0


def _startup_classifier(cfg: EdgeConfig) -> Classifier:
    """The model last updated to, else --model. One that this device refuses at load (accepted by an
    older device before its checks grew) is logged and passed over: the device runs --model."""
    model = remembered(cfg.state_dir)
    if model is not None and model != cfg.model:
        try:
            classifier = Classifier(bundle.load(model), cfg.backend)
        except bundle.BundleError as exc:
            log.error("not running %s, the model last updated to: %s", model, exc)
        else:
            log.info("running %s, the model last updated to (not --model %s)", model, cfg.model)
            return classifier
    return Classifier(bundle.load(cfg.model), cfg.backend)


def trust(cfg: EdgeConfig) -> Verifier | None:
    """What verifies model announcements: the trusted key, or, only when told so, nothing."""
    if cfg.allow_unsigned_models:
        if cfg.model_origin is None:
            raise ConfigError("--allow-unsigned-models needs --model-origin: the only place bundles may come from")
        log.warning(
            "INSECURE: --allow-unsigned-models: anyone who can publish on the broker can make this device download "
            "and run a bundle of theirs from %s", cfg.model_origin,
        )  # fmt: skip
    elif cfg.trusted_key is None:
        raise ConfigError(
            "model updates run code on this device: give --trusted-key (the registry's public key, from "
            "python -m cloud keygen) or, insecurely, --allow-unsigned-models"
        )
    return Verifier(cfg.trusted_key) if cfg.trusted_key else None


class Device:
    """The device's parts wired together: one bundle and backend, a capture per camera, one outbox, one
    publisher (one MQTT connection), one pipeline batching the cameras' frames."""

    def __init__(self, cfg: EdgeConfig) -> None:
        self.cfg = cfg
        # usage errors (a missing key, a bad broker URL, a source no scheme handles) are said before the
        # model loads: a first TensorRT build takes minutes
        verifier = trust(cfg)
        address = url.parse(cfg.broker, cfg.ca_file, cfg.cert_file)
        sources = [(name, create_source(uri)) for name, uri in cfg.cameras]
        self.classifier = _startup_classifier(cfg)
        outbox = Outbox(cfg.state_dir / f"outbox-{cfg.device_id}.sqlite", cfg.outbox_max_messages, cfg.outbox_max_age_s)
        topics = protocol.Topics(cfg.prefix)
        self.publisher = Publisher(
            address,
            cfg.device_id,
            topics,
            outbox,
            self.status,
            cfg.keepalive_s,
            Packer(cfg.device_id, cfg.batch_max_predictions, cfg.batch_max_delay_ms / 1000),
        )
        self.collector = Collector(cfg.camera_wait_ms / 1000, self.classifier.size)
        several = len(cfg.cameras) > 1
        self.cameras = [
            Camera(name, self.collector.add(source, cfg.loop, name), cfg, on_wire=several) for name, source in sources
        ]
        self.pipeline = Pipeline(cfg, self.classifier, self.cameras, self.collector, self.publisher)
        gate = Gate(cfg.state_dir, verifier, cfg.allow_unsigned_models)
        self.updater = ModelUpdater(
            cfg.state_dir, cfg.backend, self._classifier, self._swap, self.publisher.announce, gate, cfg.group,
            cfg.model_origin,
        )  # fmt: skip
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
        cfg = self.cfg
        if cfg.preview_port is not None:
            self.pipeline.preview = Preview([c.name for c in self.cameras], cfg.preview_port, cfg.preview_host)
        health = None
        if cfg.health_port is not None:
            health = Health(self.pipeline, cfg.health_stall_s, cfg.health_port, cfg.health_host)
        self.updater.start()
        self.publisher.start()
        for camera in self.cameras:
            camera.capture.start()
        TelemetryReporter(self.pipeline, self.cfg.telemetry_interval_s, stop, self.updater.figures).start()
        sources = ", ".join(f"{c.name}: {c.capture.source}" for c in self.cameras)
        log.info("running %s on %s with %s", self.classifier.bundle, sources, self.classifier.backend.name)
        try:
            self.pipeline.run(stop)
        finally:
            told = stop.is_set()  # by a signal: no waiting for a broker that is not there; at a file's end, a while
            stop.set()
            self.updater.stop()
            cameras_stopped = time.monotonic() + CAPTURE_STOP_S
            for camera in self.cameras:
                camera.capture.stop(max(0.0, cameras_stopped - time.monotonic()))
            self.publisher.stop(FLUSH_S, wait_for_broker=not told)
            if self.pipeline.preview is not None:
                self.pipeline.preview.close()
            if health is not None:
                health.close()
        log.info("stopped: %s", self.pipeline.counts)
