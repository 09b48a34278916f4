"""The plotted series tell the truth: the value that fired, gaps, and no empty panels."""

from __future__ import annotations

import math

import orjson

from streamproc.core.events import SourceRef
from streamproc.core.router import Monitors, route
from streamproc.core.timeline import Firing, ModelTimeline, Series, SignalStatus
from streamproc.service.board import StatusBoard
from streamproc.sim.scenarios import interactions, rule_model


def drifting(n: int, change_at: int) -> list[tuple[str, bytes]]:
    served = ("v1", rule_model("A", flip=0.05))
    out: list[tuple[str, bytes]] = []
    for x in interactions("m", lambda i: "A" if i < change_at else "B", lambda i: served, 0, n):
        out.append(("predictions", orjson.dumps(x.prediction)))
        out.append(("labels", orjson.dumps(x.label)))
    return out


def test_the_plotted_error_series_holds_every_requests_firing_value_at_its_time() -> None:
    # As the worker does: one report to the board per batch, requests as they come.
    board, monitors = StatusBoard(points=30), Monitors()
    records = drifting(4000, 1200)
    requests = []
    for first in range(0, len(records), 500):
        for i, (topic, raw) in enumerate(records[first : first + 500], start=first):
            out = route(monitors, topic, raw, SourceRef(topic, 0, i), 0.0)
            for req in out.requests:
                board.requested(req)
                requests.append(req)
        board.applied(monitors.get("m"), 0)
    fired = [r for req in requests for r in req.reasons if r.signal == "error"]
    assert fired, "the drift at 1200 must fire the error detector"
    detail = board.model("m")
    assert detail is not None
    series = detail["series"]["error"]
    points = list(
        zip(series["ts"], series["statistic"], series["threshold"], series["fired"], strict=True)
    )
    for req in requests:
        for r in req.reasons:
            assert (req.ts, r.value, r.threshold, 1.0) in points, (req.ts, r.value)
            assert r.value >= r.threshold
    assert max(s for s in series["statistic"] if s == s) >= max(r.value for r in fired)
    # Each request's marker sits at its firing's time.
    marks = {d["request_id"]: d["ts"] for d in detail["decisions"] if d["kind"] == "requested"}
    assert marks == {req.request_id: req.ts for req in requests}
    # The default policy's "drift" metric rule: this model never reported it, so no panel.
    assert "metric:drift" not in series
    assert "metric:drift" not in detail["series"]


def test_a_test_capturing_its_reference_is_a_gap_not_a_threshold_of_zero() -> None:
    tl = ModelTimeline(points=10)
    tl.sample(1.0, [SignalStatus("feature:x", "ks", 0.4, 0.2, 100, 0),
                    SignalStatus("prediction", "psi", 0.1, 0.25, 100, 0)])  # fmt: skip
    tl.sample(2.0, [SignalStatus("feature:x", "ks", 0.0, 0.0, 3, 1),
                    SignalStatus("prediction", "psi", 0.0, 0.0, 3, 1)])  # fmt: skip
    pred = tl.series["prediction"].as_dict()
    assert pred["threshold"][0] == 0.25 and math.isnan(pred["threshold"][1])
    assert math.isnan(pred["statistic"][1])
    feats = tl.series["features (worst)"].as_dict()
    assert feats["statistic"][0] == 2.0 and math.isnan(feats["statistic"][1])
    # A threshold rule's 0 is a real threshold.
    tl.sample(3.0, [SignalStatus("metric:errors", "threshold", 2.0, 0.0, 1, 0)])
    assert tl.series["metric:errors"].as_dict()["threshold"] == [0.0]


def test_firings_survive_halving_and_the_series_stays_bounded() -> None:
    s = Series()
    for t in range(1000):
        s.add(float(t), 0.1, 1.0, points=20)
        if t in (17, 503, 871):
            s.add_firing(t + 0.5, 9.0 + t, 1.0, points=20)
    got = [(ts, v) for ts, v, f in zip(s.ts, s.statistic, s.fired, strict=True) if f]
    assert got == [(17.5, 26.0), (503.5, 512.0), (871.5, 880.0)]
    assert len(s.ts) < 40
    # Firings on every event: still bounded.
    for t in range(1000, 3000):
        s.add_firing(float(t), 5.0, 1.0, points=20)
    assert len(s.ts) < 40


def test_a_feature_firing_is_stored_as_its_ratio_to_the_threshold() -> None:
    tl = ModelTimeline(points=10)
    tl.sample(
        5.0, [SignalStatus("feature:x", "ks", 0.0, 0.2, 1, 1)], [Firing("feature:x", 4.0, 0.5, 0.2)]
    )
    s = tl.series["features (worst)"]
    assert list(s.ts) == [4.0, 5.0] and list(s.statistic) == [2.5, 0.0] and list(s.fired) == [1, 0]
