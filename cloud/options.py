"""The cloud commands' options: those every command that touches the fleet shares (where the broker,
the store and the data directory are, and the URL devices download bundles from), and `serve`'s.
Plain options, importing none of the parts they configure: cloud/service.py turns them into the
parts and their policies."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from common import protocol
from common.mqtt import url
from common.options import Options
from common.signing import Signer

QueueOrder = Literal["newest", "random", "uncertainty", "diversity", "hybrid"]
DEFAULT_QUEUE_ORDER: QueueOrder = "hybrid"
DEFAULT_QUEUE_POOL = 2000

# What one device may cost the fleet: a sample's size, its rate and the disk its unlabelled samples take (devices
# send 30 a minute by default, mostly tens of KB), and the bytes of samples being checked at once.
DEFAULT_SAMPLE_MAX_KIB = 4096
DEFAULT_SAMPLE_MAX_SIDE = 4096
DEFAULT_SAMPLE_RATE_PER_MIN = 60.0
DEFAULT_SAMPLE_QUOTA_MIB = 1024.0
DEFAULT_SAMPLE_IN_FLIGHT_MIB = 64

# Raw predictions: a week, what dashboards and brokers commonly keep of raw data, and far beyond any window the
# service reads from them; minute rollups (charts, drift, long windows): a year and a month, for year-on-year.
DEFAULT_RETAIN_DAYS = 7.0
DEFAULT_ROLLUP_RETAIN_DAYS = 400.0
RETAIN_MARGIN_S = 3600.0  # raw rows outlive the longest window read from them by at least this
DEFAULT_HTTP_PORT = 8080
DEFAULT_PUBLIC_URL = f"http://localhost:{DEFAULT_HTTP_PORT}"  # serve's defaults, for the commands without its flags
WILDCARDS = ("", "0.0.0.0", "::")


def listening_url(host: str, port: int) -> str:
    """The URL of an HTTP server bound to `host:port`: a wildcard address is this machine's name."""
    if host in WILDCARDS:
        host = socket.getfqdn()
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a name
    return f"http://{host}:{port}"


class CloudOptions(Options):
    broker: str = Field("mqtt://localhost:1883", description="mqtt://[user@]host[:port] or mqtts://…")
    ca_file: Path | None = Field(None, description="CA certificate for mqtts:// (default: the system's)")
    cert_file: Path | None = Field(
        None, description="the service's client certificate and key (PEM, one file) for a broker that asks for one"
    )
    db: str = Field("sqlite:///edgeloop-data/edgeloop.db", description="sqlite:///path or postgresql://…")
    data_dir: Path = Field(Path("edgeloop-data"), description="datasets, samples, models, bottlenecks")
    prefix: str = Field(protocol.DEFAULT_PREFIX, description="topic prefix")
    signing_key: Path | None = Field(
        None, description="Ed25519 private key (PEM) that signs model announcements (python -m cloud keygen)"
    )
    public_url: str | None = Field(
        None,
        description="the service's URL as devices reach it: announcements point there (default: serve's "
        "http://<http-host>:<http-port>, the machine's name for a wildcard host; other commands: "
        f"{DEFAULT_PUBLIC_URL})",
    )
    announcement_lifetime_days: float = Field(
        30, gt=0, description="devices refuse an announcement older than this; serve signs it anew every half of it"
    )

    def signer(self) -> Signer | None:
        return Signer(self.signing_key) if self.signing_key else None

    @property
    def download_url(self) -> str:
        """--public-url, or where the service listens: a default port that nobody listens on would
        send every device's download to nowhere."""
        return self.public_url or self._listening_url()

    def _listening_url(self) -> str:
        return DEFAULT_PUBLIC_URL

    @property
    def announcement_lifetime_s(self) -> float:
        return self.announcement_lifetime_days * 86400

    def broker_address(self) -> url.BrokerAddress:
        return url.parse(self.broker, self.ca_file, self.cert_file)


class ServeConfig(CloudOptions):
    http_port: int = Field(DEFAULT_HTTP_PORT, ge=0, le=65535, description="HTTP API and dashboard")
    http_host: str = Field(
        "127.0.0.1",
        description="address the HTTP server listens on; beyond loopback only with an API token "
        "(EDGELOOP_API_TOKEN) or --insecure-open-api",
    )
    insecure_open_api: bool = Field(
        False,
        description="listen beyond loopback without an API token: whoever reaches the port reads the cameras' "
        "samples, labels them into the training data and starts trainings (logged as a warning)",
    )
    protect_reads: bool = Field(
        True,
        description="with an API token, reads take it too (the API, sample pictures, job logs, /metrics); "
        "the dashboard's page, /healthz, /readyz and deployable bundles stay open",
    )
    group: str | None = Field(None, description="share the fleet's load with other instances of this group")
    client_id: str = Field("edgeloop-aggregator", description="MQTT client id: one per instance, stable")
    train: bool = Field(True, description="run triggers and trainings in this instance (one per fleet is enough)")
    train_new_models: bool = Field(True, description="train a model whose dataset has never been trained")
    retrain_every_h: float | None = Field(None, gt=0, description="periodic trigger: hours between trainings")
    retrain_after_labels: int | None = Field(50, ge=1, description="data trigger: new labelled samples")
    retrain_below_confidence: float | None = Field(
        None, gt=0, le=1, description="drift trigger: the fleet's mean top-1 score under this"
    )
    retrain_above_drift: float | None = Field(
        None, gt=0, le=1, description="drift trigger: a device's label distribution drift above this"
    )
    trigger_window_s: float = Field(3600, gt=0, description="window the drift triggers look at")
    trigger_interval_s: float = Field(30, gt=0, description="seconds between trigger evaluations")
    gate_margin: float = Field(
        0.0, ge=0, le=1, description="a candidate may be this much less accurate on all test images and pass"
    )
    gate_field_images: int = Field(
        30, ge=1, description="field test images needed before the gate judges the field first, by a paired test"
    )
    gate_seed_margin: float = Field(
        0.05, ge=0, le=1, description="seed accuracy a candidate significantly better on the field may give up"
    )
    gate_alpha: float = Field(0.05, gt=0, lt=1, description="significance level of the gate's paired test")
    canary_groups: list[str] | None = Field(None, description="announce a new version to these device groups first")
    canary_widen: bool = Field(True, description="widen a canary to the fleet once its devices run it")
    queue_order: QueueOrder = Field(
        DEFAULT_QUEUE_ORDER,
        description="the labelling queue's order when a request names none: newest, or a selection strategy "
        "over the promoted model's embeddings and probabilities, near-duplicates collapsed",
    )
    queue_pool: int = Field(
        DEFAULT_QUEUE_POOL,
        ge=1,
        description="a strategy orders at most this many of a model's newest unlabelled samples",
    )
    metrics_window_s: float = Field(
        300.0, gt=0, description="window of the label drift gauge of /metrics, and of /api/devices by default"
    )
    homeassistant_discovery: bool = Field(
        False,
        description="publish Home Assistant MQTT discovery: a Home Assistant device per edge device, with sensors "
        "for its state, last label, fps and confidence (one instance per fleet is enough)",
    )
    homeassistant_prefix: str = Field(
        protocol.DEFAULT_DISCOVERY_PREFIX,
        pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$",
        description="Home Assistant's discovery prefix (its MQTT integration's setting)",
    )
    homeassistant_interval_s: float = Field(
        10.0, gt=0, description="a device's Home Assistant state is published when it changes, at most this often"
    )
    sample_max_kib: int = Field(DEFAULT_SAMPLE_MAX_KIB, ge=1, description="a sample's JPEG may be this large")
    sample_max_side: int = Field(
        DEFAULT_SAMPLE_MAX_SIDE, ge=1, description="pixels a side a sample may declare, checked before decoding"
    )
    sample_rate_per_min: float | None = Field(
        DEFAULT_SAMPLE_RATE_PER_MIN,
        gt=0,
        description="samples a minute one device may send (a minute's burst); off: no limit",
    )
    sample_quota_mib: float | None = Field(
        DEFAULT_SAMPLE_QUOTA_MIB, gt=0, description="disk one device's unlabelled samples may take; off: no quota"
    )
    sample_in_flight_mib: int = Field(
        DEFAULT_SAMPLE_IN_FLIGHT_MIB,
        ge=1,
        description="samples received and not yet stored; past it, samples are dropped (predictions never are)",
    )
    sample_retain_days: float | None = Field(
        14.0,
        gt=0,
        description="unlabelled and discarded samples are deleted this long after they arrived "
        "(labelled ones are training data and kept); off: kept forever",
    )

    retain_days: float | None = Field(
        DEFAULT_RETAIN_DAYS,
        gt=0,
        description="raw predictions are deleted this long after their capture (on PostgreSQL a day at a time), "
        "and older ones arriving are refused as too_old; counters and rollups keep them; off: kept forever",
    )
    rollup_retain_days: float | None = Field(
        DEFAULT_ROLLUP_RETAIN_DAYS,
        gt=0,
        description="the per-minute rollups behind windows, charts and drift are kept this long (at least "
        "--retain-days, if both are on); off: kept forever",
    )

    @field_validator(
        "sample_rate_per_min", "sample_quota_mib", "sample_retain_days", "retain_days", "rollup_retain_days",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _off(cls, value: object) -> object:
        return None if isinstance(value, str) and value.lower() in ("off", "none", "null") else value

    @model_validator(mode="after")
    def _retention_outlives_windows(self) -> ServeConfig:
        """Windows read raw rows (drift triggers, /metrics, a window's histogram): they must still be there."""
        longest = max(self.trigger_window_s, self.metrics_window_s)
        if self.retain_days is not None and self.retain_days * 86400 < longest + RETAIN_MARGIN_S:
            raise ValueError(
                f"--retain-days {self.retain_days:g} keeps raw predictions less than the longest window read "
                f"from them ({longest:g} s) plus {RETAIN_MARGIN_S:g} s"
            )
        raw, rollups = self.retain_days, self.rollup_retain_days
        if raw is not None and rollups is not None and rollups < raw:
            raise ValueError("--rollup-retain-days must be at least --retain-days")
        return self

    def _listening_url(self) -> str:
        return listening_url(self.http_host, self.http_port)

    @field_validator("canary_groups", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return [g.strip() for g in value.split(",") if g.strip()] or None if isinstance(value, str) else value

    @field_validator("canary_groups")
    @classmethod
    def _valid_groups(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [protocol.check_id(g, "group") for g in value]
