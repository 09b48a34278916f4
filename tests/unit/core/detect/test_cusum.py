"""The CUSUM on an error signal: calibration, detection, state round trips, construction."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.core.detect import restore
from streamproc.core.detect.cusum import Cusum

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
    assert (s["params"]["warmup"], s["params"]["shift"], s["params"]["arl"]) == (5, 0.25, 500)


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
