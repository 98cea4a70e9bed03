"""Announcements signed whole (common/signing.py) and what a device believes of them
(edge/announcements.py): every field is covered, key rotation works, and expired, replayed and
unsigned announcements are refused, the last serial kept across restarts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common import protocol, signing
from edge.announcements import Gate, Refused
from tests.support.fuzz import FUZZ, JSON_VALUES
from tests.support.keys import registry_keys
from tests.support.updates import announcement

PRIVATE, PUBLIC = registry_keys()
SHA = "a" * 64


def _fields(body: bytes) -> dict:
    return json.loads(body)


def test_canonical_form_is_sorted_compact_and_leaves_the_signature_out() -> None:
    assert signing.canonical({"b": 1, "a": [1, "é"], "signature": "x"}) == b'{"a":[1,"\\u00e9"],"b":1}'
    with pytest.raises(ValueError, match="not JSON compliant"):
        signing.canonical({"a": float("nan")})


@FUZZ
@given(metrics=st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4))
def test_what_the_registry_signs_verifies_as_it_travels(metrics: dict) -> None:
    signed = announcement("m", "1", "http://x/m/1.tar.gz", SHA, metrics=metrics)
    respaced = json.dumps(json.loads(signed.encode()), indent=3, sort_keys=False).encode()
    for body in (signed.encode(), respaced):
        signing.Verifier(PUBLIC).verify(_fields(body))


@pytest.mark.parametrize(
    "change",
    [
        {"groups": None},  # a canary widened to the fleet
        {"url": "http://elsewhere/m/1.tar.gz"},
        {"version": "0"},
        {"serial": 1},
        {"expires": "2999-01-01T00:00:00Z"},
        {"metrics": {"test_accuracy": 1.0}},
        {"extra": "field"},
    ],
)
def test_changing_or_dropping_any_field_breaks_the_signature(change: dict) -> None:
    fields = _fields(announcement("m", "1", "http://x/m/1.tar.gz", SHA, groups=["canary"]).encode())
    tampered = {k: v for k, v in {**fields, **change}.items() if v is not None}
    with pytest.raises(signing.SignatureError):
        signing.Verifier(PUBLIC).verify(tampered)


def test_another_key_fails_and_a_file_of_two_keys_trusts_both(tmp_path: Path) -> None:
    signing.generate(tmp_path / "new.key", tmp_path / "new.pub")
    by_new = signing.Signer(tmp_path / "new.key").sign(announcement("m", "1", "http://x/", SHA, signed=False))
    with pytest.raises(signing.SignatureError, match="trusted keys"):
        signing.Verifier(PUBLIC).verify(_fields(by_new.encode()))
    both = tmp_path / "trusted.pub"
    both.write_bytes(PUBLIC.read_bytes() + (tmp_path / "new.pub").read_bytes())  # while the key is rotated
    for signed in (by_new, announcement("m", "1", "http://x/", SHA)):
        signing.Verifier(both).verify(_fields(signed.encode()))
    with pytest.raises(signing.SignatureError, match="no PEM public key"):
        signing.Verifier(tmp_path / "new.key")


def test_the_gate_refuses_unsigned_expired_and_replayed_and_remembers_across_restarts(tmp_path: Path) -> None:
    gate = Gate(tmp_path, signing.Verifier(PUBLIC))

    def reason(body: bytes) -> str:
        with pytest.raises(Refused) as refused:
            gate.check(body)
        return refused.value.reason

    older, newer = (announcement("m", v, "http://x/", SHA).encode() for v in ("1", "2"))
    assert reason(announcement("m", "3", "http://x/", SHA, signed=False).encode()) == "unsigned"
    assert reason(b"{not json") == "malformed"
    tampered = {**_fields(newer), "version": "3"}
    assert reason(json.dumps(tampered).encode()) == "bad_signature"
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    expired = signing.Signer(PRIVATE).sign(
        announcement("m", "3", "http://x/", SHA, signed=False).model_copy(update={"expires": past})
    )
    assert reason(expired.encode()) == "expired"
    gate.accept(gate.check(newer))
    assert gate.check(newer).version == "2", "the same announcement again (a retained one redelivered) is fine"
    assert reason(older) == "replayed"

    restarted = Gate(tmp_path, signing.Verifier(PUBLIC))
    with pytest.raises(Refused, match="older than the last"):
        restarted.check(older)
    insecure = Gate(tmp_path / "insecure", None, allow_unsigned=True)
    assert insecure.check(announcement("m", "3", "http://x/", SHA, signed=False).encode()).version == "3"


def test_a_damaged_serials_file_is_set_aside_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "announcements.json").write_text("[1, 2")
    gate = Gate(tmp_path, signing.Verifier(PUBLIC))
    assert gate.check(announcement("m", "1", "http://x/", SHA).encode()).version == "1"


def test_an_announcement_without_serial_or_expiry_is_malformed() -> None:
    good = json.loads(announcement("m", "1", "http://x/", SHA, signed=False).encode())
    for missing in ("serial", "expires"):
        with pytest.raises(protocol.ProtocolError):
            protocol.Announcement.decode(json.dumps({k: v for k, v in good.items() if k != missing}))
