"""Trigger policy rules, through the monitor as the agents use it."""

from __future__ import annotations

import random

from streamproc.core.events import DeploymentEvent, LabelEvent, MetricEvent, PredictionEvent
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import load_policy_text


def monitor(toml: str) -> ModelMonitor:
    return ModelMonitor("m", load_policy_text(toml).for_model("m"))


def metric(mon: ModelMonitor, name: str, value: float, ts: float) -> object:
    return mon.on_metric(MetricEvent("m", ts, name, value), None)


def test_confirmation_needs_k_alarms_within_n_samples() -> None:
    mon = monitor("[default]\nconfirm = { k = 2, n = 3 }\n")
    assert metric(mon, "drift", 0.5, 1) is None  # one alarm is not enough
    assert metric(mon, "drift", 0.0, 2) is None
    assert metric(mon, "drift", 0.0, 3) is None
    assert metric(mon, "drift", 0.5, 4) is None  # the first alarm is now 3 samples back
    req = metric(mon, "drift", 0.5, 5)
    assert req is not None and mon.counts["unconfirmed"] == 2


def test_quorum_all_waits_for_every_signal() -> None:
    toml = """[default]
quorum = "all"
error = false
drift = false
metrics = [{ name = "drift", above = 0.1 }, { name = "auc", below = 0.7 }]
"""
    mon = monitor(toml)
    assert metric(mon, "drift", 0.5, 1) is None
    req = metric(mon, "auc", 0.6, 2)
    assert req is not None
    assert sorted(r.signal for r in req.reasons) == ["metric:auc", "metric:drift"]


def test_quorum_window_expires_old_alarms() -> None:
    toml = """[default]
quorum = 2
quorum_window_s = 10
error = false
drift = false
metrics = [{ name = "drift", above = 0.1 }, { name = "auc", below = 0.7 }]
"""
    mon = monitor(toml)
    assert metric(mon, "drift", 0.5, 0) is None
    assert metric(mon, "auc", 0.6, 100) is None  # the drift alarm is 100 s old
    assert metric(mon, "drift", 0.5, 105) is not None


def test_budget_caps_requests_per_period() -> None:
    mon = monitor("[default]\nbudget = { max = 2, per_s = 1000 }\n")
    fired = []
    for ts in (0, 100, 200, 300, 1100):
        req = metric(mon, "drift", 0.5, ts)
        if req is not None:
            fired.append(ts)
            mon.on_deployment(DeploymentEvent(f"d{ts}", "m", f"v{ts}", "promote", ts + 1))
    assert fired == [0, 100, 1100]
    assert mon.trigger.suppressed["budget"] == 2


def test_scheduled_fallback_by_events_and_by_age() -> None:
    mon = monitor("[default]\nschedule = { max_events = 50 }\ndrift = false\n")
    reqs = [
        mon.on_prediction(PredictionEvent(f"e{i}", "m", "v1", float(i), prediction=1), None)
        for i in range(60)
    ]
    fired = [i for i, r in enumerate(reqs) if r is not None]
    assert fired == [49]
    assert reqs[49].reasons[0].signal == "schedule"
    assert reqs[49].reasons[0].detector == "max_events"

    aged = monitor("[default]\nschedule = { max_age_s = 3600 }\ndrift = false\n")
    aged.on_deployment(DeploymentEvent("d1", "m", "v2", "promote", 0.0))
    assert metric(aged, "other", 1.0, 1800) is None
    req = metric(aged, "other", 1.0, 3600)
    assert req is not None and req.reasons[0].detector == "max_age"


def test_warmup_events_keep_a_new_version_from_being_retrained_at_once() -> None:
    mon = monitor("[default]\nwarmup_events = 10\ndrift = false\n")
    assert metric(mon, "drift", 0.5, 1) is None
    assert mon.trigger.suppressed["warmup"] == 1
    for i in range(10):
        mon.on_prediction(PredictionEvent(f"e{i}", "m", "v1", float(i), prediction=1), None)
    assert metric(mon, "drift", 0.5, 20) is not None


def test_feature_drift_fires_with_evidence_and_is_label_free() -> None:
    rng = random.Random(2)
    mon = ModelMonitor("m")
    req = None
    for i in range(4000):
        shift = 1.0 if i >= 2000 else 0.0
        ev = PredictionEvent(
            f"e{i}", "m", "v1", float(i), prediction=1, features={"x": rng.gauss(shift, 1)}
        )
        req = mon.on_prediction(ev, None)
        if req is not None:
            break
    assert req is not None
    reason = req.reasons[0]
    assert reason.signal == "feature:x" and reason.detector == "rank_cusum"
    assert 2000 <= req.ts < 2150
    assert reason.details["change"] == "mean_up_1sd"
    assert reason.details["reference_n"] == 1000
    assert reason.value >= reason.threshold


def test_categorical_feature_shift_is_caught_and_prediction_drift_too() -> None:
    rng = random.Random(4)
    mon = ModelMonitor("m")
    signals = set()
    for i in range(8000):
        after = i >= 3000
        country = rng.choices("abc", [0.35, 0.3, 0.35] if after else [0.5, 0.3, 0.2])[0]
        pred = rng.random() < (0.8 if after else 0.5)
        ev = PredictionEvent(f"e{i}", "m", "v1", float(i), prediction=pred,
                             features={"country": country})  # fmt: skip
        req = mon.on_prediction(ev, None)
        if req is not None:
            assert req.ts >= 3000
            signals.update(r.signal for r in req.reasons)
            mon.on_deployment(DeploymentEvent(f"d{i}", "m", f"v{i}", "promote", float(i)))
            break
    assert signals & {"feature:country", "prediction"}


def test_missing_values_of_a_numeric_feature_are_tested() -> None:
    rng = random.Random(6)
    mon = ModelMonitor("m")
    req = None
    for i in range(6000):
        value = None if (i >= 2000 and rng.random() < 0.2) else rng.gauss(0, 1)
        req = mon.on_prediction(
            PredictionEvent(f"e{i}", "m", "v1", float(i), prediction=1, features={"x": value}),
            None,
        )
        if req is not None:
            break
    assert req is not None and req.reasons[0].details["change"] == "missing_up"


def test_labels_of_another_version_do_not_feed_the_error_detector() -> None:
    mon = ModelMonitor("m")
    mon.on_deployment(DeploymentEvent("d", "m", "v2", "promote", 0.0))
    for i in range(800):
        mon.on_prediction(PredictionEvent(f"e{i}", "m", "v1", float(i), prediction=True), None)
        mon.on_label(LabelEvent(f"e{i}", "m", float(i), label=False), None)
    assert mon.detectors["error"].n == 0
    assert mon.counts["stale_joins"] == 800


def test_trigger_state_is_named_and_the_positional_form_saved_before_still_restores() -> None:
    from streamproc.core.events import Reason, to_dict
    from streamproc.core.policy import Policy
    from streamproc.core.trigger import ActiveAlarm, Pending, Trigger

    trig = Trigger(Policy(quorum="all"))
    r = Reason("error", "cusum", 14.2, 13.8, 600)
    assert trig.offer(r, ts=5.0, signals=2) is None  # waits for the second signal
    trig.requested("rr-1", ts=6.0)
    s = trig.state()
    assert s["active"]["error"] == {"ts": 5.0, "reason": to_dict(r)}
    assert s["pending"] == {"request_id": "rr-1", "ts": 6.0}
    old = {**s, "active": {"error": [5.0, to_dict(r)]}, "pending": ["rr-1", 6.0]}  # before
    again = Trigger.from_state(old, Policy(quorum="all"))
    assert again.active == {"error": ActiveAlarm(5.0, to_dict(r))}
    assert again.pending == Pending("rr-1", 6.0)
    assert again.state() == s
