"""A label-free alarm waits for labels of predictions made after it (core/labelwait.py): it asks
only if they show the error rose, trains on them, and a rejected retrain is asked about again."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

from streamproc.core.events import (
    LabelEvent,
    PredictionEvent,
    RetrainRequest,
    RetrainResult,
)
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import MIN_HOLDOUT, load_policy_text
from streamproc.core.retrain import training_span

LAG = 50
SHIFT_AT = 3000


def play(
    mon: ModelMonitor,
    n: int,
    error_after: float,
    answer: Callable[[RetrainRequest, int], str | None] = lambda r, i: None,
    labels_until: int | None = None,
    seed: int = 3,
    step: float = 1.0,
) -> list[tuple[int, RetrainRequest]]:
    """Feature x moves from N(0, 1) to N(4, 1) at SHIFT_AT; the error goes from 10% to
    ``error_after``; labels come LAG events late (none after ``labels_until``)."""
    rng = random.Random(seed)
    truth: dict[int, int] = {}
    out: list[tuple[int, RetrainRequest]] = []
    for i in range(n):
        x = rng.gauss(4.0 if i >= SHIFT_AT else 0.0, 1.0)
        wrong = rng.random() < (error_after if i >= SHIFT_AT else 0.1)
        truth[i] = 0 if wrong else 1
        emitted = [
            mon.on_prediction(PredictionEvent(f"e{i}", "m", "v1", i * step, 1, {"x": x}), None)
        ]
        j = i - LAG
        if j >= 0 and (labels_until is None or j < labels_until):
            emitted.append(mon.on_label(LabelEvent(f"e{j}", "m", i * step, truth.pop(j)), None))
        for req in emitted:
            if isinstance(req, RetrainRequest):
                out.append((i, req))
                status = answer(req, i)
                if status is not None:
                    mon.on_result(RetrainResult(req.request_id, "m", status, i * step))
    return out


def test_a_feature_alarm_asks_with_post_change_labels_and_trains_on_them() -> None:
    mon = ModelMonitor("m")
    reqs = play(mon, 3600, error_after=0.5)
    assert reqs, "no request after the feature shift and the error rise"
    i, req = reqs[0]
    (reason,) = req.reasons
    assert reason.signal == "feature:x"
    alarm = reason.details["alarm_ts"]
    assert SHIFT_AT <= alarm < i
    # Held until min_train_examples + MIN_HOLDOUT labels of predictions made after the alarm.
    assert reason.details["post_change_labels"] == 50 + MIN_HOLDOUT
    assert i >= alarm + LAG + 50 + MIN_HOLDOUT - 1
    change = reason.details["change_ts"]
    assert alarm + LAG <= change <= i
    # Training and the gate's holdout come only from after the change point.
    span = training_span(req, mon.training_examples(), 50)
    assert len(span) >= 50 + MIN_HOLDOUT
    assert min(ex[4] for ex in span) >= change
    assert mon.counts["waiting_for_post_change_labels"] >= 1


def test_a_feature_alarm_without_an_error_rise_asks_for_nothing() -> None:
    """The inputs move, the model answers as well as before: no retrain, then or later."""
    mon = ModelMonitor("m")
    assert play(mon, 12_000, error_after=0.1) == []
    assert mon.counts["label_free_alarm_without_error_rise"] == 1
    assert mon.counts["fired:feature:x"] >= 1
    assert mon.label_wait is None


def test_a_rejected_feature_alarm_retrain_is_asked_about_again() -> None:
    mon = ModelMonitor("m", load_policy_text("[default]\nerror = false\n").default)
    reqs = play(mon, 8000, error_after=0.5, answer=lambda r, i: "rejected")
    first = reqs[0][1].reasons[0]
    assert first.signal == "feature:x"
    again = [r.reasons[0] for _, r in reqs[1:]]
    # A rejected candidate: the next waits for a refit's training set (600 post-change
    # labels), then they double until a candidate had the whole window.
    assert [r.details["post_change_labels"] for r in again] == [600, 1200]
    for reason in again:
        assert reason.signal == "degraded"
        assert 0.05 <= reason.details["good_level"] <= 0.15  # the error before the change
        assert reason.details["previous_result"] == "rejected"
        assert reason.details["change_ts"] == first.details["change_ts"]
    counts = [r.details["post_change_labels"] for r in again]
    assert all(b >= 2 * a - 1 for a, b in itertools.pairwise(counts))


def test_a_model_without_labels_asks_at_the_alarm() -> None:
    mon = ModelMonitor("m")
    reqs = play(mon, 3600, error_after=0.5, labels_until=0)
    assert [r.reasons[0].signal for _, r in reqs] == ["feature:x"]
    assert "change_ts" not in reqs[0][1].reasons[0].details
    assert "waiting_for_post_change_labels" not in mon.counts


def test_a_held_alarm_asks_once_no_post_alarm_label_can_come() -> None:
    """Labels stop at the shift: after the join's TTL the held alarm asks without a change point."""
    mon = ModelMonitor("m")
    step = 60.0  # event seconds between predictions: the TTL (1 day) is 1,440 events
    reqs = play(mon, 6000, error_after=0.5, labels_until=SHIFT_AT - LAG, step=step)
    assert len(reqs) == 1
    i, req = reqs[0]
    (reason,) = req.reasons
    assert reason.signal == "feature:x" and "change_ts" not in reason.details
    assert mon.counts["label_wait_expired"] == 1
    alarm_i = mon.firings[0].ts / step
    assert i * step - alarm_i * step >= mon.policy.join.ttl_s


def test_the_held_alarm_survives_a_restart() -> None:
    mon = ModelMonitor("m")
    play(mon, SHIFT_AT + 100, error_after=0.1)
    assert mon.label_wait is not None and mon.label_wait.labels > 0
    again = ModelMonitor.restore(mon.snapshot())
    assert again.label_wait is not None
    assert again.snapshot() == mon.snapshot()
