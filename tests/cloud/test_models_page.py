"""The models and training section of the dashboard in a real browser (headless Chromium): the
service trains the first version of a model, the page shows the version, the job and its log once
given the service's API token (asked once, reads need it too); the page's retrain button queues a
second training. Versions that report test accuracy per slice show it in the table, the gate's verdict
per slice, and a chart of seed and field accuracy across versions. The screenshots are kept in
test-artifacts/."""

import json
import signal
import urllib.request
from pathlib import Path

import yaml

from cloud.store import connect
from cloud.store import models as model_store
from common import bundle
from tests.support.data import write_dataset
from tests.support.paths import ARTIFACTS
from tests.support.ports import free_port
from tests.support.serve import start_serve
from tests.support.waiting import wait_for

TOKEN = "s3cret-token-of-the-models-page"


def answer(port: int, path: str) -> list[dict]:
    """The JSON answer (given the token, which a service without one ignores), or [] while it is not up."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        return json.loads(urllib.request.urlopen(request, timeout=5).read())
    except OSError:
        return []


def jobs(port: int) -> list[dict]:
    return answer(port, "/api/jobs")


def test_models_section_shows_versions_jobs_logs_and_retrains(
    broker, browser, tiny_flags, tmp_path: Path, monkeypatch
) -> None:
    data = tmp_path / "data"
    dataset = write_dataset(data / "datasets" / "colours", per_label=16)
    (dataset / "retrain.yaml").write_text(yaml.safe_dump(dict(tiny_flags)))
    port = free_port()
    monkeypatch.setenv("EDGELOOP_API_TOKEN", TOKEN)  # the service's endpoints need it, reads too
    serve = start_serve(broker, f"sqlite:///{tmp_path / 'db.sqlite'}", data, port, "--trigger-interval-s", 1)
    try:
        wait_for(lambda: [j["state"] for j in jobs(port)] == ["succeeded"], 180, "the first training")
        page = browser.new_page(viewport={"width": 1280, "height": 1400}, bypass_csp=True)  # wait_for_function evals
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#sign-in:not([hidden])")
        page.fill("#token", TOKEN)
        page.press("#token", "Enter")
        version = jobs(port)[0]["version"]
        row = f"#versions tr[data-version='{version}']"
        page.wait_for_selector(f"{row} td[data-col='state']:text('promoted')")
        test_accuracy = page.inner_text(f"{row} td[data-col='test-accuracy']")
        assert page.inner_text(f"{row} td[data-col='seed-accuracy']") == test_accuracy, "every test image is seed"
        assert page.inner_text(f"{row} td[data-col='field-accuracy']") == "–"
        assert page.inner_text(f"{row} td[data-col='field-images']") == "0"
        page.wait_for_function("document.getElementById('job-log').textContent.includes('succeeded')")
        assert version in page.inner_text("#job-log"), "the job's log is shown"
        assert "initial" in page.inner_text("#jobs")
        page.click("button[data-retrain='colours']")
        page.wait_for_selector("#jobs tr:nth-child(2)", timeout=20_000)
        wait_for(lambda: len(jobs(port)) == 2, 20, "a second job from the page's button")
        assert page.is_hidden("#sign-in"), "the page asked for the token once"
        assert jobs(port)[0]["reasons"] == ["manual (http): dashboard button"]
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "models.png"), full_page=True)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)


def add_version(db, name: str, version: str, created: float, slices: dict[str, tuple[int, float | None]]) -> None:
    """A version as the registry keeps it, reporting test accuracy for these slices: {slice: (images, accuracy)}."""
    reported = {kind: bundle.SliceMetrics(images=n, accuracy=a) for kind, (n, a) in slices.items()}
    metrics = bundle.Metrics(
        test_accuracy=0.9, validation_accuracy=None, confusion_matrix=[], per_class={}, slices=reported
    ).model_dump_json()
    model_store.add(
        db,
        name=name,
        version=version,
        created=created,
        parent=None,
        trigger="test",
        job_id=None,
        sha256="0" * 64,
        metrics_json=metrics,
        label_counts={},
        images=[],
    )


def slice_cells(page, version: str) -> list[str]:
    row = f"#versions tr[data-version='{version}']"
    return [page.inner_text(f"{row} td[data-col='{c}']") for c in ("seed-accuracy", "field-accuracy", "field-images")]


def points(page, model: str, kind: str) -> list[tuple[float, float]]:
    drawn = page.get_attribute(f"#accuracy-charts svg[data-model='{model}'] polyline[data-slice='{kind}']", "points")
    return [tuple(map(float, point.split(","))) for point in drawn.split()]


def test_versions_show_accuracy_per_slice_the_gate_per_slice_and_a_chart(broker, browser, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    db = connect(db_url)
    add_version(db, "flowers", "v1", 1000.0, {"seed": (60, 0.9), "field": (0, None)})
    add_version(db, "flowers", "v2", 2000.0, {"seed": (60, 0.95), "field": (20, 0.6)})
    add_version(db, "flowers", "v3", 3000.0, {"seed": (60, 0.9333), "field": (42, 34 / 42)})
    field = {"images": 42, "candidate": 34 / 42, "promoted": 0.6, "b": 1, "c": 9, "p_value": 0.0234}
    slices = {"seed": {"images": 60, "candidate": 0.9333, "promoted": 0.95}, "field": field}
    gate = {"passed": True, "why": "better on the field", "rule": "field", "slices": slices}
    model_store.set_gate(db, "flowers", "v3", "candidate", gate)
    add_version(db, "legacy", "old-1", 500.0, {})  # from before slices: no figures, a verdict without them
    model_store.set_gate(db, "legacy", "old-1", "candidate", {"passed": True, "why": "no promoted version yet"})
    db.close()
    port = free_port()
    serve = start_serve(broker, db_url, tmp_path / "data", port, "--no-train")
    try:
        wait_for(lambda: len(answer(port, "/api/models")) == 4, 60, "the service", interval_s=0.3)
        page = browser.new_page(viewport={"width": 1280, "height": 1400}, bypass_csp=True)  # wait_for_function evals
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector(
            "#accuracy-charts svg[data-model='flowers'] polyline[data-slice='field']", timeout=20_000
        )
        assert slice_cells(page, "v1") == ["0.900", "–", "0"]
        assert slice_cells(page, "v2") == ["0.950", "0.600", "20"]
        assert slice_cells(page, "v3") == ["0.933", "0.810", "42"]
        assert slice_cells(page, "old-1") == ["–", "–", "–"]

        seed, field = points(page, "flowers", "seed"), points(page, "flowers", "field")
        assert len(seed) == 3, "a seed point per version"
        assert len(field) == 2, "a field point per version with field test images"
        assert [x for x, _ in seed] == sorted(x for x, _ in seed), "oldest to newest"
        assert [x for x, _ in field] == [x for x, _ in seed[1:]], "field points under their versions"
        assert seed[1][1] < seed[0][1], "higher accuracy higher on the chart"
        assert field[1][1] < field[0][1]
        dots = page.locator("#accuracy-charts svg[data-model='flowers'] circle[data-slice='field']")
        assert dots.evaluate_all("dots => dots.map(d => d.dataset.version)") == ["v2", "v3"]
        assert dots.nth(1).locator("title").text_content() == "v3 field: 0.810 on 42 test images"
        assert page.locator("#accuracy-charts svg[data-model='legacy'] polyline").count() == 0

        verdict = page.locator("#versions tr[data-version='v3'] td[data-col='gate'] details")
        assert verdict.locator("summary").inner_text() == "passed (rule: field)"
        assert "field: candidate 0.810 vs promoted 0.600 on 42 images, b=1 c=9 p=0.023" in verdict.get_attribute(
            "title"
        )
        verdict.locator("summary").click()
        assert (
            verdict.locator("[data-slice='seed']").inner_text()
            == "seed: candidate 0.933 vs promoted 0.950 on 60 images"
        )
        legacy = page.locator("#versions tr[data-version='old-1'] td[data-col='gate'] details")
        assert legacy.locator("summary").inner_text() == "passed"
        assert legacy.locator("[data-slice]").count() == 0
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("#models").screenshot(path=str(ARTIFACTS / "models-slices.png"))
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)
