"""The batch form of the rank CUSUM against its per-event updates: identical state, alarms."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.core.detect.rankbatch import (
    commit,
    feed_reference,
    reference_end,
    scan,
    values_of,
)
from streamproc.core.detect.ranks import RankCusum


def _stream(seed: int, n: int, shift: float, discrete: bool) -> list[float | int | None]:
    rng = random.Random(seed)
    out: list[float | int | None] = []
    for i in range(n):
        if rng.random() < 0.05:
            out.append(None)
        elif discrete:
            out.append(rng.randint(0, 3) + (2 if i > n // 2 and shift else 0))
        else:
            out.append(rng.gauss(shift if i > n // 2 else 0.0, 1.0))
    return out


def _both(seed: int, discrete: bool) -> tuple[RankCusum, RankCusum]:
    a, b = RankCusum(warmup=40, arl=1e3), RankCusum(warmup=40, arl=1e3)
    for x in _stream(seed + 1000, 60, 0.0, discrete):
        a.update(x)
        b.update(x)
    return a, b


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 400),
    shift=st.sampled_from([0.0, 0.7, 3.0]),
    discrete=st.booleans(),
    chunk=st.sampled_from([1, 7, 100, 1000]),
)
def test_scan_and_commit_match_updates(
    seed: int, n: int, shift: float, discrete: bool, chunk: int
) -> None:
    """Alarm by alarm (reset there, as the monitor does), in chunks: the same state."""
    a, b = _both(seed, discrete)
    xs = _stream(seed, n, shift, discrete)
    want = []
    for x in xs:
        fired = a.update(x)
        want.append(fired)
        if fired:
            a.reset()
    got: list[bool] = []
    pos = 0
    while pos < len(xs):
        part = xs[pos : pos + chunk]
        s = scan(b, values_of(part))
        if s is None or not s.exact:
            fired = b.update(part[0])
            got.append(fired)
            if fired:
                b.reset()
            pos += 1
            continue
        alarms = [i for i, f in enumerate(s.fired.tolist()) if f]
        k = alarms[0] + 1 if alarms else len(part)
        commit(b, s, k)
        got.extend(s.fired.tolist()[:k])
        if alarms:
            b.reset()
        pos += k
    assert got == want
    assert a.state() == b.state()


def test_constant_and_huge_values() -> None:
    """Ties everywhere (the randomized ranks) and magnitudes near the float limit."""
    for value in (1e200, 0.0, -3):
        a, b = RankCusum(warmup=20), RankCusum(warmup=20)
        for _ in range(20):
            a.update(value)
            b.update(value)
        xs = [value] * 500 + [None] * 3
        want = [a.update(x) for x in xs]
        s = scan(b, values_of(xs))
        assert s is not None and s.exact
        assert s.fired.tolist() == want
        commit(b, s, len(xs))
        assert a.state() == b.state()


def test_not_a_numeric_column() -> None:
    with pytest.raises(TypeError, match="not a numeric column"):
        values_of([1.0, "a"])
    with pytest.raises(OverflowError):
        values_of([10**400])
    assert math.isnan(values_of([None])[0])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), chunk=st.sampled_from([1, 3, 17, 100]))
def test_the_warm_up_fed_at_once_is_the_updates(seed: int, chunk: int) -> None:
    """Missing values, infinities and NaN count as missing in the reference, as one by one."""
    rng = random.Random(seed)
    odd = [None, math.inf, -math.inf, math.nan]
    xs = [rng.choice(odd) if rng.random() < 0.2 else rng.gauss(0, 1) for _ in range(150)]
    a, b = RankCusum(warmup=40, arl=1e3), RankCusum(warmup=40, arl=1e3)
    for x in xs[:100]:
        a.update(x)
    at = 0
    while not b.ready:
        x = values_of(xs[at : at + chunk])
        end = reference_end(b, x)
        feed_reference(b, x[: end + 1])
        at += min(len(x), end + 1)
    assert at == reference_end(RankCusum(warmup=40), values_of(xs)) + 1  # stopped at the freeze
    for x in xs[at:100]:
        b.update(x)
    assert a.ready and a.state() == b.state()


def test_feeding_past_the_warm_up_is_refused() -> None:
    det = RankCusum(warmup=10)
    x = values_of([float(i) for i in range(11)])
    assert reference_end(det, x) == 9
    with pytest.raises(ValueError, match="past the warm-up"):
        feed_reference(det, x)
    feed_reference(det, x[:10])
    assert det.ready and det.n == 10
