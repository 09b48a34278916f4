"""Issue 11's loop cases, each with its right value: canary traffic, a model still degraded after
a rejected retrain, and the change-point estimate of an error alarm."""

from __future__ import annotations

import random
from typing import Any

import pytest

from streamproc.core.changepoint import estimate_change
from streamproc.core.events import LabelEvent, PredictionEvent, RetrainRequest, RetrainResult
from streamproc.core.monitor import ModelMonitor


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
    # Each time the post-change labels double: ~2x, 4x, ... the first request's count, until the
    # 35k post-change labels run out (the first at ~80 labels gives 8 more before 40,000).
    assert 6 <= len(again) <= 10
    gaps = [b - a for (a, _), (b, _) in zip(requests, requests[1:], strict=False)]
    assert all(g2 >= 1.8 * g1 for g1, g2 in zip(gaps, gaps[1:], strict=False))
    for _, r in again:
        (reason,) = r.reasons
        assert reason.signal == "degraded"
        assert reason.threshold == pytest.approx(0.1, abs=0.03)  # the last good level
        assert reason.value > 0.8  # the last 200 errors at 90% (sd 0.02)
        assert reason.details["previous_result"] == "rejected"
        assert 5000 <= reason.details["change_ts"] <= first_at
        assert "still degraded after a rejected retrain" in reason.details["why"]
    # The watch survives a restart.
    assert ModelMonitor.restore(mon.snapshot()).snapshot() == mon.snapshot()


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
    assert estimate_change([1.0, 0.0] * 200) is None or estimate_change([0.0] * 100) is None
