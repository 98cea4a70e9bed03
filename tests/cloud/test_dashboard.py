"""The dashboard in a real browser (headless Chromium): it loads, shows the devices sending in the
test with their group and label drift, a device's window figures, and updates as their predictions
arrive; a device with three cameras shows each with its counts, rate and telemetry, the window of
one of them, and the camera its sample came from. The screenshot is kept in test-artifacts/."""

import shutil
import signal
import time
from pathlib import Path

from cloud.store import connect
from common import protocol
from tests.support.fleet import Publisher
from tests.support.paths import ARTIFACTS
from tests.support.ports import free_port
from tests.support.registry import register
from tests.support.samples import send_sample
from tests.support.serve import metric, start_serve
from tests.support.waiting import wait_for


def cell(page, row: str, column: str) -> str:
    return page.locator(f"{row} td[data-col='{column}']").inner_text()


def send_three_cameras(fleet: Publisher) -> None:
    """edge-3: 30 predictions from door (in batches), 20 from yard (alone), 10 from gate, its telemetry, and a
    sample gate sent."""
    topics = protocol.Topics()
    fleet.send_predictions("edge-3", range(1, 31), per_message=10, camera="door")
    fleet.send_predictions("edge-3", range(31, 51), camera="yard")
    fleet.send_predictions("edge-3", range(51, 61), per_message=10, camera="gate")
    figures = {"door": {"fps": 12.0, "dropped": 4.0, "reopens": 0.0}, "yard": {"fps": 6.0, "dropped": 0, "reopens": 0},
               "gate": {"fps": 2.0, "dropped": 1.0, "reopens": 3.0}}  # fmt: skip
    fleet.send(topics.telemetry("edge-3"), protocol.Telemetry(fps=20.0, cameras=figures).encode(), qos=0)
    send_sample(fleet, topics, "edge-3", 55, "gate", "daisy", 0.9, "random", grey=120)


def test_dashboard_shows_the_fleet_and_follows_it_live(broker, browser, tmp_path: Path) -> None:
    port, db_url = free_port(), f"sqlite:///{tmp_path / 'db.sqlite'}"
    db = connect(db_url)
    register(db, "1", {"daisy": 50, "roses": 50})  # the fleet predicts only daisy: a drift of 0.558
    db.close()
    serve = start_serve(broker, db_url, tmp_path / "data", port)
    fleet = Publisher(broker.port)
    try:
        seqs = iter(range(1, 10**6))
        wait_for(lambda: fleet.send_predictions("cam-1", [next(seqs)]) or metric(port, "stored") >= 1, 60,
                 "the aggregator's session", interval_s=0.5)  # fmt: skip
        first = next(seqs)
        fleet.send_predictions("cam-1", range(first, first + 200))
        fleet.send_predictions("cam-2", range(1, 51))
        status = protocol.Status(state="online", ts=time.time(), group="canary")
        fleet.send(protocol.Topics().status("cam-2"), status.encode()).wait_for_publish(10)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)  # wait_for_function evals
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("tr[data-device='cam-2']", timeout=20_000)
        cam1 = page.locator("tr[data-device='cam-1'] td[data-col='predictions']")
        before = int(cam1.inner_text())
        assert before >= 200
        assert cell(page, "tr[data-device='cam-2']", "predictions") == "50"
        wait_for(lambda: cell(page, "tr[data-device='cam-2']", "group") == "canary", 10, "the device group")
        assert cell(page, "tr[data-device='cam-2']", "drift") == "0.558"
        assert cell(page, "tr[data-device='cam-1']", "drift") == "0.558"
        fleet.send_predictions("cam-1", range(first + 200, first + 500))
        wait_for(lambda: int(cam1.inner_text()) == before + 300, 20, "the page to update")
        assert "updated" in page.locator("#updated").inner_text()
        daisy = "#window-labels tr[data-label='daisy']"
        page.wait_for_function(  # a later refresh draws the charts and the window with the latest counts
            "([row, n]) => document.querySelector(row + \" td[data-col='predictions']\")?.textContent === String(n)",
            arg=[daisy, before + 300],
            timeout=20_000,
        )
        assert cell(page, daisy, "mean-confidence") == "0.900"
        assert cell(page, daisy, "low-share") == "0.0%"
        stats = page.locator("#window-stats")
        assert stats.locator("[data-stat='inference']").inner_text() == "inference: p50 2.0 ms, p95 2.0 ms"
        assert stats.locator("[data-stat='capture to publish']").inner_text().endswith("p50 4.0 ms, p95 4.0 ms")
        assert "0.558 against flowers 1" in stats.locator("[data-stat='label drift']").inner_text()
        assert float(stats.locator("[data-stat='predictions/s']").inner_text().split(": ")[1]) > 0

        send_three_cameras(fleet)  # now: their rates are over the last minute
        page.wait_for_selector("#cameras tr[data-camera='gate'] td[data-col='reopens']:text-is('3')", timeout=20_000)
        columns = ("device", "predictions", "rate", "fps", "dropped")
        expected = {"door": ["edge-3", "30", "0.5", "12.0", "4"], "gate": ["edge-3", "10", "0.2", "2.0", "1"],
                    "yard": ["edge-3", "20", "0.3", "6.0", "0"]}  # fmt: skip

        def shown() -> dict:
            return {c: [cell(page, f"#cameras tr[data-camera='{c}']", col) for col in columns] for c in expected}

        wait_for(lambda: shown() == expected, 20, "the cameras' figures")
        assert page.locator("#cameras tr").count() == 3, "cam-1 and cam-2 have one camera each: they name none"
        page.click("#cameras tr[data-camera='yard']")
        page.wait_for_function("document.getElementById('window-device').textContent === 'edge-3/yard'", timeout=20_000)
        assert cell(page, daisy, "predictions") == "20"
        assert page.locator("#chosen").inner_text() == "edge-3/yard"
        page.wait_for_selector(".sample:has-text('edge-3/gate: daisy 0.90')", timeout=20_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
        assert page.evaluate("document.getElementById('labels').toDataURL().length") > 3000, "the chart is drawn"
    finally:
        fleet.close()
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)
    shutil.rmtree(tmp_path / "data", ignore_errors=True)
