"""Distribution-free numeric detection (rank_cusum): quiet on every shape, fast on real change."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import orjson
import pytest

from streamproc.core.detect import make_detector, restore
from streamproc.core.detect.ranks import RankCusum, splitmix64_unit
from streamproc.core.policy import DEFAULT_POLICY

Gen = Callable[[np.random.Generator, int], np.ndarray]

# The stationary shapes of issue 10, 200k values each (what a unit test can afford).
SHAPES: dict[str, Gen] = {
    "gaussian": lambda r, n: r.standard_normal(n),
    "lognormal_3_1.5": lambda r, n: r.lognormal(3.0, 1.5, n),
    "lognormal_0_0.5": lambda r, n: r.lognormal(0.0, 0.5, n),
    "laplace": lambda r, n: r.laplace(0.0, 1.0, n),
    "student_t3": lambda r, n: r.standard_t(3, n),
    "student_t5": lambda r, n: r.standard_t(5, n),
    "pareto": lambda r, n: r.pareto(1.5, n) + 1.0,
    "poisson_0.2": lambda r, n: r.poisson(0.2, n).astype(float),
    "rare_spike": lambda r, n: np.where(r.random(n) < 1e-3, 1000.0, 0.0),
    "integer_hours": lambda r, n: r.integers(0, 24, n).astype(float),
    "few_values": lambda r, n: r.choice([1.5, 2.5, 7.0], size=n, p=[0.7, 0.2, 0.1]),
    "alternating_1e8": lambda r, n: 1e8 + (np.arange(n) % 2),
    "offset_1e9": lambda r, n: 1e9 + r.standard_normal(n),
    "magnitude_1e200": lambda r, n: 1e200 * r.lognormal(0.0, 1.0, n),
    "constant": lambda r, n: np.full(n, 42.0),
}


def feed(det: RankCusum, xs: list[float]) -> list[int]:
    """Indices that fired; after each, the caller reads the evidence and resets."""
    out = []
    for i, x in enumerate(xs):
        if det.update(x):
            out.append(i)
            det.reset()
    return out


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_no_alarm_on_200k_stationary_values_of_any_shape(shape: str) -> None:
    # arl 1e7: the threshold ln(1e6 * 10) each of 10 watched features gets under the default
    # policy (Bonferroni in the monitor); one feature alone runs at ln(1e6), about 0.2 false
    # alarms per 1M values (bench/shapes.py, README).
    rng = np.random.default_rng([10, sorted(SHAPES).index(shape)])
    xs = SHAPES[shape](rng, 200_000).tolist()
    assert feed(RankCusum(arl=1e7), xs) == []


def test_the_old_gaussian_default_does_cry_wolf_on_lognormal() -> None:
    """The reason for the new default (so the test above is not vacuous)."""
    rng = np.random.default_rng(3)
    det = make_detector("mean_variance_cusum")
    xs = rng.lognormal(3.0, 1.5, 20_000).tolist()
    assert any(det.update(x) for x in xs)


@pytest.mark.parametrize(
    ("d", "sd", "limit", "change"),
    [(0.5, 1.0, 1.5 * math.log(1e6) / 0.125, "mean_up"),
     (1.0, 1.0, 1.5 * math.log(1e6) / 0.5, "mean_up"),
     (-1.0, 1.0, 1.5 * math.log(1e6) / 0.5, "mean_down"),
     (0.0, 2.0, 1.5 * math.log(1e6) / (math.log(0.5) + 1.5), "variance_up")],
)  # fmt: skip
def test_gaussian_delays_within_1_5x_the_bound(
    d: float, sd: float, limit: float, change: str
) -> None:
    delays = []
    for run in range(30):
        rng = np.random.default_rng([20, run])
        det = RankCusum()
        assert feed(det, rng.standard_normal(3000).tolist()) == []
        post = rng.normal(d, sd, 5000).tolist()
        fired = next(i for i, x in enumerate(post) if det.update(x))
        assert det.details()["change"].startswith(change)
        delays.append(fired + 1)
    assert sum(delays) / len(delays) <= limit


@pytest.mark.parametrize(
    ("name", "pre", "post"),
    [
        ("lognormal_scale_x3", lambda r, n: r.lognormal(3, 1.5, n),
         lambda r, n: 3 * r.lognormal(3, 1.5, n)),
        ("poisson_0.2_to_0.5", lambda r, n: r.poisson(0.2, n).astype(float),
         lambda r, n: r.poisson(0.5, n).astype(float)),
        ("offset_1e9_plus_3", lambda r, n: 1e9 + r.standard_normal(n),
         lambda r, n: 1e9 + 3 + r.standard_normal(n)),
        ("constant_moves", lambda r, n: np.full(n, 5.0), lambda r, n: np.full(n, 6.0)),
        ("magnitude_1e200_doubles", lambda r, n: 1e200 * r.lognormal(0, 0.2, n),
         lambda r, n: 2e200 * r.lognormal(0, 0.2, n)),
    ],
)  # fmt: skip
def test_shifts_of_real_shapes_are_caught_after_the_change_only(
    name: str, pre: Gen, post: Gen
) -> None:
    rng = np.random.default_rng(30)
    det = RankCusum()
    assert feed(det, pre(rng, 5000).tolist()) == []
    xs = post(rng, 2000).tolist()
    fired = next((i for i, x in enumerate(xs) if det.update(x)), None)
    assert fired is not None and fired < 1000, name
    d = det.details()
    assert d["change"].startswith("mean_up") or d["change"] == "variance_up"
    assert math.isfinite(det.statistic) and det.statistic >= det.threshold
    orjson.dumps(d)  # JSON-able
    assert all(math.isfinite(v) for v in d["statistics"].values())


def test_ties_are_broken_by_a_counter_based_generator_replayable_anywhere() -> None:
    a, b = RankCusum(warmup=10), RankCusum(warmup=10)
    for det in (a, b):
        for _ in range(10):
            det.update(1.0)
    scores = [a.score(1.0) for _ in range(20)]
    assert scores == [b.score(1.0) for _ in range(20)]
    assert len(set(scores)) >= 8  # randomized among the 11 tied ranks
    # The generator is a pure function of (seed, counter): a batch path reproduces it.
    assert splitmix64_unit(0, 3) == splitmix64_unit(0, 3) != splitmix64_unit(1, 3)


def test_scores_are_standard_normal_on_a_constant_and_on_counts() -> None:
    for xs in ([7.0] * 20_000, np.random.default_rng(4).poisson(0.2, 20_000).tolist()):
        det = RankCusum(warmup=1000)
        for x in xs[:1000]:
            det.update(x)
        z = np.array([det.score(float(x)) for x in xs[1000:]])
        assert abs(z.mean()) < 0.05 and abs(z.var() - 1.0) < 0.06


def test_missing_values_count_and_a_missing_rate_rise_fires() -> None:
    rng = np.random.default_rng(5)
    det = RankCusum(warmup=200)
    xs: list[float | None] = [None if rng.random() < 0.05 else float(v) for v in rng.random(2000)]
    assert feed(det, xs) == []
    ys = [None if rng.random() < 0.5 else float(rng.random()) for _ in range(500)]
    fired = next(i for i, y in enumerate(ys) if det.update(y))
    assert fired < 100 and det.details()["change"] == "missing_up"
    assert det.details()["current_missing"] > 0


def test_state_round_trips_through_json_and_continues_identically() -> None:
    rng = np.random.default_rng(6)
    xs = rng.poisson(1.0, 3000).astype(float).tolist()
    det = RankCusum(warmup=500)
    for x in xs[:1500]:
        det.update(x)
    copy = restore(orjson.loads(orjson.dumps(det.state())))
    assert copy.state() == det.state()
    rest = xs[1500:] + [9.0] * 50
    assert [det.update(x) for x in rest] == [copy.update(x) for x in rest]
    assert copy.state() == det.state()


def test_state_of_another_format_is_refused_with_the_fix() -> None:
    st = RankCusum().state()
    st["format"] = 99
    with pytest.raises(ValueError, match="reset the worker's state"):
        restore(st)


def test_reset_forgets_the_reference() -> None:
    det = RankCusum(warmup=10)
    for i in range(10):
        det.update(float(i))
    assert det.ready
    det.reset()
    assert not det.ready and det.n == 0 and det.update(3.0) is False


@pytest.mark.parametrize(
    "kwargs", [{"warmup": 5}, {"shifts": []}, {"scale": 1.0}, {"arl": 1.0}, {"seed": 1.5}]
)
def test_bad_parameters_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="rank_cusum"):
        RankCusum(**kwargs)  # type: ignore[arg-type]


def test_default_policy_uses_rank_and_multinomial_cusums() -> None:
    rule = DEFAULT_POLICY.drift
    assert rule is not None
    assert rule.make(1.5).kind == "rank_cusum"
    assert rule.make(3).kind == "rank_cusum"  # an integer feature is a count
    assert rule.make("fr").kind == "multinomial_cusum"
    assert make_detector("mean_variance_cusum").kind == "mean_variance_cusum"  # still there


def test_direction_up_ignores_a_fall_and_catches_the_rise_after_it() -> None:
    """For an error stream (the errors signal): only a rise is a reason to retrain."""
    rng = np.random.default_rng(7)
    det = make_detector("rank_cusum", direction="up")
    assert feed(det, rng.exponential(1.0, 3000).tolist()) == []  # type: ignore[arg-type]
    assert not any(det.update(x) for x in (0.2 * rng.exponential(1.0, 2000)).tolist())
    fired = next(
        i for i, x in enumerate((3.0 * rng.exponential(1.0, 2000)).tolist()) if det.update(x)
    )
    assert fired < 300 and det.details()["change"].startswith("mean_up")
    assert restore(orjson.loads(orjson.dumps(det.state()))).state() == det.state()
    with pytest.raises(ValueError, match="direction"):
        RankCusum(direction="down")
