"""The per-model monitor and the router: decisions, muting, versions, snapshots."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.core.events import DeploymentEvent, MetricEvent, RetrainResult, SourceRef, encode
from streamproc.core.monitor import UNKNOWN_VERSION, ModelMonitor
from streamproc.core.policy import Policy, load_policy_text
from streamproc.core.router import Monitors, route
from streamproc.sim.scenarios import interactions, rule_model


def traffic(n: int, change_at: int, model: str = "m", seed: int = 1) -> list[tuple[str, bytes]]:
    initial = ("v1", rule_model("A", flip=0.05))
    out: list[tuple[str, bytes]] = []
    for x in interactions(
        model, lambda i: "A" if i < change_at else "B", lambda i: initial, 0, n, seed=seed
    ):
        out.append(("predictions", orjson.dumps(x.prediction)))
        out.append(("labels", orjson.dumps(x.label)))
    return out


def run(monitors: Monitors, records: list[tuple[str, bytes]], first: int = 0) -> list[Any]:
    emitted = []
    for i, (topic, raw) in enumerate(records, start=first):
        out = route(monitors, topic, raw, SourceRef(topic, 0, i), 0.0)
        emitted.extend(out.requests)
        if out.dead_letter:
            emitted.append(out.dead_letter)
    return emitted


def metric(value: float, ts: float, version: str | None = None) -> MetricEvent:
    return MetricEvent("m", ts, "drift", value, model_version=version)


def test_seed_steps_fire_on_3_and_5_when_each_retrain_deploys() -> None:
    mon = ModelMonitor("m")
    fired = []
    for step, v in enumerate((0.02, 0.05, 0.12, 0.03, 0.15), start=1):
        req = mon.on_metric(metric(v, 60.0 * step), SourceRef("metrics", 0, step))
        if req:
            fired.append(step)
            mon.on_deployment(
                DeploymentEvent(f"d{step}", "m", f"v{step}", "promote", 60.0 * step + 1)
            )
    assert fired == [3, 5]
    assert mon.version == "v5"


def test_pending_request_mutes_until_deployment_or_failure() -> None:
    mon = ModelMonitor("m")
    first = mon.on_metric(metric(0.5, 1.0), None)
    assert first is not None
    assert mon.on_metric(metric(0.6, 2.0), None) is None  # muted: a retrain is pending
    assert mon.counts["suppressed"] == 1
    mon.on_result(RetrainResult(first.request_id, "m", "rejected", 3.0))
    assert mon.on_metric(metric(0.7, 4.0), None) is not None


def test_pending_request_times_out_in_event_time() -> None:
    mon = ModelMonitor("m", Policy(pending_timeout_s=100.0))
    assert mon.on_metric(metric(0.5, 0.0), None) is not None
    assert mon.on_metric(metric(0.5, 50.0), None) is None
    assert mon.on_metric(metric(0.5, 150.0), None) is not None


def test_cooldown_spaces_requests() -> None:
    mon = ModelMonitor("m", Policy(cooldown_s=300.0))
    assert mon.on_metric(metric(0.5, 0.0), None) is not None
    mon.on_deployment(DeploymentEvent("d1", "m", "v2", "promote", 1.0))
    assert mon.on_metric(metric(0.5, 100.0), None) is None
    assert mon.on_metric(metric(0.5, 301.0), None) is not None


def test_metric_for_another_version_is_ignored_and_counted() -> None:
    mon = ModelMonitor("m")
    mon.on_deployment(DeploymentEvent("d1", "m", "v2", "promote", 1.0))
    assert mon.on_metric(metric(0.9, 2.0, version="v1"), None) is None
    assert mon.counts["stale_metrics"] == 1
    assert mon.on_metric(metric(0.9, 3.0, version="v2"), None) is not None


def test_first_version_reported_is_adopted() -> None:
    mon = ModelMonitor("m")
    assert mon.version == UNKNOWN_VERSION
    req = mon.on_metric(metric(0.9, 2.0, version="2024-05"), None)
    assert req is not None and req.model_version == "2024-05"


def test_redelivered_record_is_applied_once() -> None:
    monitors = Monitors()
    raw = orjson.dumps({"model_id": "m", "ts": 1, "name": "drift", "value": 0.5})
    first = route(monitors, "metrics", raw, SourceRef("metrics", 0, 7), 0.0)
    again = route(monitors, "metrics", raw, SourceRef("metrics", 0, 7), 0.0)
    assert len(first.requests) == 1 and again.requests == ()
    assert not first.redelivered and again.redelivered  # the worker counts it only once
    assert monitors.get("m").counts["redelivered"] == 1


def test_request_ids_are_deterministic_for_the_same_evidence() -> None:
    records = traffic(2500, change_at=1500)
    a, b = run(Monitors(), records), run(Monitors(), records)
    assert [r.request_id for r in a] == [r.request_id for r in b]
    assert len(a) == 1
    details = a[0].reasons[0].details
    # The reference starts with the 500-event warm-up and keeps learning while in control.
    assert details["reference_n"] >= 1000 and 1500 <= a[0].ts - 1_767_225_600 < 1700
    assert details["change_ts"] <= a[0].ts


def test_stationary_labelled_traffic_never_fires() -> None:
    assert run(Monitors(), traffic(6000, change_at=10**9, seed=5)) == []


def test_error_detector_can_be_switched_off_by_policy() -> None:
    book = load_policy_text("[default]\nerror = false\n")
    assert run(Monitors(book), traffic(2500, change_at=1500)) == []


def test_unexpected_record_kind_is_a_dead_letter_not_a_crash() -> None:
    out = route(Monitors(), "predictions", b"[1, 2]", SourceRef("predictions", 0, 0), 5.0)
    assert out.dead_letter is not None
    assert "not a JSON object" in out.dead_letter.error
    assert out.dead_letter.ts == 5.0


def test_deployment_resets_detectors_and_join_keeps_examples() -> None:
    monitors = Monitors()
    run(monitors, traffic(300, change_at=10**9))
    mon = monitors.get("m")
    assert mon.detectors["error"].n == 300
    dep = DeploymentEvent("d1", "m", "v2", "promote", 10.0)
    route(monitors, "deployments", encode(dep), SourceRef("deployments", 0, 0), 0.0)
    assert mon.version == "v2" and mon.detectors["error"].n == 0
    assert len(mon.training_examples()) == 300


@settings(max_examples=25, deadline=None)
@given(cut=st.integers(min_value=0, max_value=5000), change_at=st.integers(1100, 2200))
def test_snapshot_restore_continue_equals_never_stopping(cut: int, change_at: int) -> None:
    """Stop anywhere, snapshot, restore in a new process-like store, continue: same decisions."""
    records = traffic(2500, change_at=change_at, seed=change_at)
    records.insert(cut // 2, ("metrics", orjson.dumps(metric_json(0.5, 1.0))))
    straight = run(Monitors(), records)

    first = Monitors()
    before = run(first, records[:cut])
    saved = first.drain_dirty()
    second = Monitors(load=saved.get)
    after = run(second, records[cut:], first=cut)
    assert [r.request_id for r in before + after] == [r.request_id for r in straight]
    assert before + after == straight


def metric_json(value: float, ts: float) -> dict[str, Any]:
    return {"model_id": "m", "ts": ts, "name": "drift", "value": value}
