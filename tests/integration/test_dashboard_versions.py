"""The dashboard's per-version panel in a real browser (headless Chromium), fed by the real core.

A monitor sees canary traffic (10% of predictions by ``v2``, no deployment event); the status
board's detail of that model is served to the page as a worker's ``/api/models/{id}`` would,
and the page must list both versions, the current one first, each with its own signals.
No broker is needed: the page reads only the HTTP API, answered here by Playwright routes.
"""

from __future__ import annotations

import json
import random
from importlib import resources
from pathlib import Path

import pytest
from playwright.sync_api import Route, expect, sync_playwright

from streamproc.core.events import LabelEvent, PredictionEvent
from streamproc.core.monitor import ModelMonitor
from streamproc.devkit.harness import missing_tool
from streamproc.service.board import StatusBoard

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
BASE = "http://worker.test"


def canary_board() -> dict:
    rng = random.Random(4)
    mon = ModelMonitor("m")
    for i in range(3000):
        version = "v2" if rng.random() < 0.1 else "v1"
        ev = PredictionEvent(f"e{i}", "m", version, float(i), 1, {"x": rng.gauss(0, 1)})
        mon.on_prediction(ev, None)
        mon.on_label(LabelEvent(f"e{i}", "m", float(i), int(rng.random() < 0.9)), None)
    board = StatusBoard()
    board.applied(mon, partition=0)
    detail = board.model("m")
    assert detail is not None
    return json.loads(json.dumps(detail))  # as the API sends it


def test_each_served_version_is_shown_with_its_own_signals(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        missing_tool(f"{CHROMIUM} is not installed (apt-get install chromium)")
    detail = canary_board()
    summary = {k: detail[k] for k in ("model_id", "partition", "version", "event_time")}
    page_html = resources.files("streamproc.service").joinpath("dashboard.html").read_text()
    answers = {
        f"{BASE}/dashboard": ("text/html", page_html),
        f"{BASE}/api/status": (
            "application/json",
            json.dumps({"worker": "w", "started": 0, "models": [summary]}),
        ),
        f"{BASE}/api/models/m": ("application/json", json.dumps(detail)),
    }

    def answer(route: Route) -> None:
        url = route.request.url.split("#")[0].split("?")[0]
        kind, body = answers.get(url, ("application/json", '{"error": "not here"}'))
        route.fulfill(status=200 if url in answers else 404, content_type=kind, body=body)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.route(f"{BASE}/**", answer)
            page.goto(f"{BASE}/dashboard#model=m")
            rows = page.locator("#versions tr.served-version")
            expect(rows).to_have_count(2, timeout=20_000)
            current, canary = rows.nth(0), rows.nth(1)
            expect(current).to_have_attribute("data-version", "v1")
            expect(current).to_have_attribute("data-current", "true")
            expect(canary).to_have_attribute("data-version", "v2")
            expect(canary).to_have_attribute("data-current", "false")
            v1, v2 = detail["versions"]
            expect(current.locator("td.predictions")).to_have_text(str(v1["predictions"]))
            expect(canary.locator("td.labels")).to_have_text(str(v2["labels"]))
            expect(canary.locator("td.share")).to_have_text(f"{100 * v2['traffic_share']:.0f}%")
            # Each version's own signals: the canary's error and feature detectors are its own.
            for row, v in ((current, v1), (canary, v2)):
                names = [s["signal"] for s in v["signals"]]
                assert "error" in names and "feature:x" in names, names
                for name in names:
                    expect(
                        row.locator(f'td.version-signals li[data-signal="{name}"]')
                    ).to_be_visible()
            page.screenshot(path=str(tmp_path / "versions.png"), full_page=True)
        finally:
            browser.close()
