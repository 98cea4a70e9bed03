"""The models and training section of the dashboard in a real browser (headless Chromium): the
service trains the first version of a model, the page shows the version, the job and its log; the
page's retrain button, given the service's API token when the page asks for it, queues a second
training. The screenshot is kept in test-artifacts/."""

import json
import signal
import urllib.request
from pathlib import Path

import yaml

from tests.support.data import write_dataset
from tests.support.paths import ARTIFACTS
from tests.support.ports import free_port
from tests.support.serve import start_serve
from tests.support.waiting import wait_for


def jobs(port: int) -> list[dict]:
    try:
        return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/jobs", timeout=5).read())
    except OSError:
        return []


def test_models_section_shows_versions_jobs_logs_and_retrains(
    broker, browser, tiny_flags, tmp_path: Path, monkeypatch
) -> None:
    data = tmp_path / "data"
    dataset = write_dataset(data / "datasets" / "colours", per_label=16)
    (dataset / "retrain.yaml").write_text(yaml.safe_dump(dict(tiny_flags)))
    port = free_port()
    monkeypatch.setenv("EDGELOOP_API_TOKEN", "s3cret")  # the service's writing endpoints need it
    serve = start_serve(broker, f"sqlite:///{tmp_path / 'db.sqlite'}", data, port, "--trigger-interval-s", 1)
    try:
        wait_for(lambda: [j["state"] for j in jobs(port)] == ["succeeded"], 180, "the first training")
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.goto(f"http://127.0.0.1:{port}/")
        version = jobs(port)[0]["version"]
        page.wait_for_selector(f"#versions tr[data-version='{version}'] td[data-col='state']:text('promoted')")
        page.wait_for_function("document.getElementById('job-log').textContent.includes('succeeded')")
        assert version in page.inner_text("#job-log"), "the job's log is shown"
        assert "initial" in page.inner_text("#jobs")
        asked = []
        page.on("dialog", lambda dialog: asked.append(dialog.message) or dialog.accept("s3cret"))
        page.click("button[data-retrain='colours']")
        # Playwright's sync API runs the dialog handler only inside its own calls: wait through the page.
        page.wait_for_selector("#jobs tr:nth-child(2)", timeout=20_000)
        wait_for(lambda: len(jobs(port)) == 2, 20, "a second job from the page's button")
        assert len(asked) == 1, "the page asked for the token once"
        assert "EDGELOOP_API_TOKEN" in asked[0]
        assert jobs(port)[0]["reasons"] == ["manual (http): dashboard button"]
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "models.png"), full_page=True)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)
