"""Categorical detection (multinomial_cusum): no window, bounded state, unseen categories."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest

from streamproc.core.detect import make_detector, restore
from streamproc.core.detect.multinomial import OTHER, MultinomialCusum

P0 = [0.5, 0.3, 0.2]
P1 = [0.35, 0.3, 0.35]
CATS = np.array(["a", "b", "c"], dtype=object)


def draw(rng: np.random.Generator, p: list[float], n: int) -> list[str]:
    return list(CATS[rng.choice(3, size=n, p=p)])


def fires(det: MultinomialCusum, xs: list[object]) -> list[int]:
    out = []
    for i, x in enumerate(xs):
        if det.update(x):
            out.append(i)
            det.reset()
    return out


@pytest.mark.parametrize(
    ("name", "gen"),
    [
        ("three", lambda r, n: draw(r, P0, n)),
        ("rare_category", lambda r, n: list(np.where(r.random(n) < 0.002, "rare", "common"))),
        ("zipf_200_beyond_the_cap",
         lambda r, n: [f"c{i}" for i in r.zipf(1.5, n) % 200]),
        ("with_missing", lambda r, n: [None if r.random() < 0.1 else x for x in draw(r, P0, n)]),
        ("booleans", lambda r, n: list(r.random(n) < 0.3)),
        ("constant", lambda r, n: ["only"] * n),
    ],
)  # fmt: skip
def test_no_alarm_on_200k_stationary_values(name: str, gen: object) -> None:
    rng = np.random.default_rng(11)
    xs = gen(rng, 200_000)  # type: ignore[operator]
    assert fires(MultinomialCusum(arl=1e6), xs) == [], name


def test_frequency_shift_delay_within_2x_the_bound_after_the_change_only() -> None:
    kl = sum(p * math.log(p / q) for p, q in zip(P1, P0, strict=True))
    bound = math.log(1e6) / kl
    delays = []
    for run in range(30):
        rng = np.random.default_rng([12, run])
        det = MultinomialCusum()
        assert fires(det, draw(rng, P0, 3000)) == []
        post = draw(rng, P1, 5000)
        delays.append(next(i for i, x in enumerate(post) if det.update(x)) + 1)
    assert sum(delays) / len(delays) <= 2.0 * bound


def test_a_new_category_is_caught_in_the_other_cell_and_named_in_the_evidence() -> None:
    rng = np.random.default_rng(13)
    det = MultinomialCusum()
    assert fires(det, draw(rng, P0, 2000)) == []
    xs = ["new" if rng.random() < 0.2 else x for x in draw(rng, P0, 2000)]
    fired = next(i for i, x in enumerate(xs) if det.update(x))
    assert fired < 300
    top = det.details()["top_cells"][0]
    assert top[0] == OTHER and top[2] > top[1]
    assert det.statistic >= det.threshold and math.isfinite(det.statistic)


def test_state_is_bounded_by_the_category_cap() -> None:
    det = MultinomialCusum(warmup=5000, max_categories=16)
    for i in range(5000):
        det.update(f"user-{i}")  # an identifier: every value new
    st = det.state()
    assert len(st["counts"]) <= 18  # 16 cells + other + missing
    assert dict(st["counts"])[OTHER] == 5000 - 16
    assert len(orjson.dumps(st)) < 4000


def test_state_round_trips_and_continues_identically() -> None:
    rng = np.random.default_rng(14)
    xs = draw(rng, P0, 3000) + draw(rng, P1, 2000)
    det = MultinomialCusum(warmup=500)
    for x in xs[:1500]:
        det.update(x)
    copy = restore(orjson.loads(orjson.dumps(det.state())))
    assert copy.state() == det.state()
    assert [det.update(x) for x in xs[1500:]] == [copy.update(x) for x in xs[1500:]]


def test_state_of_another_format_is_refused_with_the_fix() -> None:
    st = MultinomialCusum().state()
    st["format"] = 0
    with pytest.raises(ValueError, match="reset the worker's state"):
        restore(st)


@pytest.mark.parametrize(
    "kwargs", [{"warmup": 3}, {"arl": 1.0}, {"max_categories": 0}, {"rate": 1.0}, {"mix": 0.0}]
)
def test_bad_parameters_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="multinomial_cusum"):
        make_detector("multinomial_cusum", **kwargs)
