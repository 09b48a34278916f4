"""Windowed two-sample drift tests: calibration, detection delay, multiplicity, snapshots."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pytest

from streamproc.core.detect import make_detector, restore
from streamproc.core.detect.categorical_drift import CategoricalDrift
from streamproc.core.detect.numeric_drift import NumericDrift
from streamproc.core.detect.stats import (
    combine_pvalues_holm,
)

# --------------------------------------------------------------------------- helpers


def first_fire(det: Any, xs: list[Any]) -> int | None:
    for i, x in enumerate(xs):
        if det.update(x):
            return i
    return None


def n_fires(det: Any, xs: list[Any]) -> int:
    count = 0
    for x in xs:
        if det.update(x):
            count += 1
            det.reset()
    return count


def normal(seed: int, mu: float, sd: float, n: int) -> list[float]:
    out: list[float] = np.random.default_rng(seed).normal(mu, sd, n).tolist()
    return out


def categories(seed: int, p: list[float], n: int, values: str = "abcd") -> list[str]:
    out: list[str] = np.random.default_rng(seed).choice(list(values), p=p, size=n).tolist()
    return out


def json_roundtrip(state: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(orjson.dumps(state))
    return out


# Defaults: reference 1000, window 1000, a look every 250 values from value 2000 on. A change
# placed at value 5000 lands right after a look.
CHANGE = 5000

# --------------------------------------------------------------------------- calibration


def test_one_look_p_values_are_calibrated_on_small_windows() -> None:
    """Under no drift, p <= 0.05 about 5% of the time (KS/ks discrete: less; W: a bound)."""
    rng = np.random.default_rng(3)
    ps: dict[str, list[float]] = {"ks": [], "psi": [], "wasserstein": [], "js": [], "chi2": []}
    for r in range(300):
        det = NumericDrift(200, 100, every=10**9, tests=("ks", "psi", "wasserstein", "js"), seed=r)
        for x in rng.normal(size=300).tolist():
            det.update(x)
        for t in ("ks", "psi", "wasserstein", "js"):
            ps[t].append(det.details()["tests"][t]["p_value"])
        cat = CategoricalDrift(200, 100, every=10**9, tests=("chi2",), seed=r)
        for x in rng.choice(list("abcde"), p=[0.4, 0.3, 0.15, 0.1, 0.05], size=300).tolist():
            cat.update(x)
        ps["chi2"].append(cat.details()["tests"]["chi2"]["p_value"])
    for t in ("ks", "psi", "js", "chi2"):
        rate = float(np.mean(np.array(ps[t]) <= 0.05))
        assert 0.02 <= rate <= 0.09, (t, rate)
    assert float(np.mean(np.array(ps["wasserstein"]) <= 0.05)) <= 0.09


def test_calibrated_thresholds_shrink_with_the_window() -> None:
    """A fixed PSI cut-off of 0.1 is noise at n = 100; the calibrated one is not."""
    thresholds = {}
    for size in (100, 1000):
        det = make_detector("psi", reference_size=size, window_size=size, every=10**9)
        for x in normal(4, 0.0, 1.0, 2 * size):
            det.update(x)
        thresholds[size] = det.details()["tests"]["psi"]["threshold"]
    assert thresholds[100] > 0.3  # far above folklore's 0.1 at n = 100 ...
    assert thresholds[1000] < thresholds[100] / 5  # ... and it scales like 1/n


# --------------------------------------------------------------------------- stationary


def test_stationary_numeric_stream_raises_no_alarm() -> None:
    det = NumericDrift()
    assert n_fires(det, normal(5, 0.0, 1.0, 200_000)) == 0
    d = det.details()
    assert d["looks"] == (200_000 - 2000) // 250 + 1
    assert d["reference_n"] == 1000 and d["current_n"] == 1000
    assert set(d["tests"]) == {"ks", "psi", "wasserstein", "missing"}
    assert d["alpha_per_test"] == pytest.approx(1e-6 / 4)
    assert det.statistic < det.threshold


def test_stationary_categorical_stream_raises_no_alarm() -> None:
    rng = np.random.default_rng(6)
    values = ["a", "b", "c", "d", None, "rare1", "rare2"]
    p = [0.4, 0.3, 0.15, 0.1, 0.045, 0.004, 0.001]
    xs = [values[i] for i in rng.choice(len(values), p=p, size=200_000)]
    det = CategoricalDrift()
    assert n_fires(det, xs) == 0
    d = det.details()
    assert set(d["tests"]) == {"chi2", "js"} and d["categories"] == 7


# --------------------------------------------------------------------------- detection


def test_half_a_deviation_mean_shift_is_detected() -> None:
    det = NumericDrift()
    xs = normal(7, 0.0, 1.0, CHANGE) + normal(8, 0.5, 1.0, 3000)
    fired = first_fire(det, xs)
    assert fired is not None and CHANGE <= fired <= CHANGE + 1000, fired
    d = det.details()
    assert d["p_value"] <= d["alpha_per_test"]
    assert det.statistic >= det.threshold
    # A smaller window reacts sooner.
    det = NumericDrift(window_size=250, every=50)
    fired = first_fire(det, xs)
    assert fired is not None and CHANGE <= fired <= CHANGE + 400, fired


def test_variance_change_is_detected() -> None:
    det = NumericDrift()
    fired = first_fire(det, normal(9, 0.0, 1.0, CHANGE) + normal(10, 0.0, 1.5, 3000))
    assert fired is not None and CHANGE <= fired <= CHANGE + 1250, fired


def test_categorical_frequency_shift_is_detected() -> None:
    det = CategoricalDrift()
    xs = categories(11, [0.4, 0.3, 0.2, 0.1], CHANGE) + categories(12, [0.25, 0.3, 0.25, 0.2], 3000)
    fired = first_fire(det, xs)
    assert fired is not None and CHANGE <= fired <= CHANGE + 1250, fired
    assert det.details()["test"] in ("chi2", "js")


def test_a_new_category_is_detected() -> None:
    det = make_detector("chi2")
    xs = categories(13, [0.5, 0.3, 0.2], CHANGE, "abc") + categories(14, [0.4, 0.3, 0.1, 0.2], 3000)
    fired = first_fire(det, xs)
    assert fired is not None and CHANGE <= fired <= CHANGE + 750, fired
    assert det.details()["cells"] == 4  # a, b, c and the rare cell that took "d"


def test_missing_rate_change_is_detected_and_named() -> None:
    rng = np.random.default_rng(15)
    xs: list[float | None] = normal(16, 0.0, 1.0, 8000)
    for i in range(CHANGE, 8000):
        if rng.random() < 0.05:
            xs[i] = None if i % 2 else math.nan
    det = NumericDrift()
    fired = first_fire(det, xs)
    assert fired is not None and CHANGE <= fired <= CHANGE + 1000, fired
    d = det.details()
    assert d["test"] == "missing"
    assert d["reference_missing_rate"] == 0.0 and 0.02 < d["current_missing_rate"] < 0.08
    assert d["current_n"] == 1000 - round(1000 * d["current_missing_rate"])


def test_confirm_waits_for_consecutive_significant_looks() -> None:
    xs = normal(17, 0.0, 1.0, CHANGE) + normal(18, 1.0, 1.0, 3000)
    once = first_fire(NumericDrift(), xs)
    twice = first_fire(NumericDrift(confirm=2), xs)
    assert once is not None and twice == once + 250


def test_p_values_feed_a_multi_feature_decision() -> None:
    dets = [NumericDrift(reference_size=300, window_size=300, every=100) for _ in range(3)]
    streams = [
        normal(19, 0.0, 1.0, 1000),
        normal(20, 0.0, 1.0, 600) + normal(21, 1.0, 1.0, 400),
        normal(22, 0.0, 1.0, 1000),
    ]
    for i in range(1000):
        for det, xs in zip(dets, streams, strict=True):
            det.update(xs[i])
    pvalues = [det.p_value for det in dets]
    assert combine_pvalues_holm(pvalues, 0.01) == [False, True, False]


def test_constant_reference() -> None:
    same = make_detector("ks", reference_size=100, window_size=50, every=10, missing=False)
    assert first_fire(same, [1.0] * 400) is None
    other = make_detector("ks", reference_size=100, window_size=50, every=10, missing=False)
    fired = first_fire(other, [1.0] * 100 + [2.0] * 100)
    assert fired == 149  # the first look: reference 100 values, then a window of 50


def test_reset_starts_a_new_reference() -> None:
    det = NumericDrift(reference_size=100, window_size=100, every=10)
    xs = normal(23, 0.0, 1.0, 300) + normal(24, 3.0, 1.0, 400)
    fired = first_fire(det, xs)
    assert fired is not None
    det.reset()
    assert det.n == 0 and det.details()["looks"] == 0 and det.statistic == 0.0
    # The new level is the new reference: no alarm on it.
    assert first_fire(det, normal(25, 3.0, 1.0, 2000)) is None


# --------------------------------------------------------------------------- construction


def test_kinds_and_parameters() -> None:
    assert make_detector("numeric_drift", tests=["ks"]).tests == ("ks",)
    for kind, tests in [
        ("ks", ("ks",)),
        ("psi", ("psi",)),
        ("wasserstein", ("wasserstein",)),
        ("chi2", ("chi2",)),
        ("js", ("js",)),
        ("categorical_drift", ("chi2", "js")),
    ]:
        det = make_detector(kind)
        assert det.kind == kind and getattr(det, "tests", None) == tests
    with pytest.raises(ValueError, match="runs the ks test only"):
        make_detector("ks", tests=["psi"])
    with pytest.raises(ValueError, match="tests must be distinct"):
        make_detector("numeric_drift", tests=["chi2"])
    with pytest.raises(ValueError, match="tests must be distinct"):
        make_detector("numeric_drift", tests=["ks", "ks"])
    with pytest.raises(ValueError, match="alpha"):
        make_detector("numeric_drift", alpha=0.0)
    with pytest.raises(ValueError, match="reference_size"):
        make_detector("numeric_drift", reference_size=10)


# --------------------------------------------------------------------------- state


def _lockstep(a: Any, xs: list[Any], cut: int) -> None:
    for x in xs[:cut]:
        if a.update(x):
            a.reset()
    snap = a.state()
    b = restore(json_roundtrip(snap))
    assert b.state() == snap
    fired = 0
    for x in xs[cut:]:
        fa, fb = a.update(x), b.update(x)
        assert fa == fb
        if fa:
            fired += 1
            assert (a.statistic, a.threshold, a.n, a.details()) == (
                b.statistic,
                b.threshold,
                b.n,
                b.details(),
            )
            a.reset()
            b.reset()
    assert fired > 0
    assert a.state() == b.state() and a.details() == b.details()


@pytest.mark.parametrize("cut", [150, 450, 1234])
def test_numeric_snapshot_runs_in_lockstep(cut: int) -> None:
    xs: list[Any] = normal(26, 0.0, 1.0, 1500) + normal(27, 1.0, 2.0, 1500)
    xs[100] = None
    xs[700] = math.inf
    xs[2000] = "not a number"
    det = NumericDrift(reference_size=300, window_size=300, every=50, tests=("ks", "psi", "js"))
    _lockstep(det, xs, cut)
    _lockstep(make_detector("wasserstein", reference_size=300, window_size=200, every=25), xs, cut)


@pytest.mark.parametrize("cut", [150, 450, 1234])
def test_categorical_snapshot_runs_in_lockstep(cut: int) -> None:
    rng = np.random.default_rng(28)
    values: list[Any] = ["a", "b", 3, True, None, math.nan, ("t", 1), 2.5]
    xs = [values[i] for i in rng.choice(len(values), size=1500)]
    xs += [values[i] for i in rng.choice(4, size=1500)]  # the tail of the list disappears
    det = CategoricalDrift(reference_size=300, window_size=300, every=50, tests=("chi2", "psi"))
    _lockstep(det, xs, cut)
    _lockstep(make_detector("js", reference_size=300, window_size=300, every=30), xs, cut)


def test_state_is_compact_json() -> None:
    det = NumericDrift()
    for x in normal(29, 0.0, 1.0, 3000):
        det.update(x)
    raw = orjson.dumps(det.state())
    assert len(raw) < 30_000  # two windows of 1000 doubles, base64
    assert restore(orjson.loads(raw)).state() == det.state()


def test_window_counters_are_saved_by_name_and_the_positional_form_still_restores() -> None:
    from streamproc.core.detect import restore
    from streamproc.core.detect.numeric_drift import NumericDrift
    from streamproc.core.detect.windowdrift import _COUNTERS

    det = NumericDrift(reference_size=50, window_size=50, every=10)
    for i in range(130):
        det.update(float(i % 7))
    s = det.state()
    assert list(s["c"]) == list(_COUNTERS)
    old = {**s, "c": [s["c"][name] for name in _COUNTERS]}  # as saved before
    again = restore(old)
    assert again.state() == s
    for i in range(60):  # and goes on as the detector that never stopped
        assert again.update(float(i % 5)) == det.update(float(i % 5))
    assert again.state() == det.state()
