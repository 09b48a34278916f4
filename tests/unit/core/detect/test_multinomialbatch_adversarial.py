"""Adversarial values and parameters: the multinomial batch form is the per-event detector."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.core.detect.multinomial import MultinomialCusum
from streamproc.core.detect.multinomialbatch import commit, feed_reference, reference_end, scan

LONG = "L" * 250
VALUES = st.sampled_from(
    [
        None,
        math.nan,
        True,
        False,
        1,
        0,
        "1",
        "true",
        1.0,
        "a",
        "b",
        "",
        LONG,
        LONG + "x",
        "unseen1",
        "unseen2",
        2**70,
        -0.0,
        0.0,
        "é",
    ]
)
PARAMS = st.fixed_dictionaries(
    {
        "warmup": st.sampled_from([10, 11, 37]),
        "rate": st.sampled_from([1e-12, 0.02, 0.5, 0.9, 0.999, 0.999999]),
        "mix": st.sampled_from([1e-9, 0.05, 0.5, 0.999999]),
        "arl": st.sampled_from([1.0000001, 3.0, 1e6]),
        "max_categories": st.sampled_from([1, 2, 64]),
        "min_count": st.sampled_from([0, 1, 5]),
        "penalty": st.sampled_from([0.0, 1.0, 7.5]),
    }
)


def _same(a: MultinomialCusum, b: MultinomialCusum) -> None:
    sa, sb = a.state(), b.state()
    assert repr(sa) == repr(sb)  # repr: NaN-safe, and -0.0 vs 0.0 visible
    assert repr(a.details()) == repr(b.details())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kw=PARAMS,
    chunks=st.lists(
        st.tuples(st.lists(VALUES, min_size=0, max_size=300), st.integers(0, 10**6), st.booleans()),
        min_size=1,
        max_size=8,
    ),
)
def test_batch_is_per_event(kw: dict[str, Any], chunks: list) -> None:
    a, b = MultinomialCusum(**kw), MultinomialCusum(**kw)
    for xs, cut, restore in chunks:
        if restore:  # b restored from a snapshot mid-stream
            b = MultinomialCusum.from_state(b.state())
        if not b.ready:
            end = reference_end(b, len(xs))
            k = min(len(xs), end + 1)
            want = [a.update(x) for x in xs[:k]]
            assert not any(want)
            feed_reference(b, xs[:k])
            xs = xs[k:]
            _same(a, b)
        one = [a.update(x) for x in xs]
        s = scan(b, xs)
        if s is None:
            assert not xs
            continue
        assert s.fired.tolist() == one
        k = cut % (len(xs) + 1)
        commit(b, s, k)
        for x in xs[k:]:
            b.update(x)
        _same(a, b)
