"""The dashboard in a real browser (headless Chromium) against a real worker.

What a person sees: the model appears with its version; its error plot shows the statistic and
the threshold; a drift's automatic retrain and a manual one put markers on the plot; clicking a
marker shows the request's audit trail; the version updates without a reload.
"""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.sync_api import Page, Route, expect, sync_playwright

from streamproc.scenarios import interactions, rule_model
from streamproc.testing import as_json, produce

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
MODEL = "ads-ctr"
TOKEN = "s3cret-token"
WAIT_MS = 45_000


def feed_drift(stack: Any) -> None:
    """Concept A then B: the served rule is wrong half the time after 1200, the error CUSUM fires."""
    served = ("v1", rule_model("A", flip=0.05))
    concept = lambda i: "A" if i < 1200 else "B"  # noqa: E731
    batch = list(interactions(MODEL, concept, lambda i: served, 0, 1800, seed=11))
    produce(
        stack.bootstrap,
        [(stack.topic("predictions"), MODEL, as_json(x.prediction)) for x in batch]
        + [(stack.topic("labels"), MODEL, as_json(x.label)) for x in batch],
    )


def retrain(base: str, note: str) -> str:
    req = urllib.request.Request(
        f"{base}/api/models/{MODEL}/retrain",
        data=orjson.dumps({"note": note}),
        method="POST",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 202
        return str(orjson.loads(resp.read())["request_id"])


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed")
def test_dashboard_plots_decisions_and_shows_audit_trails(stack: Any, tmp_path: Path) -> None:
    worker = stack.start_worker(env={"STREAMPROC_ADMIN_TOKEN": TOKEN})
    base = f"http://127.0.0.1:{worker.settings.web_port}"
    deployments = stack.reader("deployments")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{base}/dashboard")
            expect(page.locator("#models tbody")).to_contain_text("No models yet")

            # Traffic arrives: the row appears by polling, with the served version.
            feed_drift(stack)
            row = page.locator(f'tr.model[data-model="{MODEL}"]')
            expect(row.locator("td.version")).to_contain_text("v1", timeout=WAIT_MS)
            row.click()
            expect(page).to_have_url(re.compile(f"#model={MODEL}$"))
            error_plot = page.locator('figure.plot[data-series="error"] svg')
            expect(error_plot).to_be_visible()
            expect(error_plot.locator("path.threshold")).to_have_attribute("d", re.compile("^M.*L"))
            expect(error_plot.locator("path.statistic")).to_have_attribute("d", re.compile("^M.*L"))
            expect(page.locator("#legend [data-kind=requested]")).to_be_visible()

            # The drift fired the error CUSUM: its request is on the plot; wait for its outcome.
            auto = error_plot.locator('g.marker[data-kind="requested"]').first
            expect(auto).to_be_visible(timeout=WAIT_MS)
            expect(row.locator("td.last-result")).not_to_have_text("–", timeout=WAIT_MS)
            expect(row.locator("td.in-flight")).to_have_text("–", timeout=WAIT_MS)
            auto_rid = auto.get_attribute("data-request-id")
            page.locator(f'#decisions tr.decision[data-kind="requested"][data-request-id="{auto_rid}"]').click()  # fmt: skip
            trail = page.locator("#trail")
            expect(trail).to_have_attribute("data-request-id", str(auto_rid))
            reason = trail.locator('li.step[data-kind="requested"] tr.reason[data-signal="error"]')
            expect(reason).to_contain_text("cusum")
            expect(trail.locator(".result-status")).to_have_text(re.compile("succeeded|rejected"))

            # A manual retrain: requested -> succeeded -> deployed, on the plot and in the trail.
            before = row.locator("td.version code").inner_text()
            rid = retrain(base, "from the dashboard test")
            marker = error_plot.locator(f'g.marker[data-kind="requested"][data-request-id="{rid}"]')
            expect(marker).to_be_visible(timeout=WAIT_MS)
            deployed = error_plot.locator(
                f'g.marker[data-kind="deployed"][data-request-id="{rid}"]'
            )
            expect(deployed).to_be_visible(timeout=WAIT_MS)
            marker.click()
            expect(page).to_have_url(re.compile(f"request={rid}$"))
            expect(trail).to_have_attribute("data-request-id", rid)
            expect(trail.locator('li.step[data-kind="requested"]')).to_contain_text("manual")
            expect(trail.locator('li.step[data-kind="requested"]')).to_contain_text(
                "from the dashboard test"
            )
            expect(trail.locator(".result-status")).to_have_text("succeeded")
            kinds = trail.locator("li.step").evaluate_all("els => els.map(e => e.dataset.kind)")
            assert kinds[0] == "requested" and sorted(kinds[1:]) == ["accepted", "deployed"], kinds

            # The deployed version is the one on the deployments topic, and the row shows it.
            deployments.wait_for(
                lambda r: any(d.json().get("request_id") == rid for d in r.of(stack.topic("deployments"))),
                WAIT_MS / 1000,
                "the manual retrain's deployment",
            )  # fmt: skip
            dep = next(
                d.json()
                for d in deployments.of(stack.topic("deployments"))
                if d.json().get("request_id") == rid
            )
            assert dep["version"] != before and dep["previous_version"] == before
            expect(trail.locator(".deployed-version")).to_have_text(dep["version"])
            expect(row.locator("td.version code")).to_have_text(dep["version"], timeout=5_000)
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

            # The trail is linkable: a fresh page opened at the permalink shows it.
            page.goto(f"{base}/dashboard#model={MODEL}&request={rid}")
            expect(page.locator("#trail li.step[data-kind=deployed]")).to_contain_text(
                dep["version"], timeout=10_000
            )
            assert errors == [], errors

            several_workers(browser.new_page(), base, worker.settings.web_port)
        finally:
            browser.close()


def several_workers(page: Page, base: str, port: int) -> None:
    """?workers=: models are gathered from the listed workers, details fetched from theirs.

    The same real worker is listed as http://localhost:<port>, another origin to the browser.
    The page's own origin is made to serve no model, so the model can only come from the listed
    worker; the route adds the CORS header the listed worker needs for a cross-origin read. An
    unreachable worker is reported and does not hide the others.
    """
    other = f"http://localhost:{port}"
    details: list[str] = []

    def own_status(route: Route) -> None:
        route.fulfill(json={"worker": "empty", "started": 0, "models": []})

    def with_cors(route: Route) -> None:
        details.append(route.request.url)
        resp = route.fetch()
        route.fulfill(response=resp, headers={**resp.headers, "access-control-allow-origin": "*"})

    page.route(f"{base}/api/status", own_status)
    page.route(f"{other}/api/**", with_cors)
    page.goto(f"{base}/dashboard?workers={other},http://127.0.0.1:9#model={MODEL}")
    row = page.locator(f'tr.model[data-model="{MODEL}"]')
    expect(row).to_have_attribute("data-worker", other, timeout=10_000)
    expect(
        page.locator('#errors li.worker-error[data-worker="http://127.0.0.1:9"]')
    ).to_be_visible()
    expect(page.locator('figure.plot[data-series="error"] path.threshold')).to_be_visible()
    assert f"{other}/api/models/{MODEL}" in details
