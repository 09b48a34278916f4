"""Online change detectors: threshold rule and CUSUM, state round trips, construction."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.core.detectors import Cusum, ThresholdRule, make_detector, restore

# --------------------------------------------------------------------------- helpers


def bernoulli(rng: np.random.Generator, p: float, n: int) -> list[float]:
    return (rng.random(n) < p).astype(float).tolist()


def first_fire(det: Any, xs: list[float]) -> int | None:
    """Index (0-based) of the first value that fires, or None."""
    for i, x in enumerate(xs):
        if det.update(x):
            return i
    return None


def warm(det: Cusum, xs: list[float]) -> None:
    for x in xs:
        assert det.update(x) is False


# --------------------------------------------------------------------------- ThresholdRule


def test_threshold_above_fires_strictly_above() -> None:
    r = ThresholdRule(above=0.1)
    assert [r.update(x) for x in (0.0, 0.1, 0.1000001, 5.0, -3.0)] == [
        False,
        False,
        True,
        True,
        False,
    ]
    assert r.threshold == 0.1
    assert r.n == 5
    assert r.statistic == -3.0


def test_threshold_below_fires_strictly_below() -> None:
    r = ThresholdRule(below=0.8)
    assert [r.update(x) for x in (0.9, 0.8, 0.79, -1.0)] == [False, False, True, True]
    assert r.threshold == 0.8
    assert r.details() == {"direction": "below"}


def test_threshold_with_both_bounds_fires_on_either_side() -> None:
    r = ThresholdRule(above=10, below=2)
    assert [r.update(x) for x in (5, 11, 1, 2, 10)] == [False, True, True, False, False]


def test_threshold_evidence_is_the_last_value() -> None:
    r = ThresholdRule(above=0.1)
    assert math.isnan(r.statistic)
    assert r.update(0.3) is True
    assert r.statistic == 0.3
    assert r.threshold == 0.1
    assert r.n == 1
    assert r.details() == {"direction": "above"}


def test_threshold_reset_restarts_the_count() -> None:
    r = ThresholdRule(above=1.0)
    for x in (0.5, 2.0, 3.0):
        r.update(x)
    assert r.n == 3
    r.reset()
    assert r.n == 0
    assert r.update(0.2) is False
    assert r.n == 1


def test_threshold_requires_a_bound() -> None:
    with pytest.raises(ValueError, match="needs 'above' or 'below'; set one of them"):
        ThresholdRule()


def test_threshold_state_round_trip_through_json() -> None:
    r = ThresholdRule(above=0.5, below=-0.5)
    empty = restore(orjson.loads(orjson.dumps(r.state())))
    assert isinstance(empty, ThresholdRule)
    assert math.isnan(empty.statistic)
    for x in (0.1, 0.9, 0.2):
        r.update(x)
    s = orjson.loads(orjson.dumps(r.state()))
    assert s == {
        "kind": "threshold",
        "above": 0.5,
        "below": -0.5,
        "last": 0.2,
        "count": 3,
        "side": "above",
    }
    r2 = restore(s)
    assert (r2.n, r2.statistic, r2.threshold) == (3, 0.2, 0.5)
    for x in (0.0, 0.6, -0.6, 0.4):
        assert r2.update(x) == r.update(x)
    assert r2.state() == r.state()


# --------------------------------------------------------------------------- Cusum basics


def test_cusum_never_fires_during_warmup() -> None:
    det = Cusum(warmup=100, arl=10)
    assert not any(det.update(1.0) for _ in range(100))
    assert det.statistic == 0.0
    assert det.n == 100


def test_cusum_threshold_is_log_arl() -> None:
    assert Cusum(arl=1e6).threshold == pytest.approx(math.log(1e6))
    assert Cusum(arl=100).threshold == pytest.approx(math.log(100))


def test_cusum_reference_level_after_warmup() -> None:
    det = Cusum(warmup=4, shift=1.0, arl=100)
    warm(det, [0.0, 1.0, 0.0, 0.0])
    d = det.details()
    assert d["model"] == "bernoulli"
    assert d["reference_level"] == pytest.approx(2 / 6)  # (1 + 1) / (4 + 2)
    assert d["reference_n"] == 4
    assert d["current_n"] == 0
    assert d["shift"] == 1.0


def test_cusum_reset_forgets_everything() -> None:
    det = Cusum(warmup=10, arl=10)
    rng = np.random.default_rng(3)
    first_fire(det, bernoulli(rng, 0.1, 10) + [1.0] * 50)
    assert det.n > 10
    det.reset()
    assert det.n == 0
    assert det.statistic == 0.0
    assert det.details()["since_change"] == 0
    assert det.state() == Cusum(warmup=10, arl=10).state()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cusum_no_false_alarm_on_long_stationary_stream(seed: int) -> None:
    rng = np.random.default_rng(seed)
    det = Cusum()  # warmup 500, shift 0.5, arl 1e6
    xs = bernoulli(rng, 0.1, 200_000)
    assert first_fire(det, xs) is None
    assert det.n == 200_000
    assert 0.0 <= det.statistic < det.threshold


@pytest.mark.parametrize("seed", range(10))
def test_cusum_detects_10_to_50_percent_within_150(seed: int) -> None:
    rng = np.random.default_rng(seed)
    det = Cusum()
    warm(det, bernoulli(rng, 0.1, 500))
    delay = first_fire(det, bernoulli(rng, 0.5, 5000))
    assert delay is not None
    assert delay < 150
    d = det.details()
    assert d["since_change"] <= delay + 1
    assert det.statistic >= det.threshold
    assert d["current_n"] == delay + 1


@pytest.mark.parametrize("seed", range(10))
def test_cusum_detects_10_to_20_percent_within_1500(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    det = Cusum()
    warm(det, bernoulli(rng, 0.1, 500))
    delay = first_fire(det, bernoulli(rng, 0.2, 5000))
    assert delay is not None
    assert delay < 1500


@pytest.mark.parametrize("seed", range(5))
def test_cusum_gaussian_detects_one_sd_mean_shift(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    det = Cusum()
    warm(det, rng.normal(5.0, 2.0, 500).tolist())
    d = det.details()
    assert d["model"] == "gaussian"
    assert d["reference_level"] == pytest.approx(5.0, abs=0.3)
    # In control first: no alarm on 20k more samples from the same distribution.
    assert first_fire(det, rng.normal(5.0, 2.0, 20_000).tolist()) is None
    delay = first_fire(det, rng.normal(7.0, 2.0, 5000).tolist())
    assert delay is not None
    assert delay < 150


def test_cusum_gaussian_ignores_a_fall() -> None:
    rng = np.random.default_rng(7)
    det = Cusum(warmup=200)
    warm(det, rng.normal(100.0, 10.0, 200).tolist())
    assert first_fire(det, rng.normal(50.0, 10.0, 20_000).tolist()) is None
    assert det.statistic == 0.0


def test_cusum_one_non_binary_value_switches_to_gaussian() -> None:
    det = Cusum(warmup=10)
    warm(det, [0.0, 1.0] * 4 + [0.0, 0.5])
    assert det.details()["model"] == "gaussian"


@pytest.mark.parametrize("seed", [0, 1])
def test_cusum_only_rises_count(seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    det = Cusum()
    warm(det, bernoulli(rng, 0.3, 500))
    assert first_fire(det, bernoulli(rng, 0.05, 100_000)) is None
    assert det.statistic < 1.0


def test_cusum_model_that_never_errs_stays_quiet_then_detects_errors() -> None:
    det = Cusum(warmup=200, arl=1e6)
    warm(det, [0.0] * 200)
    assert first_fire(det, [0.0] * 10_000) is None
    assert first_fire(det, [1.0] * 100) is not None


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    warmup=st.integers(2, 30),
    xs=st.lists(st.sampled_from([0.0, 1.0]) | st.floats(-1e3, 1e3), max_size=200),
)
def test_cusum_statistic_is_never_negative_and_silent_in_warmup(
    warmup: int, xs: list[float]
) -> None:
    det = Cusum(warmup=warmup, arl=50)
    for i, x in enumerate(xs, 1):
        fired = det.update(x)
        assert det.statistic >= 0.0
        assert math.isfinite(det.statistic)
        if i <= warmup:
            assert not fired
        assert fired == (det.statistic >= det.threshold)
    assert det.n == len(xs)


# --------------------------------------------------------------------------- state / restore


@pytest.mark.parametrize("split", [0, 7, 300, 600, 900])
@pytest.mark.parametrize("binary", [True, False])
def test_cusum_state_restore_mid_stream_lockstep(split: int, binary: bool) -> None:
    rng = np.random.default_rng(11)
    if binary:
        xs = bernoulli(rng, 0.1, 800) + bernoulli(rng, 0.5, 800) + bernoulli(rng, 0.1, 800)
    else:
        xs = rng.normal(0, 1, 800).tolist() + rng.normal(1.5, 1, 1600).tolist()
    a = Cusum(warmup=300, arl=1e4)
    for x in xs[:split]:
        a.update(x)
    b = restore(orjson.loads(orjson.dumps(a.state())))  # as stored in a changelog
    c = restore(a.state())
    assert isinstance(b, Cusum)
    assert b.state() == a.state()
    fires = 0
    for x in xs[split:]:
        fa, fb, fc = a.update(x), b.update(x), c.update(x)
        assert fa == fb == fc
        assert a.statistic == b.statistic == c.statistic
        assert a.details() == b.details() == c.details()
        if fa:
            fires += 1
            a.reset()
            b.reset()
            c.reset()
    assert fires >= 1
    assert a.state() == b.state() == c.state()


def test_cusum_state_is_json_primitives() -> None:
    det = Cusum(warmup=5, shift=0.25, arl=500)
    for x in (0.0, 1.0, 0.0, 0.0, 1.0, 1.0):
        det.update(x)
    s = det.state()
    assert orjson.loads(orjson.dumps(s)) == s
    assert s["kind"] == "cusum"
    assert s["params"][:3] == [5, 0.25, 500]


def test_restore_unknown_kind_raises() -> None:
    with pytest.raises(ValueError, match="unknown kind 'nope'; reset the worker's state"):
        restore({"kind": "nope"})


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize("warmup", [1, 0, -5])
def test_cusum_rejects_short_warmup(warmup: int) -> None:
    with pytest.raises(ValueError, match=f"warmup must be a whole number >= 2, got {warmup}"):
        Cusum(warmup=warmup)


@pytest.mark.parametrize(
    "kwargs", [{"shift": 0}, {"shift": -0.5}, {"arl": 1}, {"arl": 0.5}, {"arl": -10}]
)
def test_cusum_rejects_bad_shift_or_arl(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"cusum needs a finite shift > 0 and arl > 1"):
        Cusum(**kwargs)


def test_cusum_minimal_valid_parameters() -> None:
    det = Cusum(warmup=2, shift=1e-6, arl=1.0001)
    assert det.warmup == 2
    assert det.threshold > 0


@pytest.mark.parametrize(
    "kwargs",
    [{"shift": math.nan}, {"arl": math.nan}, {"warmup": 100.5}],
    ids=["shift-nan", "arl-nan", "warmup-100.5"],
)
def test_cusum_rejects_parameters_that_disable_it(kwargs: dict[str, Any]) -> None:
    try:
        det = Cusum(**{"warmup": 100, **kwargs})
    except ValueError:
        return  # rejected at construction: fine
    # Accepted: then it must still catch an error rate jumping from 0% to 100%.
    assert first_fire(det, [0.0] * 101 + [1.0] * 10_000) is not None


def test_make_detector_builds_each_kind() -> None:
    c = make_detector("cusum", warmup=20, shift=1.0, arl=50)
    assert isinstance(c, Cusum)
    assert (c.warmup, c.shift, c.arl) == (20, 1.0, 50)
    t = make_detector("threshold", below=0.7)
    assert isinstance(t, ThresholdRule)
    assert t.threshold == 0.7


def test_make_detector_unknown_kind_message() -> None:
    with pytest.raises(ValueError) as info:
        make_detector("adwinn", delta=0.002)
    msg = str(info.value)
    assert msg.startswith("unknown detector 'adwinn'; use one of [")
    assert "'adwin'" in msg and "'cusum'" in msg and "'threshold'" in msg


def test_make_detector_unknown_parameter_raises_type_error() -> None:
    with pytest.raises(TypeError, match="window"):
        make_detector("cusum", window=10)


def test_make_detector_propagates_validation() -> None:
    with pytest.raises(ValueError, match="warmup must be a whole number >= 2"):
        make_detector("cusum", warmup=1)
    with pytest.raises(ValueError, match="needs 'above' or 'below'"):
        make_detector("threshold")
