"""The dashboard in a real browser (headless Chromium) against a real worker.

What a person sees: the model appears with its version; its error plot shows the statistic and
the threshold; a drift's automatic retrain and a manual one put markers on the plot; clicking a
marker shows the request's audit trail; the version updates without a reload.
"""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from playwright.sync_api import Page, Route, expect, sync_playwright

from streamproc.devkit.harness import as_json, missing_tool, produce
from streamproc.sim.scenarios import interactions, rule_model

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
# Debian's chromium, offline: no sandbox as root, no GPU, no calls home.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MODEL = "ads-ctr"
TOKEN = "s3cret-token"
WAIT_MS = 45_000
T = TypeVar("T")
# True once the decisions table has requests, and as many results as requests.
EVERY_REQUEST_ANSWERED = """() => {
  const kinds = [...document.querySelectorAll("#decisions tr.decision")].map((r) => r.dataset.kind);
  const n = (...k) => kinds.filter((x) => k.includes(x)).length;
  return n("requested") > 0 && n("requested") === n("accepted", "rejected", "failed");
}"""
NONE = "\u2013"  # what the page shows for nothing (an en dash)
# Each value that fired in an SVG plot, with the y of the threshold line drawn at its x
# (interpolated along the dashed path's segments; SVG y grows downwards).
FIRINGS = """(svg) => {
  const pts = [], re = /([ML])([-\\d.]+),([-\\d.]+)/g;
  for (const m of svg.querySelector("path.threshold").getAttribute("d").matchAll(re))
    pts.push({ move: m[1] === "M", x: +m[2], y: +m[3] });
  const lineY = (x) => {
    for (let i = 1; i < pts.length; i++) {
      const a = pts[i - 1], b = pts[i];
      if (b.move || a.x > x || x > b.x) continue;
      return b.x === a.x ? Math.max(a.y, b.y) : a.y + ((b.y - a.y) * (x - a.x)) / (b.x - a.x);
    }
    return null;
  };
  return [...svg.querySelectorAll("circle.fired")].map((c) => ({
    x: +c.getAttribute("cx"), y: +c.getAttribute("cy"), thresholdY: lineY(+c.getAttribute("cx")),
    statistic: +c.dataset.statistic, threshold: +c.dataset.threshold, ts: +c.dataset.ts }));
}"""


def feed(stack: Any, start: int, count: int, chunk: int = 0) -> None:
    """Concept A, then B from 1200 on: the served rule is wrong half the time, the CUSUM fires.

    In chunks a moment apart, the worker takes (and the plots sample) one batch per chunk.
    """
    served = ("v1", rule_model("A", flip=0.05))
    concept = lambda i: "A" if i < 1200 else "B"  # noqa: E731
    step = chunk or count
    for first in range(start, start + count, step):
        batch = list(interactions(MODEL, concept, lambda i: served, first, step, seed=11))
        produce(
            stack.bootstrap,
            [(stack.topic("predictions"), MODEL, as_json(x.prediction)) for x in batch]
            + [(stack.topic("labels"), MODEL, as_json(x.label)) for x in batch],
        )
        if chunk:
            time.sleep(0.3)


def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run Kafka client code on a thread of its own: Playwright's sync API owns this one's loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


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


def test_dashboard_plots_decisions_and_shows_audit_trails(stack: Any, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        missing_tool(f"{CHROMIUM} is not installed: apt-get install -y chromium")
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
            off_loop(feed, stack, 0, 600)
            row = page.locator(f'tr.model[data-model="{MODEL}"]')
            expect(row.locator("td.version")).to_contain_text("v1", timeout=WAIT_MS)
            off_loop(feed, stack, 600, 1000, 40)  # the drift at 1200, and its detection
            off_loop(feed, stack, 1600, 800)  # enough of the new concept to learn it alone
            row.click()
            expect(page).to_have_url(re.compile(f"#model={MODEL}$"))
            error_plot = page.locator('figure.plot[data-series="error"] svg')
            expect(error_plot).to_be_visible()
            expect(error_plot.locator("path.threshold")).to_have_attribute("d", re.compile("^M.*L"))
            expect(error_plot.locator("path.statistic")).to_have_attribute("d", re.compile("^M.*L"))
            expect(page.locator("#legend [data-kind=requested]")).to_be_visible()

            # The drift fired the error CUSUM: its request is on the plot. Once the traffic is
            # processed and every request has its result, a manual retrain starts one of its own
            # (not coalesced into another) and learns the new concept only: it is promoted.
            auto = error_plot.locator('g.marker[data-kind="requested"]').first
            expect(auto).to_be_visible(timeout=WAIT_MS)
            # The value that fired is on the plot, drawn above the threshold line, where the
            # request's marker is; and it is the value the request gives as its reason.
            expect(error_plot.locator("circle.fired").first).to_be_visible(timeout=WAIT_MS)
            firings = error_plot.evaluate(FIRINGS)
            assert firings, "no firing drawn"
            for f in firings:
                assert f["thresholdY"] is not None, f"no threshold line under the firing {f}"
                assert f["y"] <= f["thresholdY"] + 0.1, f"firing drawn below the threshold: {f}"
                assert f["statistic"] >= f["threshold"], f
            # A CUSUM fires on the event that takes it past its threshold, often by a little:
            # the point is strictly above the line (SVG y grows downwards), however close.
            # Past it by 1% or more (a visible distance), it must be strictly above.
            clear = [f for f in firings if f["statistic"] >= 1.01 * f["threshold"]]
            assert all(f["y"] < f["thresholdY"] for f in clear), clear
            auto_x = float(auto.get_attribute("transform").split("(")[1].split(",")[0])
            assert any(abs(f["x"] - auto_x) < 1 for f in firings), (auto_x, firings)
            reason = orjson.loads(
                urllib.request.urlopen(f"{base}/api/models/{MODEL}", timeout=10).read()
            )["decisions"]
            auto_reasons = [r for d in reason if d["kind"] == "requested"
                            for r in d["event"]["reasons"] if r["signal"] == "error"]  # fmt: skip
            assert {round(r["value"], 6) for r in auto_reasons} <= {
                round(f["statistic"], 6) for f in firings
            }, (auto_reasons, firings)
            # No panel for the policy's "drift" metric: this model never reported one.
            expect(page.locator('figure.plot[data-series="metric:drift"]')).to_have_count(0)
            off_loop(stack.wait_processed)
            page.wait_for_function(EVERY_REQUEST_ANSWERED, timeout=WAIT_MS)
            expect(row.locator("td.last-result")).not_to_have_text(NONE)
            auto_rid = auto.get_attribute("data-request-id")
            page.locator(f'#decisions tr.decision[data-request-id="{auto_rid}"]').first.click()
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
            def of_rid(r: Any) -> list[dict[str, Any]]:
                deps = [d.json() for d in r.of(stack.topic("deployments"))]
                return [d for d in deps if d.get("request_id") == rid]

            off_loop(deployments.wait_for, of_rid, WAIT_MS / 1000, "the manual deployment")
            dep = of_rid(deployments)[0]
            assert dep["version"] != before
            expect(trail.locator(".deployed-version")).to_have_text(dep["version"])
            expect(trail.locator(".previous-version")).to_have_text(str(dep["previous_version"]))
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
    expect(page.locator('figure.plot[data-series="error"] svg')).to_be_visible()
    assert f"{other}/api/models/{MODEL}" in details
