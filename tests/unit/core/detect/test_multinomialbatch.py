"""The multinomial CUSUM's batch form is the per-event detector, bit for bit."""

from __future__ import annotations

import random
from typing import Any

import pytest

from streamproc.core.detect.multinomial import MultinomialCusum
from streamproc.core.detect.multinomialbatch import commit, feed_reference, reference_end, scan


def _warm(rng: random.Random, kw: dict[str, Any], cats: list[Any]) -> tuple[Any, Any]:
    a, b = MultinomialCusum(**kw), MultinomialCusum(**kw)
    for _ in range(kw["warmup"]):
        v = rng.choice(cats)
        a.update(v)
        b.update(v)
    return a, b


@pytest.mark.parametrize("seed", range(40))
def test_scan_and_commit_match_updates_at_any_cut(seed: int) -> None:
    """Random categories (missing, NaN, booleans, numbers, text, unseen ones), rates that
    renormalize the EWMA's scale within a batch (0.5: every ~330 values), an ARL that fires
    often, and commits cut anywhere: the same alarms, statistics and state."""
    rng = random.Random(seed)
    kw = {"warmup": rng.choice([10, 50, 200]), "rate": rng.choice([0.02, 0.2, 0.5]),
          "arl": rng.choice([1e2, 1e6])}  # fmt: skip
    cats: list[Any] = [None, float("nan"), True, 3, "x", "y", "z"][: rng.randint(2, 7)]
    a, b = _warm(rng, kw, cats)
    fired = 0
    for _ in range(6):
        pool = [*cats, f"new{rng.randint(0, 5)}"] if rng.random() < 0.3 else cats
        xs = rng.choices(pool, [rng.random() for _ in pool], k=rng.randint(1, 2000))
        one_by_one = [a.update(x) for x in xs]
        s = scan(b, xs)
        assert s is not None and s.fired.tolist() == one_by_one
        k = rng.randint(0, len(xs))
        commit(b, s, k)
        for x in xs[k:]:
            b.update(x)
        assert a.state() == b.state()
        assert a.details() == b.details()
        fired += sum(one_by_one)
    if kw["arl"] == 1e2:
        assert fired  # the alarms were exercised, not only quiet stretches


def test_a_reference_fed_at_once_is_the_one_built_value_by_value() -> None:
    a, b = MultinomialCusum(warmup=100), MultinomialCusum(warmup=100)
    xs = [random.Random(1).choice("abcx") for _ in range(150)]
    for x in xs[:30]:
        a.update(x)
    feed_reference(b, xs[:30])
    end = reference_end(b, 120)
    assert end == 69  # the 70th of the next values completes the 100
    for x in xs[30 : 30 + end + 1]:
        a.update(x)
    feed_reference(b, xs[30 : 30 + end + 1])
    assert a.ready and b.ready and a.state() == b.state()
    with pytest.raises(ValueError, match="past the warm-up"):
        feed_reference(b, xs[:1])


def test_a_detector_in_its_warm_up_is_not_scanned_and_bad_cuts_are_refused() -> None:
    det = MultinomialCusum(warmup=10)
    assert scan(det, ["a"]) is None
    for _ in range(10):
        det.update("a")
    s = scan(det, ["a", "b"])
    assert s is not None
    with pytest.raises(ValueError, match="0 <= k <= its length"):
        commit(det, s, 3)
