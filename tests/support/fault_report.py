"""The fault report, test-artifacts/faults.md: one table that every fault test adds its Row to, the
cloud's faults (tests/faults/) and the device's (tests/edge/faults/) alike. A plugin that
tests/conftest.py loads, so the table is written once per session whichever of them ran, and by the controller
when pytest-xdist runs the tests in workers (each worker hands its rows over as it finishes)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pytest

from tests.support.paths import ARTIFACTS, ROOT

REPORT = ARTIFACTS / "faults.md"
_ROWS = pytest.StashKey[list["Row"]]()

HEADER = """# Fault injection

- sent: the seq range the devices published.
- stored: distinct (device_id, seq) in the aggregator's store; for a device-side fault (no aggregator:
  disk full, partition, power loss) the distinct seqs that reached the broker.
- lost: sent - stored - dropped, counted: what neither arrived nor was accounted for (never below 0:
  a prediction the outbox dropped while paho still held it may arrive all the same).
- duplicated: rows (or messages that arrived) - distinct.
- dropped, counted: the predictions the device dropped on purpose and counted: its outbox's `dropped`
  (the oldest, when the disk fills) and, on a full disk, its telemetry's `mqtt.dropped`; - where not
  measured (the cloud-side faults).
- redeliveries absorbed: the aggregator's `duplicates` metric (redelivered predictions it stored
  once); - where no aggregator runs.
- recovery: the fault over (the peer or the link back) -> everything sent before it stored (arrived,
  for the partition), the worst of a fault's repetitions; disk full: space and the broker back -> the
  outbox drained below 50; power cut: the cut mid-swap -> the restarted device's first new prediction.

"""


@dataclass
class Row:
    fault: str
    sent: int  # the seq range the devices published
    stored: int  # distinct (device_id, seq) stored, or arrived at the broker for a device-side fault
    rows: int  # prediction rows in the store, or messages that arrived
    absorbed: int | None  # redeliveries the aggregator counted as duplicates; None: no aggregator
    recovery_s: float | None  # fault over -> the store holds everything sent before; None: never
    dropped: int | None = None  # predictions the device dropped on purpose and counted; None: not measured

    @property
    def missing(self) -> int:
        return self.sent - self.stored

    @property
    def lost(self) -> int:
        """Missing and not counted as dropped (a dropped one may still arrive: never below 0 then)."""
        return self.missing if self.dropped is None else max(self.missing - self.dropped, 0)

    @property
    def duplicated(self) -> int:
        return self.rows - self.stored


@pytest.fixture(scope="session")
def fault_report(request: pytest.FixtureRequest) -> list[Row]:
    """Each fault test appends its Row; the table is written once every test has run."""
    return request.config.stash.setdefault(_ROWS, [])


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def table(rows: list[Row]) -> list[str]:
    columns = ["fault", "sent", "stored", "lost", "duplicated", "dropped, counted", "redeliveries absorbed"]
    lines = ["| " + " | ".join([*columns, "recovery s"]) + " |", "|---" * (len(columns) + 1) + "|"]
    for r in rows:
        recovery = "never" if r.recovery_s is None else r.recovery_s
        cells = [r.fault, r.sent, r.stored, r.lost, r.duplicated, _cell(r.dropped), _cell(r.absorbed), recovery]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return lines


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller writes the table
        workeroutput["fault_rows"] = [asdict(r) for r in session.config.stash.get(_ROWS, [])]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    rows = getattr(node, "workeroutput", {}).get("fault_rows", [])
    node.config.stash.setdefault(_ROWS, []).extend(Row(**r) for r in rows)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    rows = config.stash.get(_ROWS, [])
    if not rows:  # no fault ran: the last report stays
        return
    lines = table(rows)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(HEADER + "\n".join(lines) + "\n")
    terminalreporter.section("fault injection")
    for line in lines:
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(written to {REPORT.relative_to(ROOT)})")
