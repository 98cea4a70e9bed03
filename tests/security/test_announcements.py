"""Attacks on model announcements, against a real Mosquitto and a real `python -m edge run` that trusts
the tests' registry key and downloads bundles only from one origin: whoever can publish on the broker
cannot make the device fetch or run a bundle (unsigned, signed by another key, a canary widened by
stripping its groups, an older announcement replayed, a URL off the origin or redirected off it), and
what a server answered never reaches the device's status. A signed rollout and a signed rollback
still reach the device. One device serves the module's tests, in order."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from common import bundle, signing
from edge.config import EdgeConfig
from edge.run import trust
from tests.support.broker import Mosquitto, Recorder
from tests.support.bundle_server import MARKER, BundleServer
from tests.support.cli import run_cli
from tests.support.data import write_video
from tests.support.device import start_edge, versions
from tests.support.keys import registry_keys
from tests.support.processes import terminate
from tests.support.updates import announce, announcement, publish, version_of
from tests.support.waiting import wait_for

pytestmark = pytest.mark.services


class Fleet:
    """The broker, a recorder on everything, the trusted origin and another one, and the device."""

    def __init__(self, root: Path, tiny_bundle: Path) -> None:
        self.root, self.tiny_bundle = root, tiny_bundle
        self.name = bundle.load(tiny_bundle).meta.name
        self.broker = Mosquitto(root / "broker").start()
        self.recorder = Recorder(self.broker.url, "edgeloop/#")
        self.origin, self.elsewhere = BundleServer(), BundleServer()
        self.video = write_video(root / "video.avi", frames=30)
        self.state = root / "state"
        self.archives: dict[str, bytes] = {}
        self.device = self.start()

    def start(self):
        count = len(versions(self.recorder))
        device = start_edge(self.tiny_bundle, self.video, self.broker, self.state, "--loop", "--model-origin",
                            self.origin.url)  # fmt: skip
        wait_for(lambda: len(versions(self.recorder)) >= count + 5, 60, "predictions of the device")
        return device

    def bundle(self, version: str, server: BundleServer | None = None) -> tuple[str, str]:
        """Version `version` of the device's model on a server (the trusted origin by default): its URL and sha256."""
        if version not in self.archives:
            archive = bundle.pack(version_of(self.tiny_bundle, self.root, version), self.root / f"v{version}.tar.gz")
            self.archives[version] = archive.read_bytes()
        return (server or self.origin).add(f"/v{version}.tar.gz", self.archives[version])

    def statuses(self) -> list[dict]:
        return [json.loads(m.payload) for m in self.recorder.on("/status")]

    def rejections(self) -> list[str]:
        return [s["message"] for s in self.statuses() if (s.get("message") or "").startswith("rejected")]

    def refused(self, body: bytes, reason: str) -> None:
        """Publish `body` as the model's announcement and wait for the device to refuse it for `reason`."""
        before = len(self.rejections())
        publish(self.broker, self.name, body)
        wait_for(lambda: len(self.rejections()) > before, 30, f"the device to refuse ({reason})")
        assert self.rejections()[before:] == [f"rejected model update: {reason}"]

    def rejections_counted(self) -> int:
        """The device's own count of rejections, from its latest telemetry."""
        latest = [json.loads(m.payload) for m in self.recorder.on("/telemetry")][-1:]
        return latest[0]["updates"]["rejected"] if latest else 0

    def runs(self, version: str) -> None:
        wait_for(lambda: versions(self.recorder)[-1:] == [version], 60, f"predictions of version {version}")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path):
    fleet = Fleet(tmp_path_factory.mktemp("fleet"), tiny_bundle)
    yield fleet
    fleet.device.kill()
    fleet.recorder.close()
    for server in (fleet.origin, fleet.elsewhere):
        server.shutdown()
    fleet.broker.stop()


def test_edge_run_refuses_to_start_without_a_trusted_key(tiny_bundle: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "video.avi", frames=2)
    result = run_cli("edge", "run", "--model", tiny_bundle, "--source", video, "--device-id", "x",
                     "--state-dir", tmp_path / "state", check=False)  # fmt: skip
    assert result.returncode == 2
    assert "give --trusted-key" in result.stderr
    insecure = EdgeConfig(source="0", model=tiny_bundle, device_id="x", allow_unsigned_models=True)
    with pytest.raises(ValueError, match="needs --model-origin"):
        trust(insecure)
    assert trust(insecure.model_copy(update={"model_origin": "http://cloud:8080"})) is None


def test_an_unsigned_announcement_is_refused_and_its_bundle_never_fetched(fleet: Fleet) -> None:
    url, sha = fleet.bundle("9")
    fleet.refused(announcement(fleet.name, "9", url, sha, signed=False).encode(), "unsigned")
    assert fleet.origin.requests == []
    assert not list((fleet.state / "models").glob("*9*"))


def test_a_signature_by_another_key_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    signing.generate(tmp_path / "intruder.key", tmp_path / "intruder.pub")
    url, sha = fleet.bundle("9")
    forged = signing.Signer(tmp_path / "intruder.key").sign(announcement(fleet.name, "9", url, sha, signed=False))
    fleet.refused(forged.encode(), "bad_signature")
    assert fleet.origin.requests == []


def test_a_canary_with_its_groups_stripped_fails_the_signature(fleet: Fleet) -> None:
    url, sha = fleet.bundle("9")
    canary = json.loads(announcement(fleet.name, "9", url, sha, groups=["canary"]).encode())
    fleet.refused(json.dumps({k: v for k, v in canary.items() if k != "groups"}).encode(), "bad_signature")
    assert fleet.origin.requests == []


def test_an_expired_announcement_is_refused(fleet: Fleet) -> None:
    url, sha = fleet.bundle("9")
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    expired = announcement(fleet.name, "9", url, sha, signed=False).model_copy(update={"expires": past})
    fleet.refused(signing.Signer(registry_keys()[0]).sign(expired).encode(), "expired")


def test_a_url_off_the_origin_or_redirected_off_it_is_refused(fleet: Fleet) -> None:
    url, sha = fleet.bundle("9", fleet.elsewhere)
    fleet.refused(announcement(fleet.name, "9", url, sha).encode(), "download failed: off_origin")
    fleet.origin.redirects["/moved.tar.gz"] = url
    fleet.refused(announcement(fleet.name, "9", f"{fleet.origin.url}/moved.tar.gz", sha).encode(),
                  "download failed: redirect")  # fmt: skip
    assert fleet.origin.requests == ["/moved.tar.gz"]
    assert fleet.elsewhere.requests == [], "nothing was fetched off the origin"


def test_the_status_never_echoes_what_a_server_sent(fleet: Fleet) -> None:
    url, _ = fleet.origin.add("/marker.tar.gz", MARKER)
    fleet.refused(announcement(fleet.name, "9", url, "0" * 64).encode(), "download failed: sha256_mismatch")
    fleet.refused(announcement(fleet.name, "9", f"{fleet.origin.url}/gone.tar.gz", "0" * 64).encode(),
                  "download failed: http 404")  # fmt: skip
    wait_for(lambda: fleet.rejections_counted() == len(fleet.rejections()), 10, "telemetry counting the rejections")
    received = hashlib.sha256(MARKER).hexdigest()
    for message in fleet.recorder.on("/status") + fleet.recorder.on("/telemetry"):
        for leak in (MARKER[:16], received[:8].encode()):
            assert leak not in message.payload


def test_a_signed_rollout_and_rollback_reach_the_device_and_a_replay_does_not(fleet: Fleet) -> None:
    two = announce(fleet.broker, fleet.name, "2", *fleet.bundle("2"))
    fleet.runs("2")
    three = announce(fleet.broker, fleet.name, "3", *fleet.bundle("3"))
    fleet.runs("3")
    fleet.refused(two, "replayed")
    announce(fleet.broker, fleet.name, "2", *fleet.bundle("2"))  # a rollback: a new announcement, an older version
    fleet.runs("2")

    terminate(fleet.device)
    before = len(fleet.rejections())
    publish(fleet.broker, fleet.name, three)  # retained: what the restarted device reads first
    fleet.device = fleet.start()
    wait_for(lambda: len(fleet.rejections()) > before, 30, "the replay refused after a restart")
    assert fleet.rejections()[before:] == ["rejected model update: replayed"], "the last serial outlives a restart"
    count = len(versions(fleet.recorder))
    wait_for(lambda: len(versions(fleet.recorder)) > count + 10, 30, "predictions after the restart")
    assert set(versions(fleet.recorder)[count:]) == {"2"}
