"""The contract every registered detector kind keeps, checked over all of them.

For each kind in :data:`streamproc.core.detect.registry.KINDS`, on a real-shaped stream
(lognormal values then a shift; Bernoulli errors 10% then 30% for the error detectors;
skewed categories then others for the categorical ones), with a ``reset`` after each alarm as
the trigger policy does:

- state round trip: ``restore(state)`` (through JSON) has the same state, at any point;
- restore then continue equals never stopping: outputs, statistics, evidence and final state;
- reset: ``n`` is 0 and the detector then answers like a fresh one;
- NaN: what each kind does with it, as documented in the registry (:data:`NAN_HANDLING`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pytest

from streamproc.core.detect import KINDS, Detector, make_detector, restore
from streamproc.core.detect.registry import NAN_HANDLING

SMALL = {"reference_size": 200, "window_size": 100, "every": 20}
PARAMS: dict[str, dict[str, Any]] = {
    "threshold": {"above": 3.0},
    "cusum": {"warmup": 200},
    "page_hinkley": {"threshold": 20.0},
    "kswin": {"window_size": 60, "stat_size": 20},
    "numeric_drift": {**SMALL, "tests": ["ks", "psi", "wasserstein", "js"]},
    "ks": SMALL,
    "psi": SMALL,
    "wasserstein": SMALL,
    "categorical_drift": {**SMALL, "tests": ["chi2", "js", "psi"]},
    "chi2": SMALL,
    "js": SMALL,
    "mean_variance_cusum": {"warmup": 200},
    "rising_only": {"inner": {"detector": "rank_cusum", "warmup": 200}},
    "rank_cusum": {"warmup": 200},
    "multinomial_cusum": {"warmup": 200},
}
ERRORS = {"cusum", "ddm", "eddm", "hddm_a", "hddm_w", "fhddm"}
CATEGORIES = {"categorical_drift", "chi2", "js", "multinomial_cusum"}
N = 2000


def test_every_kind_has_documented_nan_handling() -> None:
    assert set(NAN_HANDLING) == set(KINDS)


def make(kind: str) -> Detector:
    return make_detector(kind, **PARAMS.get(kind, {}))


def stream(kind: str, n: int = N, seed: int = 42) -> list[Any]:
    rng = np.random.default_rng(seed)
    half = n // 2
    if kind in ERRORS:
        errs = np.r_[rng.random(half) < 0.1, rng.random(n - half) < 0.3]
        return [float(v) for v in errs]
    if kind in CATEGORIES:
        cats = ["a", "b", "c", "d"]
        before = rng.choice(cats, half, p=[0.5, 0.3, 0.15, 0.05])
        after = rng.choice(cats, n - half, p=[0.3, 0.3, 0.2, 0.2])
        return [str(v) for v in np.r_[before, after]]
    if kind == "rank_cp":  # a low-rate metric: a few hundred values
        n = 240
    values = np.r_[rng.lognormal(0.0, 1.0, n // 2), 1.0 + rng.lognormal(0.0, 1.0, n - n // 2)]
    return [float(v) for v in values]


def via_json(det: Detector) -> Detector:
    return restore(orjson.loads(orjson.dumps(det.state())))


def trace(det: Detector, xs: list[Any], details: bool = True) -> list[tuple[Any, ...]]:
    """Feed the values, resetting after each alarm; what the policy would see at each step."""
    out: list[tuple[Any, ...]] = []
    for x in xs:
        fired = det.update(x)
        out.append((fired, det.statistic, det.threshold, det.n))
        if fired:
            if details:
                out.append(("details", repr(sorted(det.details().items()))))
            det.reset()
    return out


def same(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    """Equal traces, NaN equal to NaN (a threshold rule's statistic before any value)."""
    return repr(a) == repr(b)


kinds = pytest.mark.parametrize("kind", sorted(KINDS))


@kinds
def test_the_stream_raises_alarms_after_the_change(kind: str) -> None:
    """The streams below are a real test: every kind fires on them, after the change."""
    xs = stream(kind)
    fired = [i for i, step in enumerate(trace(make(kind), xs)) if step[0] is True]
    assert fired, f"{kind} never fired on its stream"


@kinds
def test_state_round_trip_through_json_at_any_point(kind: str) -> None:
    det = make(kind)
    assert via_json(det).state() == det.state()
    for i, x in enumerate(stream(kind)):
        if det.update(x):
            assert via_json(det).state() == det.state()  # with its evidence, before reset
            det.reset()
        if i % 97 == 0:
            assert via_json(det).state() == det.state()
    assert via_json(det).state() == det.state()


@kinds
@pytest.mark.parametrize("stop", [0.05, 0.45, 0.55, 0.9])
def test_restore_then_continue_equals_never_stopping(kind: str, stop: float) -> None:
    xs = stream(kind)
    cut = int(len(xs) * stop)
    never = make(kind)
    whole = trace(never, xs)
    first = make(kind)
    head = trace(first, xs[:cut])
    again = via_json(first)
    tail = trace(again, xs[cut:])
    assert same(head + tail, whole)
    assert again.state() == never.state()
    assert repr(again.details()) == repr(never.details())


@kinds
def test_reset_starts_afresh(kind: str) -> None:
    xs = stream(kind)
    used = make(kind)
    for x in xs:
        used.update(x)
    used.reset()
    assert used.n == 0
    fresh = make(kind)
    other = stream(kind, seed=7)
    # The evidence may keep lifetime positions (rank_cp's change index counts from the start
    # of the stream), so the alarms, statistics, thresholds and counts are compared.
    assert same(trace(used, other, details=False), trace(fresh, other, details=False))


def with_nan(xs: list[Any], every: int = 5, nan: Any = math.nan) -> list[Any]:
    out: list[Any] = []
    for i, x in enumerate(xs):
        out.append(x)
        if i % every == 0:
            out.append(nan)
    return out


@kinds
def test_nan_is_handled_as_documented(kind: str) -> None:
    how = NAN_HANDLING[kind].split(":")[0]
    if kind == "rising_only":  # as the detector it wraps
        how = NAN_HANDLING[PARAMS[kind]["inner"]["detector"]].split(":")[0]
    xs = stream(kind)
    dirty = with_nan(xs)
    det = make(kind)
    got = trace(det, dirty)
    if how != "never fires":  # the threshold rule shows the last value, NaN included
        assert all(math.isfinite(step[1]) for step in got if step[0] != "details")
    if how == "skipped":
        # Not counted and no effect: the same alarms, statistics and counts as without the NaN
        # (the evidence counts the skipped values).
        kept = _drop_nan_steps(dirty, got)
        assert same([k for k in kept if k[0] != "details"], trace(make(kind), xs, details=False))
    elif how == "missing":
        # Counted, as a missing value: exactly what None does.
        as_none = make(kind)
        assert same(got, trace(as_none, with_nan(xs, nan=None)))
        assert det.state() == as_none.state()
    elif how == "never fires":
        # The threshold rule: NaN compares false both ways; it is counted and is the statistic.
        r = make(kind)
        assert r.update(math.nan) is False and r.n == 1 and math.isnan(r.statistic)
    else:
        assert how == "undefined", NAN_HANDLING[kind]
        _cusum_nan_quirks()


def _drop_nan_steps(dirty: list[Any], got: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The trace steps of the non-NaN values (a 'details' step follows its alarm's step)."""
    out: list[tuple[Any, ...]] = []
    it = iter(got)
    for x in dirty:
        step = next(it)
        keep = not (isinstance(x, float) and math.isnan(x))
        if keep:
            out.append(step)
        if step[0] is True:
            detail = next(it)
            if keep:
                out.append(detail)
    return out


def _cusum_nan_quirks() -> None:
    """What the error CUSUM does with NaN (the monitor only ever sends it 0/1 errors or finite
    values): in warm-up it poisons the reference, so that nothing ever fires; afterwards, as a
    Bernoulli CUSUM it counts NaN as a correct answer, as a Gaussian one it zeroes the statistic."""
    poisoned = make_detector("cusum", warmup=20)
    for x in [0.0] * 10 + [math.nan] + [1.0] * 2000:
        assert poisoned.update(x) is False
    binary, as_zero = make_detector("cusum", warmup=20), make_detector("cusum", warmup=20)
    for x in [0.0, 1.0] * 10 + [1.0] * 5:
        binary.update(x)
        as_zero.update(x)
    binary.update(math.nan)
    as_zero.update(0.0)
    assert binary.state() == as_zero.state()
    gaussian = make_detector("cusum", warmup=20)
    for x in [0.1, 0.3] * 10 + [5.0] * 3:
        gaussian.update(x)
    assert gaussian.statistic > 0.0
    gaussian.update(math.nan)
    assert gaussian.statistic == 0.0
