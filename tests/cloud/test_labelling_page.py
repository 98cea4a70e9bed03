"""A labelling round in a real browser (headless Chromium): samples sent by a device through the
broker to `python -m cloud serve` are labelled through the dashboard itself, with the keyboard and
with clicks, one is discarded, and the store and the training images say what the person decided;
the queue's order is chosen on the page.
The screenshot is kept in test-artifacts/."""

import signal
import sqlite3
import time
from pathlib import Path

import cv2
import numpy as np

from common import protocol
from tests.support.data import COLOURS, synthetic_image
from tests.support.fleet import Publisher
from tests.support.paths import ARTIFACTS
from tests.support.ports import free_port
from tests.support.samples import sample_properties
from tests.support.serve import metric, start_serve
from tests.support.waiting import wait_for

PREDICTED = [("daisy", 0.31), ("roses", 0.42), ("tulips", 0.18), ("daisy", 0.47), ("roses", 0.22)]
SHOWN = """n => {
    const card = document.querySelector('.sample.selected');
    return document.querySelectorAll('.sample').length === n && card
        && document.getElementById('focus-picture').dataset.sample === card.dataset.sample;
}"""


def send_samples(fleet: Publisher) -> None:
    rng = np.random.default_rng(5)
    for seq, ((label, score), colour) in enumerate(zip(PREDICTED, [*COLOURS, *COLOURS], strict=False), start=1):
        _, jpeg = cv2.imencode(".jpg", cv2.resize(synthetic_image(colour, rng), (320, 240)))
        meta = protocol.SampleMeta(
            device_id="cam-7", seq=seq, ts=time.time(), model=protocol.ModelRef(name="flowers", version="2"),
            top_k=[protocol.Score(label=label, score=score)], reason="low_confidence",
        )  # fmt: skip
        fleet.send(protocol.Topics().samples("cam-7"), jpeg.tobytes(), properties=sample_properties(meta))


def selected(page, cards: int) -> str:
    """The selected sample, once the page shows `cards` cards and the selected one's picture and choices."""
    page.wait_for_function(SHOWN, arg=cards, timeout=10_000)
    return page.locator(".sample.selected").get_attribute("data-sample")


def test_a_labelling_round_through_the_page(broker, browser, tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    for name in ("daisy", "roses", "tulips"):
        (data / "datasets/flowers" / name).mkdir(parents=True)
    serve = start_serve(broker, f"sqlite:///{tmp_path / 'db.sqlite'}", data, port)
    fleet = Publisher(broker.port)
    try:
        seqs = iter(range(1, 10**6))
        wait_for(lambda: fleet.send_predictions("cam-7", [next(seqs)]) or metric(port, "stored") >= 1, 60,
                 "the aggregator's session", interval_s=0.5)  # fmt: skip
        send_samples(fleet)
        wait_for(lambda: metric(port, "samples_stored") >= 5, 20, "the samples")
        page = browser.new_page(viewport={"width": 1280, "height": 1100}, bypass_csp=True)  # wait_for_function evals
        page.goto(f"http://127.0.0.1:{port}/")
        decided: dict[str, tuple[str, str | None]] = {}

        first = selected(page, 5)
        assert first == page.locator(".sample").first.get_attribute("data-sample")
        page.wait_for_function("document.getElementById('queue-how').textContent.length > 0")
        assert page.locator("#queue-how").inner_text() == "flowers: newest (no promoted model)"  # the default, hybrid
        page.select_option("#queue-order", "newest")
        page.wait_for_function("document.getElementById('queue-how').textContent === 'newest'")
        assert selected(page, 5) == first
        predicted = page.locator(".sample.selected").inner_text().split(": ")[1].split()[0]
        choices = [b.get_attribute("data-label") for b in page.locator("#choices button").all()]
        assert choices == [predicted, "daisy", "roses", "tulips", "discard"]
        page.keyboard.press("Enter")  # the prediction is right
        decided[first] = ("labelled", predicted)

        second = selected(page, 4)
        page.keyboard.press("2")
        decided[second] = ("labelled", "roses")

        third = selected(page, 3)
        page.keyboard.press("ArrowRight")
        assert selected(page, 3) != third
        clicked = page.locator(".sample").last.get_attribute("data-sample")
        page.locator(".sample").last.click()  # a click chooses a card, another its label
        assert selected(page, 3) == clicked
        page.locator("#choices button[data-label='tulips']").click()
        decided[clicked] = ("labelled", "tulips")
        ARTIFACTS.mkdir(exist_ok=True)
        fourth = selected(page, 2)
        page.screenshot(path=str(ARTIFACTS / "labelling.png"), full_page=True)

        page.fill("#new-label-name", "sunflowers")  # a label the model has no folder for yet
        page.press("#new-label-name", "Enter")
        decided[fourth] = ("labelled", "sunflowers")

        last = selected(page, 1)
        page.wait_for_selector("#choices button[data-label='sunflowers']")  # offered from now on
        page.keyboard.press("x")
        decided[last] = ("discarded", None)
        page.wait_for_function("document.getElementById('label-count').textContent.includes('labelled 4, discarded 1')")
        assert page.locator("#focus-info").inner_text() == "nothing to label"
        assert page.locator(".sample").count() == 0
        assert (ARTIFACTS / "labelling.png").stat().st_size > 10_000
    finally:
        fleet.close()
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)

    with sqlite3.connect(tmp_path / "db.sqlite") as db:
        rows = {r[0]: r[1:] for r in db.execute("SELECT id, status, label, dataset_path, device_id FROM samples")}
    assert {i: r[:2] for i, r in rows.items()} == decided
    for sample_id, (status, label, path, device) in rows.items():
        assert device == "cam-7"
        if status == "labelled":
            assert path == f"datasets/flowers/{label}/{sample_id}.jpg"
            assert (data / path).read_bytes() == (data / "samples" / sample_id[:2] / f"{sample_id}.jpg").read_bytes()
        else:
            assert path is None
    images = sorted(p.relative_to(data / "datasets/flowers").as_posix() for p in (data / "datasets").rglob("*.jpg"))
    assert images == sorted(f"{label}/{i}.jpg" for i, (status, label) in decided.items() if status == "labelled")
