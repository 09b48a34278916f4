"""The metric change detector (rank_cp): quiet on stationary series of any shape, finds level
shifts after they happen, with true evidence, through the monitor and the policy file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import orjson
import pytest

from streamproc.core.detect import make_detector, restore
from streamproc.core.detect.seriescp import RankChangePoint, log_p_max_split
from streamproc.core.events import (
    DeploymentEvent,
    MetricEvent,
    RetrainRequest,
    encode,
    parse_retrain_request,
)
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import PolicyError, load_policy_text

N_STATIONARY = 5000


def _alarms(det: RankChangePoint, values: np.ndarray) -> list[int]:
    out = []
    for i, v in enumerate(values.tolist()):
        if det.update(v):
            out.append(i)
            det.reset()
    return out


def _stationary(shape: str, n: int) -> np.ndarray:
    rng = np.random.default_rng([7, len(shape)])
    return {
        "normal": lambda: rng.standard_normal(n),
        "lognormal": lambda: rng.lognormal(0.0, 2.0, n),
        "student_t3": lambda: rng.standard_t(3, n),
        "poisson": lambda: rng.poisson(0.2, n).astype(float),
        "rare_spike": lambda: np.where(rng.random(n) < 0.01, 1e6, 0.0),
        "offset_1e9": lambda: 1e9 + rng.standard_normal(n),
        "integer": lambda: rng.integers(0, 5, n).astype(float),
    }[shape]()


@pytest.mark.parametrize(
    "shape",
    ["normal", "lognormal", "student_t3", "poisson", "rare_spike", "offset_1e9", "integer"],
)
def test_stationary_series_of_any_shape_are_quiet(shape: str) -> None:
    # alpha = 1e-3 per check on correlated windows: measured 0-2 per 20,000 independent
    # values of each shape. A 2x error in the z scale gives hundreds; without the exact test
    # for tied data, Poisson(0.2) gives ~3 and the rare spikes 39 in 5,000.
    alarms = _alarms(RankChangePoint(), _stationary(shape, N_STATIONARY))
    assert len(alarms) <= 2, (shape, alarms)


def test_constant_series_never_fires_and_reports_no_change() -> None:
    det = RankChangePoint()
    assert not any(det.update(0.97) for _ in range(500))
    assert det.statistic == 0.0
    assert "change_index" not in det.details()


@pytest.mark.parametrize(
    ("before", "after", "direction"),
    [(0.90, 0.80, "down"), (0.02, 0.30, "up"), (1e9, 1e9 + 5.0, "up"), (3e200, 1e200, "down")],
)
def test_level_shift_found_after_it_with_true_evidence(
    before: float, after: float, direction: str
) -> None:
    rng = np.random.default_rng(3)
    change = 60
    noise = rng.standard_normal(160) * abs(after - before) / 6.0
    noise[[10, 40, 100]] *= 30.0  # outliers: a rank test counts each as one high value
    x = np.where(np.arange(160) < change, before, after) + noise
    det = RankChangePoint()
    fired = _first(det, x)
    assert change <= fired < change + 15
    d = det.details()
    assert abs(d["change_index"] - change) <= 2
    assert d["since_change"] == fired - d["change_index"] + 1
    assert d["direction"] == direction
    for key in ("mean_before", "mean_after", "median_before", "median_after"):
        assert math.isfinite(d[key]), (key, d)
    assert abs(d["median_before"] - before) < 0.5 * abs(after - before)
    assert abs(d["median_after"] - after) < 0.5 * abs(after - before)
    assert math.isfinite(det.statistic) and det.statistic >= det.threshold


def _first(det: RankChangePoint, x: np.ndarray) -> int:
    return next(i for i, v in enumerate(x.tolist()) if det.update(v))


def test_a_slow_random_walk_is_not_a_change() -> None:
    # A wandering daily score: the autocorrelation penalty keeps most of its moves quiet.
    x = np.cumsum(np.random.default_rng(5).standard_normal(3000)) * 0.01
    assert len(_alarms(RankChangePoint(), x)) <= 6


# --------------------------------------------------------------------------- dependent series


def _seasonal_trend(n: int, seed: int, shift: float = 0.0, at: int = 150) -> np.ndarray:
    # A monthly metric: a yearly pattern (amplitude 5), a steady rise (0.05 per value) and
    # small noise (sd 0.1): successive values are strongly dependent, as in AirlinePassengers.
    t = np.arange(n)
    noise = np.random.default_rng(seed).normal(0.0, 0.1, n)
    return 5.0 * np.sin(2 * np.pi * t / 12) + 0.05 * t + noise - np.where(t >= at, shift, 0.0)


@pytest.mark.parametrize("seed", range(5))
def test_a_level_shift_in_a_seasonal_trending_series_is_caught_where_it_is(seed: int) -> None:
    x = _seasonal_trend(300, seed, shift=3.0)
    det = RankChangePoint()
    fired = _first(det, x)
    assert 150 <= fired < 160
    d = det.details()
    assert d["change_index"] == 150 and d["direction"] == "down"
    assert d["test"] == "jump" and d["period"] == 12 and d["jump_gap"] >= det.jump
    assert math.isfinite(det.statistic) and det.statistic >= det.threshold
    # The rank test alone never sees it: the seasonal swings hide the shift from the ranks.
    assert _alarms(RankChangePoint(jump=0.0), x) == []


@pytest.mark.parametrize("seed", range(5))
def test_a_seasonal_trending_series_without_a_change_stays_quiet(seed: int) -> None:
    # "No change" for a trend: a constant slope. Neither test fires on it, seasonal or not.
    assert _alarms(RankChangePoint(), _seasonal_trend(1000, seed)) == []
    smooth_trend = 0.05 * np.arange(1000) + np.random.default_rng(seed).normal(0.0, 0.1, 1000)
    assert _alarms(RankChangePoint(), smooth_trend) == []


def test_a_noisy_trend_that_moves_the_level_is_reported_by_the_rank_test_only() -> None:
    # Documented behaviour: a slope of 0.01 sd per value moves the level by one noise sd over
    # the 100-value window; the level test reports that (the metric is no longer where it
    # was), the jump test does not (no gap between neighbouring blocks).
    x = 0.01 * np.arange(5000) + np.random.default_rng(8).standard_normal(5000)
    det = RankChangePoint()
    tests = []
    for v in x.tolist():
        if det.update(v):
            tests.append(det.details()["test"])
            det.reset()
    assert 1 <= len(tests) <= 30 and set(tests) == {"rank"}


def _smooth_levels(seed: int) -> tuple[np.ndarray, list[int]]:
    # Like RunLog's pace: AR(1) 0.9 wandering with small steps (sd 0.05) about levels that
    # jump by 3 to 6 (60 to 120 steps' sd) at known points.
    rng = np.random.default_rng(seed)
    cuts = [80, 130, 200]
    level = np.select([np.arange(300) < c for c in cuts], [15.0, 9.0, 14.0], default=11.0).astype(
        float
    )
    wander = np.zeros(300)
    for t in range(1, 300):
        wander[t] = 0.9 * wander[t - 1] + rng.normal(0.0, 0.05)
    return level + wander, cuts


@pytest.mark.parametrize("seed", range(3))
def test_jumps_in_a_smooth_autocorrelated_series_are_caught_at_their_place(seed: int) -> None:
    x, cuts = _smooth_levels(seed)
    det = RankChangePoint()
    found = []
    for i, v in enumerate(x.tolist()):
        if det.update(v):
            found.append((i, det.details()["change_index"]))
            det.reset()
    assert [cp for _, cp in found] == cuts
    assert all(cp < i < cp + 10 for i, cp in found)
    # Without the jump test the autocorrelation penalty hides every one of them (the rank
    # test alone fires, if at all, long after, once a whole new segment is in the window).
    late = _alarms(RankChangePoint(jump=0.0), x)
    assert not any(cp <= i < cp + 10 for i in late for cp in cuts), late


@pytest.mark.parametrize("phi", [0.9, 1.0])
def test_gaussian_ar_and_random_walks_never_fire_the_jump_test(phi: float) -> None:
    # Gaussian steps never make a gap of 10 step scales between separated blocks: whatever
    # such series raise comes from the rank test, as before the jump test existed.
    rng = np.random.default_rng(12)
    x = np.zeros(5000)
    for t in range(1, 5000):
        x[t] = phi * x[t - 1] + rng.standard_normal()
    det = RankChangePoint()
    tests = []
    for v in x.tolist():
        if det.update(v):
            tests.append(det.details()["test"])
            det.reset()
    assert "jump" not in tests
    assert len(tests) <= 6, tests


def test_reset_keeps_the_new_regime_and_finds_the_next_change() -> None:
    x = np.r_[np.zeros(50), np.ones(50), np.zeros(50)] + np.tile([0.0, 0.1, 0.05, 0.15], 38)[:150]
    det = RankChangePoint()
    first = _first(det, x)
    assert 50 <= first < 60
    det.reset()
    assert det.n == first - 50 + 1
    second = next(i for i in range(first + 1, 150) if det.update(float(x[i])))
    assert 100 <= second < 110
    assert det.details()["change_index"] == 100
    assert det.details()["direction"] == "down"


def test_snapshot_restores_mid_stream_and_continues_identically() -> None:
    x = np.r_[np.random.default_rng(9).standard_normal(70), 3.0 + np.zeros(30)]
    det = RankChangePoint(warmup=12, window=40)
    for v in x[:65]:
        det.update(float(v))
    state = orjson.loads(orjson.dumps(det.state()))
    twin = restore(state)
    assert twin.state() == det.state()
    a = [det.update(float(v)) for v in x[65:]]
    b = [twin.update(float(v)) for v in x[65:]]
    assert a == b and any(a)
    assert det.details() == twin.details()


def test_snapshot_of_another_format_is_refused() -> None:
    state = RankChangePoint().state()
    state["format"] = 0
    with pytest.raises(ValueError, match="format"):
        restore(state)


def test_bad_values_are_skipped_and_counted() -> None:
    det = RankChangePoint()
    for v in (None, math.nan, math.inf, "0.9", True):
        assert det.update(v) is False
    assert det.n == 0 and det.details()["skipped"] == 5


@pytest.mark.parametrize(
    "params",
    [
        {"warmup": 5},
        {"window": 10},
        {"min_segment": 1},
        {"alpha": 0.0},
        {"max_rho": 1.0},
        {"jump": -1.0},
        {"jump": math.inf},
        {"max_period": 1},
    ],
)
def test_bad_parameters_are_refused(params: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="rank_cp"):
        make_detector("rank_cp", **params)


def test_p_value_approximation_matches_hand_values() -> None:
    # phi(3) = 0.0044318; (3 - 1/3) * ln(81) + 4/3 = 11.7171 + 1.3333 -> p = 0.05784
    assert math.exp(log_p_max_split(3.0, 0.1)) == pytest.approx(0.05784, rel=1e-3)
    assert log_p_max_split(1.0, 0.1) == 0.0
    assert math.isfinite(log_p_max_split(1e5, 0.05))


# --------------------------------------------------------------------------- monitor + policy


def _replay(mon: ModelMonitor, values: list[float], name: str = "accuracy") -> list[RetrainRequest]:
    out = []
    for i, v in enumerate(values):
        r = mon.on_metric(MetricEvent("m", 3600.0 * (i + 1), name, v), None)
        if isinstance(r, RetrainRequest):
            out.append(r)
    return out


def _deployed(policy_text: str | None = None) -> ModelMonitor:
    book = load_policy_text(policy_text) if policy_text is not None else None
    mon = ModelMonitor("m", book.default) if book else ModelMonitor("m")
    mon.on_deployment(DeploymentEvent("d1", "m", "v1", "promote", 0.0))
    return mon


def _accuracy() -> list[float]:
    rng = np.random.default_rng(11)
    return (np.r_[np.full(48, 0.91), np.full(24, 0.84)] + rng.normal(0, 0.005, 72)).tolist()


def test_default_policy_watches_a_metric_series_and_the_request_parses() -> None:
    reqs = _replay(_deployed(), _accuracy())
    assert len(reqs) == 1
    (reason,) = reqs[0].reasons
    assert reason.signal == "metric_change:accuracy" and reason.detector == "rank_cp"
    assert reqs[0].ts >= 49 * 3600.0
    assert reason.details["change_index"] == 48
    assert reason.details["direction"] == "down"
    assert math.isfinite(reason.value) and reason.value >= reason.threshold
    assert parse_retrain_request(encode(reqs[0])) == reqs[0]


def test_monitor_snapshot_keeps_the_metric_change_detector() -> None:
    mon = _deployed()
    _replay(mon, _accuracy()[:40])
    twin = ModelMonitor.restore(mon.snapshot())
    rest = _accuracy()[40:]
    assert [r.request_id for r in _replay(mon, rest)] == [r.request_id for r in _replay(twin, rest)]


def test_policy_turns_it_off_or_narrows_it() -> None:
    assert _replay(_deployed("[default]\nmetric_change = false\n"), _accuracy()) == []
    only_auc = '[default]\nmetric_change = { metrics = ["auc"] }\n'
    assert _replay(_deployed(only_auc), _accuracy()) == []
    assert len(_replay(_deployed(only_auc), _accuracy(), name="auc")) == 1


def test_policy_turns_the_jump_test_off_and_the_rank_test_goes_on() -> None:
    book = load_policy_text("[default]\nmetric_change = { jump = 0 }\n")
    rule = book.default.metric_change
    assert rule is not None
    det = rule.make()
    assert isinstance(det, RankChangePoint) and det.jump == 0.0 and det.window == 100
    x, _ = _smooth_levels(0)
    assert _alarms(det, x) == _alarms(RankChangePoint(jump=0.0), x)


README = Path(__file__).resolve().parents[4] / "README.md"


def test_readme_policy_example_loads() -> None:
    # The README's policy-file block (the one that documents metric_change) is valid as is.
    blocks = README.read_text(encoding="utf-8").split("```toml\n")[1:]
    text = next(b.split("```")[0] for b in blocks if "metric_change" in b)
    book = load_policy_text(text)
    rule = book.default.metric_change
    assert rule is not None and rule.detector == "rank_cp"
    assert dict(rule.params) == {"alpha": 1e-3, "min_segment": 5, "warmup": 20, "window": 100}
    override = book.for_model("fraud-eu").metric_change
    assert override is not None and override.metrics == ("auc",)
    assert override.watches("auc") and not override.watches("drift")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("metric_change = 3", "must be false or a table"),
        ('metric_change = { metrics = "auc" }', "list of globs"),
        ("metric_change = { warmup = true }", "not a usable number"),
        ("metric_change = { warmup = 4 }", "not valid"),
        ('metric_change = { detector = "nope" }', "not valid"),
    ],
)
def test_bad_metric_change_tables_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(PolicyError, match=fragment):
        load_policy_text(f"[default]\n{text}\n")


def test_metric_series_watched_per_model_are_bounded() -> None:
    mon = _deployed()
    for i in range(40):
        mon.on_metric(MetricEvent("m", 1.0 + i, f"metric_{i}", 0.5), None)
    watched = [s for s in mon.detectors if s.startswith("metric_change:")]
    assert len(watched) == 32
    assert mon.counts["metric_change_over_limit"] == 8
