"""Issue 11's loop cases, each with its right value: canary traffic, a model still degraded after
a rejected retrain, the change-point estimate of an error alarm, and label shift."""

from __future__ import annotations

import random
from typing import Any

import pytest

from streamproc.core.changepoint import estimate_change
from streamproc.core.events import (
    DeploymentEvent,
    LabelEvent,
    PredictionEvent,
    RetrainRequest,
    RetrainResult,
)
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import Policy, PolicyError, load_policy_text


def feed(mon: ModelMonitor, i: int, version: str, pred: Any, label: Any, x: float = 0.0) -> Any:
    """One prediction and its label at event i (label at the same event time)."""
    ts = float(i)
    out = [
        mon.on_prediction(PredictionEvent(f"e{i}", "m", version, ts, pred, {"x": x}), None),
        mon.on_label(LabelEvent(f"e{i}", "m", ts, label), None),
    ]
    return [o for o in out if isinstance(o, RetrainRequest)]


def test_a_model_still_degraded_after_a_rejected_retrain_is_asked_about_again() -> None:
    """Error 10% then 90% from event 5,000; every retrain rejected: asked again with backoff."""
    rng = random.Random(5)
    mon = ModelMonitor("m")
    requests: list[tuple[int, RetrainRequest]] = []
    for i in range(40_000):
        wrong = rng.random() < (0.1 if i < 5000 else 0.9)
        for req in feed(mon, i, "v1", 1, 0 if wrong else 1):
            requests.append((i, req))
            mon.on_result(RetrainResult(req.request_id, "m", "rejected", float(i)))
    first_at, first = requests[0]
    assert first.reasons[0].signal == "error"
    assert 5000 <= first_at < 5300
    again = [(i, r) for i, r in requests[1:]]
    # A candidate rejected on ~80 post-change labels: the next one waits for a refit's training
    # set (refit_examples 500 + a holdout of 100: 600 labels; one deployed on fewer would be
    # refit anyway), then the post-change labels double (1,200), until a candidate was trained
    # on the whole window (1,000 post-change examples): another of the same data has no better
    # chance, and the backoff gives up.
    labels = [r.reasons[0].details["post_change_labels"] for _, r in again]
    assert labels == [600, 1200]
    assert mon.counts["degraded_window_full"] == 1 and mon.degraded is None
    for _, r in again:
        (reason,) = r.reasons
        assert reason.signal == "degraded"
        assert reason.threshold == pytest.approx(0.1, abs=0.03)  # the last good level
        assert reason.value > 0.8  # the last 200 errors at 90% (sd 0.02)
        assert reason.details["previous_result"] == "rejected"
        assert 5000 <= reason.details["change_ts"] <= first_at
        assert "still degraded after a rejected retrain" in reason.details["why"]
    # The watch survives a restart (here, mid-backoff; above, it had ended).
    mid = ModelMonitor("m")
    rng = random.Random(5)
    for i in range(5600):
        wrong = rng.random() < (0.1 if i < 5000 else 0.9)
        for req in feed(mid, i, "v1", 1, 0 if wrong else 1):
            mid.on_result(RetrainResult(req.request_id, "m", "rejected", float(i)))
    assert mid.degraded is not None and mid.degraded.trained_on > 0
    assert ModelMonitor.restore(mid.snapshot()).snapshot() == mid.snapshot()


def test_failed_re_requests_never_stop_the_backoff_as_if_a_candidate_were_judged() -> None:
    """The first request rejected, every re-request failed (a trainer down): no candidate was
    trained on the full window, so the backoff goes on doubling (600, 1,200, ... 19,200
    post-change labels); a failed request does not wait for a refit's training set."""
    rng = random.Random(5)
    mon = ModelMonitor("m")
    statuses = []
    for i in range(40_000):
        wrong = rng.random() < (0.1 if i < 5000 else 0.9)
        for req in feed(mon, i, "v1", 1, 0 if wrong else 1):
            statuses.append("failed" if statuses else "rejected")
            mon.on_result(RetrainResult(req.request_id, "m", statuses[-1], float(i)))
    assert len(statuses) == 7 and mon.degraded is not None
    assert "degraded_window_full" not in mon.counts


def test_a_model_that_recovers_by_itself_is_not_asked_again() -> None:
    rng = random.Random(6)
    mon = ModelMonitor("m")
    requests = []
    for i in range(20_000):
        p = 0.1 if i < 5000 or i >= 5400 else 0.9  # a bad spell of 400 labels
        for req in feed(mon, i, "v1", 1, 0 if rng.random() < p else 1):
            requests.append(req)
            mon.on_result(RetrainResult(req.request_id, "m", "failed", float(i)))
    # Asked at ~80 post-change labels, again at ~160 and ~320 (the last 200 errors still bad),
    # then at ~640 the last 200 are back at 10%: no more requests.
    assert [r.reasons[0].signal for r in requests] == ["error", "degraded", "degraded"]
    assert mon.counts["recovered_without_retrain"] == 1


@pytest.mark.parametrize("seed", range(20))
def test_change_point_estimate_lies_between_the_change_and_the_alarm(seed: int) -> None:
    """Error 10% -> 30% at event 3,000: the request's change_ts is within [3000, alarm]."""
    rng = random.Random(seed)
    mon = ModelMonitor("m")
    for i in range(8000):
        wrong = rng.random() < (0.1 if i < 3000 else 0.3)
        reqs = feed(mon, i, "v1", 1, 0 if wrong else 1)
        if reqs:
            change = reqs[0].reasons[0].details["change_ts"]
            assert 3000 <= change <= i
            return
    pytest.fail("no request in 5,000 labels at 30% error after 3,000 at 10%")


def test_change_point_estimate_on_regression_errors() -> None:
    rng = random.Random(2)
    errors = [abs(rng.gauss(0, 1)) for _ in range(700)] + [abs(rng.gauss(2, 1)) for _ in range(60)]
    k = estimate_change(errors)
    assert k is not None and 700 <= k <= 760
    assert estimate_change([0.0] * 100) is None  # no rise anywhere: no estimate
    assert estimate_change([0.0] * 10 + [1.0] * 9) is None  # too short to tell two levels
    assert estimate_change([0.0] * 50 + [1.0] * 50) == 50  # a clean step: exactly at it


def canary_traffic(
    mon: ModelMonitor, start: int, stop: int, rng: random.Random
) -> list[tuple[int, RetrainRequest]]:
    """10% of predictions by v2 (no deployment event); at 3,000 a feature shifts by 1 sd and
    accuracy falls from 90% to 60%, for both versions."""
    out = []
    for i in range(start, stop):
        version = "v2" if rng.random() < 0.1 else "v1"
        after = i >= 3000
        x = rng.gauss(1.0 if after else 0.0, 1.0)
        right = rng.random() < (0.6 if after else 0.9)
        out += [(i, r) for r in feed(mon, i, version, 1, 1 if right else 0, x)]
    return out


def test_canary_minority_never_resets_the_majority_and_the_change_is_caught() -> None:
    mon = ModelMonitor("m")
    rng = random.Random(4)
    assert canary_traffic(mon, 0, 3000, rng) == []
    # Before the change, the majority's detectors saw every v1 event (today: n = 8 at most).
    v1_labels = 3000 - mon.counts["stale_joins"]
    assert 2600 < v1_labels < 2800
    assert mon.detectors["error"].n == v1_labels
    assert mon.detectors["feature:x"].n == v1_labels
    requests = canary_traffic(mon, 3000, 8000, rng)
    assert requests, "no request in 8,000 events"
    first_at, first = requests[0]
    assert 3000 <= first_at < 4000
    assert first.model_version == "v1"
    assert mon.version == "v1" and mon.counts.get("version_switches", 0) == 0
    # The canary has its own signals, shown in the status: every v2 event went there.
    status = {s.version: s for s in mon.version_status()}
    assert set(status) == {"v1", "v2"}
    assert status["v1"].current and not status["v2"].current
    assert 0.05 < status["v2"].share < 0.15
    assert status["v2"].labels == status["v2"].predictions == mon.counts["stale_joins"]
    v2 = {s.signal: s for s in status["v2"].signals}
    assert set(v2) == {"error", "feature:x", "prediction"}
    assert v2["feature:x"].n + v2["feature:x"].fired > 0
    restored = ModelMonitor.restore(mon.snapshot())
    assert restored.snapshot() == mon.snapshot()


def test_without_deployment_events_the_current_version_follows_the_traffic_majority() -> None:
    mon = ModelMonitor("m")
    switched_at = None
    for i in range(3000):  # blue/green: v1 only, then v2 only
        feed(mon, i, "v1" if i < 1500 else "v2", 1, 1)
        if switched_at is None and mon.version == "v2":
            switched_at = i
    assert mon.version == "v2"
    assert mon.counts["version_switches"] == 1
    # v2 became current once it carried the majority (half-life 1,000 predictions), not at its
    # first prediction, and its detectors kept what they saw before: all 1,500 v2 labels.
    assert switched_at is not None and 1600 < switched_at < 2500
    assert mon.detectors["error"].n == 1500
    assert [s.version for s in mon.version_status()] == ["v2", "v1"]


def test_versions_tracked_besides_the_current_are_bounded() -> None:
    mon = ModelMonitor("m")
    for i in range(2000):
        version = "v1" if i % 2 else f"shadow{i % 40}"  # 20 minority versions
        feed(mon, i, version, 1, 1)
    assert mon.version == "v1"
    # The 8 most recently seen stay; each of the others was evicted (and counted) when a newer
    # one came.
    assert sorted(mon.others.sets) == sorted(f"shadow{k}" for k in range(24, 40, 2))
    assert mon.others.evicted >= 12


def test_status_api_detail_shows_each_served_version_with_its_signals() -> None:
    from streamproc.service.board import StatusBoard

    mon = ModelMonitor("m")
    canary_traffic(mon, 0, 2000, random.Random(9))
    board = StatusBoard()
    board.applied(mon, partition=0)
    detail = board.model("m")
    assert detail is not None
    versions = {v["version"]: v for v in detail["versions"]}
    assert versions["v1"]["current"] and not versions["v2"]["current"]
    assert versions["v2"]["labels"] == mon.counts["stale_joins"] > 100
    names = {s["signal"] for s in versions["v2"]["signals"]}
    assert names == {"error", "feature:x", "prediction"}
    assert versions["v1"]["traffic_share"] > 0.8


# --------------------------------------------------------------------------- label shift


def _label_shift_run(
    policy: Policy | None, p_before: float, p_after: float, pred: Any = None, seed: int = 7
) -> tuple[ModelMonitor, list[tuple[int, RetrainRequest]]]:
    """Labels 1 with probability p_before, then p_after from event 5,000; predictions a fair
    coin independent of the labels (error 50% throughout) unless ``pred`` is fixed."""
    rng = random.Random(seed)
    mon = ModelMonitor("m", policy) if policy is not None else ModelMonitor("m")
    requests = []
    for i in range(12_000):
        label = int(rng.random() < (p_before if i < 5000 else p_after))
        guess = int(rng.random() < 0.5) if pred is None else pred
        for req in feed(mon, i, "v1", guess, label):
            requests.append((i, req))
            mon.on_result(RetrainResult(req.request_id, "m", "rejected", float(i)))
    return mon, requests


def test_a_label_shift_that_leaves_the_error_unchanged_asks_for_a_retrain() -> None:
    """50% -> 20% positives at 5,000, the error at 50% before and after: the label signal."""
    mon, requests = _label_shift_run(None, 0.5, 0.2)
    first_at, first = requests[0]
    assert [r.signal for r in first.reasons] == ["label"]
    assert 5000 <= first_at < 5400
    assert 5000 <= first.reasons[0].details["change_ts"] <= first_at
    assert "fired:error" not in mon.counts  # the error never rose


def test_a_label_shift_that_lowers_the_error_is_no_reason_to_retrain() -> None:
    """A constant prediction of 1, positives 60% -> 95%: the error falls from 40% to 5%."""
    mon, requests = _label_shift_run(None, 0.6, 0.95, pred=1)
    assert requests == []
    assert mon.counts["label_shift_with_lower_error"] >= 1


def test_label_shift_can_be_turned_off() -> None:
    policy = load_policy_text("[default]\nlabel_shift = false\n").default
    mon, requests = _label_shift_run(policy, 0.5, 0.2)
    assert requests == [] and "label" not in mon.detectors
    with pytest.raises(PolicyError, match="label_shift must be true or false"):
        load_policy_text('[default]\nlabel_shift = "no"\n')


def test_a_regression_model_has_no_label_signal() -> None:
    rng = random.Random(3)
    mon = ModelMonitor("m")
    for i in range(3000):
        y = rng.gauss(100.0, 5.0) + (40.0 if i >= 1500 else 0.0)
        feed(mon, i, "v1", y + rng.gauss(0.0, 1.0), y)
    assert mon.scorer.task == "regression" and "label" not in mon.detectors


@pytest.mark.parametrize(("trained_on", "refit_due"), [(80, 500), (499, 500), (500, 0), (900, 0)])
def test_only_a_version_trained_on_few_examples_is_refit(trained_on: int, refit_due: int) -> None:
    mon = ModelMonitor("m")
    dep = DeploymentEvent(
        "d-1", "m", "v2", "promote", 10.0, request_id="rr-1", metrics={"train": trained_on}
    )
    mon.on_deployment(dep)
    assert mon.refit_due == refit_due


def test_the_second_alarm_of_a_rejected_change_waits_for_the_backoff() -> None:
    """A constant prediction: the error and the labels' frequencies move together at 5,000
    (positives 90% -> 70%). The label signal fires first; after its request is rejected, the
    error alarm about the same change is not a new request: only the backoff's re-requests
    follow (each as the post-change examples double)."""
    mon, requests = _label_shift_run(None, 0.9, 0.7, pred=1, seed=8)
    first_at, first = requests[0]
    assert [r.signal for r in first.reasons] == ["label"]
    assert 5000 <= first_at < 5400
    assert [r.reasons[0].signal for _, r in requests[1:]] == ["degraded"] * (len(requests) - 1)
    assert len(requests) >= 3
    assert mon.counts["alarm_of_an_answered_change"] == 1


@pytest.mark.parametrize(
    ("policy_text", "floor"),
    [
        ("[default]\n", 600),  # 500 to train on and a holdout of 100
        ("[default]\ntraining_window = 500\n", 500),  # the window full: all a retry can have
        ("[default]\nrefit_examples = 0\n", 0),  # no refits: the plain doubling
    ],
)
def test_the_retry_floor_after_a_rejection_is_one_the_window_can_reach(
    policy_text: str, floor: int
) -> None:
    """The floor is what a refit trains on, capped by what the training window holds (count
    here; bytes too, through its capacity)."""
    mon = ModelMonitor("m", load_policy_text(policy_text).default)
    assert mon._refit_labels() == floor
    for i in range(50):  # examples of a known size: the byte cap's estimate
        feed(mon, i, "v1", 1, 1, x=float(i))
    assert mon._refit_labels() == min(floor, mon.examples.capacity())


def test_the_retry_floor_follows_a_byte_capped_window() -> None:
    mon = ModelMonitor("m", load_policy_text("[default]\ntraining_window_bytes = 10000\n").default)
    for i in range(50):
        feed(mon, i, "v1", 1, 1, x=float(i))
    room = mon.examples.capacity()
    assert 300 < room < 600  # about 27 bytes an example: the bytes, not the count, bound it
    assert mon._refit_labels() == room


@pytest.mark.parametrize("scale", [1.0, 1e200])
def test_errors_near_the_float_limit_are_judged_as_smaller_ones(scale: float) -> None:
    """A regression model's errors can be huge (a prediction of 1e200): their squares overflow
    a float. The change estimate and the still-degraded test scale them instead of raising
    (an OverflowError dead-lettered every label of such a model while a retrain was out)."""
    from streamproc.core.degraded import DegradedWatch

    rng = random.Random(2)
    before = [scale * (1.0 + rng.random()) for _ in range(60)]
    after = [scale * (3.0 + rng.random()) for _ in range(40)]
    assert estimate_change(before + after) in range(58, 63)
    watch = DegradedWatch("r1", good_level=1.5 * scale, change_ts=0.0, labels=40, next_at=80)
    assert watch.still_degraded(after)
    assert not watch.still_degraded(before)
    # Sums that overflow though no single square does; an infinite error (an old snapshot's).
    low = DegradedWatch("r1", good_level=1.0, change_ts=0.0, labels=40, next_at=80)
    assert low.still_degraded([0.0, 2e154] * 20)
    assert watch.still_degraded([float("inf"), *before[1:]])


def test_a_huge_regression_error_is_bounded_and_survives_a_restart() -> None:
    """A squared error of a prediction 1e200 off overflowed to infinity: the rollback watch's
    sums became infinite, the snapshot wrote them as null (JSON has no infinity), and the
    restored monitor raised on its next label, dead-lettering every label after. Errors are
    bounded by MAX_ERROR now: the restored monitor goes on as the one that never stopped."""
    from streamproc.core.errors import MAX_ERROR
    from streamproc.core.policy import ErrorRule

    policy = Policy(task="regression", error=ErrorRule(loss="squared"))
    mon = ModelMonitor("m", policy)
    rng = random.Random(4)
    for i in range(600):
        feed(mon, i, "v1", 10.0 + rng.gauss(0, 1), 10.0)
    mon.on_deployment(DeploymentEvent("d-1", "m", "v2", "promote", 600.0, previous_version="v1"))
    assert mon.watch is not None
    for i in range(600, 605):
        feed(mon, i, "v2", 1e200, 10.0)
    assert mon.scorer.loss == "squared" and max(mon._recent_errors("v2", 10)) == MAX_ERROR
    again = ModelMonitor.restore(mon.snapshot(), policy)
    for i in range(605, 700):
        pred = 10.0 + rng.gauss(0, 1)
        assert feed(again, i, "v2", pred, 10.0) == feed(mon, i, "v2", pred, 10.0)
    assert again.snapshot() == mon.snapshot()
