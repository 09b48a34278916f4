"""The Grafana dashboard and the Prometheus alert rules in deploy/ use only series a worker
exports, their PromQL parses, and every alert fires and stays quiet when its unit tests say.

promtool (Prometheus' own checker) parses and evaluates the rules: ``STREAMPROC_PROMTOOL``, else
``promtool`` on PATH (CI installs Debian's ``prometheus`` package for it: 2.42 on Debian 12).
Without it those tests skip (fail with ``STREAMPROC_REQUIRE_TOOLS``); the checks of names and
layout need nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamproc.devkit.harness import missing_tool
from streamproc.service.commits import CommitGap
from streamproc.service.metrics import Metrics

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "streamproc-alerts.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "streamproc-alerts.test.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "streamproc-dashboard.json"
# What the issue asks the rules to catch, by alert name.
ALERTS = {
    "StreamprocWorkerDown",
    "StreamprocWorkerStalled",
    "StreamprocCommitsBehind",
    "StreamprocProcessingLagHigh",
    "StreamprocDeadLetterRateHigh",
    "StreamprocRetrainFailed",
    "StreamprocRollback",
}
SERIES = re.compile(r"\b(streamproc_[a-z0-9_]+|up)\b")
# Grafana's variables, replaced by values Prometheus accepts, to parse a panel's query.
GRAFANA_VARS = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "6h",
    "$job": "streamproc-worker",
    "$instance": ".*",
    "$model": ".*",
}


@cache
def exported() -> frozenset[str]:
    """Every series name a worker's /metrics can hold, from the real ``Metrics``."""
    names = {"up"}  # Prometheus adds it to every scraped target
    metrics = Metrics(signals=lambda: {})
    CommitGap(30.0, metrics.registry)  # as the worker registers it (service/worker.py)
    for family in metrics.registry.collect():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
            "gauge": ("",),
        }[family.type]
        names.update(family.name + s for s in suffixes)
    return frozenset(names)


@cache
def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for group in doc["groups"] for r in group["rules"]]


@cache
def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard: panels, variables, annotations."""
    exprs = [t["expr"] for p in panels() for t in p["targets"]]
    variables = [v["definition"] for v in dashboard()["templating"]["list"] if v["type"] == "query"]
    for query in variables:
        match = re.fullmatch(r"label_values\((.+), \w+\)", query)
        assert match, f"variable query {query!r} is not label_values(selector, label)"
        exprs.append(match.group(1))
    exprs += [a["expr"] for a in dashboard()["annotations"]["list"]]
    return exprs


def promtool() -> str:
    path = os.environ.get("STREAMPROC_PROMTOOL") or shutil.which("promtool")
    if not path:
        missing_tool("no promtool: apt-get install prometheus (Debian's package has it), or set "
                     "STREAMPROC_PROMTOOL to a promtool from a Prometheus release")  # fmt: skip
    assert path is not None
    return path


def run_promtool(*args: str, cwd: Path) -> str:
    run = subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


# --------------------------------------------------------------------------- names


def test_exported_names_come_from_the_worker_metrics() -> None:
    # The reference set itself: a renamed metric in metrics.py must show up here.
    assert {
        "streamproc_events_total",
        "streamproc_dead_letters_total",
        "streamproc_processing_lag_seconds",
        "streamproc_retrain_duration_seconds_bucket",
        "streamproc_signal_fired_total",
        "streamproc_signal_threshold",
        "streamproc_uncommitted_age_seconds",
    } <= exported()


@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_every_series_used_is_one_the_worker_exports(source: str) -> None:
    exprs = [r["expr"] for r in rules()] if source == "rules" else dashboard_queries()
    assert exprs
    for expr in exprs:
        used = set(SERIES.findall(expr))
        assert used, f"{expr!r} reads no streamproc series"
        assert used <= exported(), f"{expr!r} reads {sorted(used - exported())}, not exported"


def test_every_streamproc_series_but_the_help_is_on_the_dashboard() -> None:
    used = {name for expr in dashboard_queries() for name in SERIES.findall(expr)}
    unused = {n for n in exported() if not n.endswith(("_sum", "_count"))} - used
    assert unused == set(), f"series on no panel: {sorted(unused)}"


# --------------------------------------------------------------------------- alert rules


def test_rules_cover_each_failure_with_a_severity_and_a_text() -> None:
    assert {r["alert"] for r in rules()} == ALERTS
    for rule in rules():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description"}, rule["alert"]


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    cases: dict[str, list[bool]] = {}
    for group in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in group["alert_rule_test"]:
            cases.setdefault(case["alertname"], []).append(bool(case["exp_alerts"]))
    assert set(cases) == ALERTS
    for name, fires in cases.items():
        assert True in fires and False in fires, name


def test_promtool_checks_the_rules() -> None:
    out = run_promtool("check", "rules", RULES.name, cwd=RULES.parent)
    assert f"SUCCESS: {len(rules())} rules found" in out, out


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    out = run_promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert "SUCCESS" in out, out


# --------------------------------------------------------------------------- dashboard


def test_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    """promtool parses each query (Grafana's variables set to values) as a recording rule."""
    exprs = dashboard_queries()
    checked = []
    for i, expr in enumerate(exprs):
        for var in sorted(GRAFANA_VARS, key=len, reverse=True):
            expr = expr.replace(var, GRAFANA_VARS[var])
        assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
        checked.append({"record": f"dashboard:query_{i}", "expr": expr})
    file = tmp_path / "dashboard-queries.yaml"
    file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": checked}]}))
    out = run_promtool("check", "rules", file.name, cwd=tmp_path)
    assert f"SUCCESS: {len(exprs)} rules found" in out, out


def test_dashboard_panels_tile_the_grid_and_read_the_chosen_datasource() -> None:
    doc = dashboard()
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    (ds,) = [v for v in doc["templating"]["list"] if v["type"] == "datasource"]
    assert ds["query"] == "prometheus"
    cells: set[tuple[int, int]] = set()
    for p in doc["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        columns, rows = range(g["x"], g["x"] + g["w"]), range(g["y"], g["y"] + g["h"])
        mine = {(x, y) for x in columns for y in rows}
        assert not mine & cells, f"panel {p['title']!r} overlaps another"
        cells |= mine
    for p in panels():
        assert p["datasource"]["uid"] == "${" + ds["name"] + "}", p["title"]
        assert p["targets"] and p["description"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]


def test_dashboard_filters_every_panel_by_the_job_and_worker_variables() -> None:
    for p in panels():
        for t in p["targets"]:
            assert 'job="$job"' in t["expr"] and 'instance=~"$instance"' in t["expr"], p["title"]
