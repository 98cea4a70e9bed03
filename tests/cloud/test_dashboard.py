"""The dashboard in a real browser (headless Chromium): it loads, shows the devices sending in the
test, and updates as their predictions arrive. The screenshot is kept in test-artifacts/."""

import shutil
import signal
import time
from pathlib import Path

from tests.broker import free_port, wait_for
from tests.cloud.conftest import ARTIFACTS
from tests.cloud.test_serve import metric, start_serve
from tests.fleet import Publisher


def test_dashboard_shows_the_fleet_and_follows_it_live(broker, browser, tmp_path: Path) -> None:
    port = free_port()
    serve = start_serve(broker, f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "data", port)
    fleet = Publisher(broker.port)
    try:
        seqs = iter(range(1, 10**6))
        wait_for(lambda: fleet.send_predictions("cam-1", [next(seqs)]) or metric(port, "stored") >= 1, 60,
                 "the aggregator's session", interval_s=0.5)  # fmt: skip
        first = next(seqs)
        fleet.send_predictions("cam-1", range(first, first + 200))
        fleet.send_predictions("cam-2", range(1, 51))
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("tr[data-device='cam-2']", timeout=20_000)
        cam1 = page.locator("tr[data-device='cam-1'] td").nth(3)
        before = int(cam1.inner_text())
        assert before >= 200
        assert page.locator("tr[data-device='cam-2'] td").nth(3).inner_text() == "50"
        fleet.send_predictions("cam-1", range(first + 200, first + 500))
        wait_for(lambda: int(cam1.inner_text()) == before + 300, 20, "the page to update")
        assert "updated" in page.locator("#updated").inner_text()
        time.sleep(2.5)  # one more refresh draws the charts with the latest counts
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
        assert page.evaluate("document.getElementById('labels').toDataURL().length") > 3000, "the chart is drawn"
    finally:
        fleet.close()
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)
    shutil.rmtree(tmp_path / "data", ignore_errors=True)
