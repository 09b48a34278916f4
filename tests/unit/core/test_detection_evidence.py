"""Issue 10 inputs through the real monitor: missing keys, huge magnitudes, true evidence."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pytest

from streamproc.core.detect import make_detector, restore
from streamproc.core.detect.threshold import ThresholdRule
from streamproc.core.events import (
    MetricEvent,
    PredictionEvent,
    RetrainRequest,
    encode,
    parse_retrain_request,
)
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import Policy, load_policy_text


def numbers(obj: Any) -> list[float]:
    """Every number in a decoded JSON document."""
    if isinstance(obj, bool):
        return []
    if isinstance(obj, int | float):
        return [float(obj)]
    if isinstance(obj, dict):
        return [n for v in obj.values() for n in numbers(v)]
    if isinstance(obj, list):
        return [n for v in obj for n in numbers(v)]
    return []


def feed(mon: ModelMonitor, rows: list[dict[str, Any]], start: int = 0) -> list[RetrainRequest]:
    out = []
    for i, feats in enumerate(rows, start=start):
        req = mon.on_prediction(PredictionEvent(f"e{i}", "m", "v1", float(i), "a", feats), None)
        if isinstance(req, RetrainRequest):
            out.append(req)
    return out


def assert_parses_and_finite(req: RetrainRequest) -> dict[str, Any]:
    raw = encode(req)
    assert parse_retrain_request(raw).request_id == req.request_id
    doc: dict[str, Any] = orjson.loads(raw)
    assert all(math.isfinite(v) for v in numbers(doc))
    return doc


# --------------------------------------------------------------------------- missing keys


def test_a_watched_key_left_out_counts_as_missing_like_null() -> None:
    rng = np.random.default_rng(1)
    mon = ModelMonitor("m")
    assert feed(mon, [{"amount": float(v)} for v in rng.lognormal(3, 1, 1000)]) == []
    reqs = feed(mon, [{} for _ in range(2000)], start=1000)
    assert reqs, "2000 records without the watched key must be flagged"
    first = reqs[0].reasons[0]
    assert first.signal == "feature:amount" and first.details["change"] == "missing_up"
    assert first.details["current_missing"] >= 1
    assert reqs[0].ts < 1000 + 20  # caught after the change only, and fast
    assert mon.counts["missing_keys"] >= 10
    assert_parses_and_finite(reqs[0])


def test_keys_present_are_not_counted_missing() -> None:
    mon = ModelMonitor("m")
    feed(mon, [{"a": 1.0, "b": "x"} for _ in range(1500)])
    assert mon.counts.get("missing_keys", 0) == 0


def test_a_categorical_key_left_out_is_caught_too() -> None:
    rng = np.random.default_rng(2)
    mon = ModelMonitor("m")
    cats = ["fr", "de", "es"]
    # A text feature's first 500 values go to the identifier screen, then 1000 make the
    # categorical detector's reference.
    assert feed(mon, [{"country": cats[int(i)]} for i in rng.integers(0, 3, 1600)]) == []
    reqs = feed(mon, [{} for _ in range(500)], start=1600)
    assert reqs and reqs[0].reasons[0].signal == "feature:country"
    top = reqs[0].reasons[0].details["top_cells"][0]
    assert top[0] == "<missing>"


# --------------------------------------------------------------------------- real shapes


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("alternating_1e8", lambda r, i: 1e8 + (i % 2)),
        ("magnitude_1e200", lambda r, i: 1e200 * float(r.lognormal(0.0, 1.0))),
        ("lognormal_3_1.5", lambda r, i: float(r.lognormal(3.0, 1.5))),
        ("poisson_0.2", lambda r, i: int(r.poisson(0.2))),
    ],
)
def test_default_policy_raises_no_request_on_stationary_real_shapes(name: str, make: Any) -> None:
    rng = np.random.default_rng(3)
    rows = [{f"x{j}": make(rng, i) for j in range(10)} for i in range(12_000)]
    assert feed(ModelMonitor("m"), rows) == [], name


def test_shift_at_1e200_gives_a_request_with_finite_evidence_that_parses() -> None:
    rng = np.random.default_rng(4)
    mon = ModelMonitor("m")
    before = [{"x": 1e200 * float(v)} for v in rng.lognormal(0.0, 0.3, 3000)]
    after = [{"x": 3e200 * float(v)} for v in rng.lognormal(0.0, 0.3, 500)]
    assert feed(mon, before) == []
    reqs = feed(mon, after, start=3000)
    assert reqs and reqs[0].ts >= 3000
    doc = assert_parses_and_finite(reqs[0])
    stats = doc["reasons"][0]["details"]["statistics"]
    # Every value lands above the reference: mean up and variance up both grow, never down.
    assert doc["reasons"][0]["details"]["change"] in ("mean_up_1sd", "variance_up")
    assert stats["mean_up_1sd"] > 0.0 and stats["mean_down_1sd"] == 0.0


def test_non_finite_statistics_of_any_detector_are_made_finite_in_the_request() -> None:
    # The previous Gaussian default overflows at 1e200 (sum of squares); the request it gives
    # must still parse.
    pol = load_policy_text(
        '[default.drift]\nnumeric = { detector = "mean_variance_cusum", warmup = 100 }\n'
    ).default
    rng = np.random.default_rng(5)
    mon = ModelMonitor("m", pol)
    rows = [{"x": 1e200 * float(v)} for v in rng.lognormal(0.0, 1.0, 3000)]
    reqs = feed(mon, rows)
    assert reqs  # it cries wolf here (a 1e-12 sd from an overflowing sum of squares)
    for req in reqs:
        doc = assert_parses_and_finite(req)
        assert doc["reasons"][0]["value"] >= doc["reasons"][0]["threshold"]


# --------------------------------------------------------------------------- evidence


def test_threshold_rule_reports_the_side_that_fired() -> None:
    rule = ThresholdRule(above=1.0, below=-1.0)
    assert rule.update(-2.0)
    assert rule.details()["direction"] == "below" and rule.threshold == -1.0
    assert rule.update(2.0)
    assert rule.details()["direction"] == "above" and rule.threshold == 1.0
    copy = restore(orjson.loads(orjson.dumps(rule.state())))
    assert copy.details() == rule.details() and copy.threshold == 1.0


def test_metric_request_below_reports_direction_below_and_its_threshold() -> None:
    pol = load_policy_text(
        '[default]\nmetrics = [{ name = "auc", above = 1.0, below = -1.0 }]\n'
    ).default
    mon = ModelMonitor("m", pol)
    req = mon.on_metric(MetricEvent("m", 1.0, "auc", -2.0), None)
    assert isinstance(req, RetrainRequest)
    r = req.reasons[0]
    assert (r.value, r.threshold, r.details["direction"]) == (-2.0, -1.0, "below")
    assert_parses_and_finite(req)


def test_adwin_reports_the_real_change_point_and_means() -> None:
    rng = np.random.default_rng(0)
    xs = np.concatenate(
        [rng.normal(0.8, 0.05, 1000), rng.normal(0.4, 0.02, 1000), rng.normal(0.6, 0.1, 1000)]
    ).tolist()
    det = make_detector("adwin", direction="both")
    fired = next(i for i, x in enumerate(xs) if det.update(x))
    assert 1000 <= fired < 1100
    d = det.details()
    assert abs(d["change_index"] - 1000) <= 4
    assert round(d["mean_before"], 2) == 0.80 and round(d["mean_after"], 2) == 0.40
    assert det.statistic >= det.threshold  # the evidence agrees with the decision
    assert restore(orjson.loads(orjson.dumps(det.state()))).state() == det.state()
    # Direction "up": the fall does not fire, the later rise 0.4 -> 0.6 does, located.
    up = make_detector("adwin")
    rise = next(i for i, x in enumerate(xs) if up.update(x))
    assert 2000 <= rise < 2100
    u = up.details()
    assert abs(u["change_index"] - 2000) <= 4
    assert round(u["mean_before"], 1) == 0.4 and round(u["mean_after"], 1) == 0.6


def test_policy_can_still_choose_the_windowed_tests_with_their_own_parameters() -> None:
    pol: Policy = load_policy_text(
        "[default.drift]\n"
        'numeric = { detector = "ks", reference_size = 500, window_size = 500 }\n'
        'categorical = { detector = "chi2", reference_size = 500, window_size = 500 }\n'
    ).default
    assert pol.drift is not None
    assert pol.drift.make(1.0).kind == "ks" and pol.drift.make("a").kind == "chi2"


def test_page_hinkley_reports_means_before_and_after_its_change_point() -> None:
    rng = np.random.default_rng(8)
    xs = np.concatenate([rng.normal(0.0, 0.1, 2000), rng.normal(1.0, 0.1, 500)]).tolist()
    det = make_detector("page_hinkley")
    fired = next(i for i, x in enumerate(xs) if det.update(x))
    assert 2000 <= fired < 2200
    d = det.details()
    assert abs((fired + 1 - d["since_change"]) - 2000) <= 2
    assert round(d["mean_before"], 1) == 0.0 and round(d["mean_after"], 1) == 1.0
    assert restore(orjson.loads(orjson.dumps(det.state()))).state() == det.state()
