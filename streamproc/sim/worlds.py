"""Drifting worlds: synthetic streams with documented drift schedules.

A *world* is a synthetic stream from ``river.datasets.synth`` with a documented drift schedule
(SEA's variants 0-3 have theta 8, 9, 7 and 9.5):

- ``sea``: SEA (label: x0 + x1 <= theta, 5% label noise); abrupt concept changes, theta
  8 -> 9.5 at 10k, -> 7 at 20k, -> 9 at 30k.
- ``stagger``: STAGGER (categorical size, colour, shape); abrupt concept changes, rule
  0 -> 1 at 10k, -> 2 at 20k, -> 0 at 30k.
- ``hyperplane``: a rotating hyperplane (4 features, 5% noise); gradual concept drift all
  along (2 features drift, magnitude 0.001 per event).
- ``sea_shift``: SEA with theta 8 throughout; a feature shift, the irrelevant x2 moves by +5 at
  20k (the concept holds).
- ``sea_noise``: SEA's features (x0, x1, x2 uniform on [0, 10], label x0 + x1 <= theta) with 10%
  label noise and thresholds far apart: theta 10 -> 5 at 10k, -> 12 at 20k, -> 7 at 30k.
- ``mixed``: river's Mixed (two booleans, two uniforms); the concept inverts at each switch,
  function 0 -> 1 at 10k, -> 0 at 20k, -> 1 at 30k.
- ``rbf``: river's RandomRBF (4 features, 2 classes, 5 centroids); the centroids are redrawn
  (a new ``seed_model``) at 10k, 20k and 30k.
- ``agrawal``: river's Agrawal loan data (9 features, huge magnitudes); the classification
  function switches 0 -> 2 at 10k, -> 4 at 20k, -> 1 at 30k.
- ``friedman``: regression, river's FriedmanDrift with global recurring abrupt drift (the
  relevant features swap at 15k and swap back at 30k); scored by mean absolute error.
- ``stationary``: 100k events of SEA with theta 8 and 5% noise, no change at all.

Each schedule has a ``kind``: ``abrupt``, ``gradual`` (hyperplane), ``feature_shift``
(sea_shift) or ``stationary``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from river.datasets import synth

from streamproc.core.example import Example
from streamproc.core.training import TrainedModel, train

__all__ = ["SCHEDULES", "Schedule", "World"]


@dataclass(frozen=True, slots=True)
class Schedule:
    """A world's generators by segment and the events at which its drifts begin."""

    name: str
    length: int
    segments: tuple[tuple[int, Callable[[int], Iterator[tuple[dict[Any, Any], Any]]]], ...]
    drifts: tuple[int, ...]
    gradual: bool = False
    transform: Callable[[int, dict[str, Any]], dict[str, Any]] | None = None
    kind: str = "abrupt"  # abrupt, gradual, feature_shift or stationary
    task: str = "classification"  # or regression (scored by mean absolute error)


def _sea(variant: int) -> Callable[[int], Iterator[tuple[dict[Any, Any], Any]]]:
    return lambda seed: iter(synth.SEA(variant=variant, noise=0.05, seed=seed))


def _stagger(fn: int) -> Callable[[int], Iterator[tuple[dict[Any, Any], Any]]]:
    return lambda seed: iter(synth.STAGGER(classification_function=fn, seed=seed))


def _hyperplane(seed: int) -> Iterator[tuple[dict[Any, Any], Any]]:
    return iter(
        synth.Hyperplane(seed=seed, n_features=4, n_drift_features=2, mag_change=0.001,
                         noise_percentage=0.05, sigma=0.1)
    )  # fmt: skip


def _sea_theta(
    theta: float, noise: float = 0.1
) -> Callable[[int], Iterator[tuple[dict[Any, Any], Any]]]:
    """SEA's features with any threshold (river's SEA has four fixed ones) and label noise."""

    def make(seed: int) -> Iterator[tuple[dict[Any, Any], Any]]:
        rng = random.Random(seed)
        while True:
            x = {0: 10 * rng.random(), 1: 10 * rng.random(), 2: 10 * rng.random()}
            y = x[0] + x[1] <= theta
            yield x, (not y) if rng.random() < noise else y

    return make


def _mixed(fn: int) -> Callable[[int], Iterator[tuple[dict[Any, Any], Any]]]:
    return lambda seed: iter(synth.Mixed(classification_function=fn, seed=seed))


def _rbf(model: int) -> Callable[[int], Iterator[tuple[dict[Any, Any], Any]]]:
    return lambda seed: iter(synth.RandomRBF(seed_model=model, seed_sample=seed, n_classes=2,
                                             n_features=4, n_centroids=5))  # fmt: skip


def _agrawal(fn: int) -> Callable[[int], Iterator[tuple[dict[Any, Any], Any]]]:
    return lambda seed: iter(synth.Agrawal(classification_function=fn, seed=seed))


def _friedman(seed: int) -> Iterator[tuple[dict[Any, Any], Any]]:
    return iter(synth.FriedmanDrift(drift_type="gra", position=(15_000, 30_000), seed=seed))


def _shift_x2(i: int, x: dict[str, Any]) -> dict[str, Any]:
    return {**x, "2": x["2"] + 5.0} if i >= 20_000 else x


SCHEDULES: dict[str, Schedule] = {
    "sea": Schedule("sea", 40_000, ((0, _sea(0)), (10_000, _sea(3)), (20_000, _sea(2)),
                                    (30_000, _sea(1))), (10_000, 20_000, 30_000)),
    "stagger": Schedule("stagger", 40_000, ((0, _stagger(0)), (10_000, _stagger(1)),
                                            (20_000, _stagger(2)), (30_000, _stagger(0))),
                        (10_000, 20_000, 30_000)),
    "hyperplane": Schedule("hyperplane", 40_000, ((0, _hyperplane),), (), gradual=True),
    "sea_shift": Schedule("sea_shift", 40_000, ((0, _sea(0)),), (20_000,),
                          transform=_shift_x2, kind="feature_shift"),
    "sea_noise": Schedule("sea_noise", 40_000, ((0, _sea_theta(10)), (10_000, _sea_theta(5)),
                                                (20_000, _sea_theta(12)), (30_000, _sea_theta(7))),
                          (10_000, 20_000, 30_000)),
    "mixed": Schedule("mixed", 40_000, ((0, _mixed(0)), (10_000, _mixed(1)), (20_000, _mixed(0)),
                                        (30_000, _mixed(1))), (10_000, 20_000, 30_000)),
    "rbf": Schedule("rbf", 40_000, ((0, _rbf(11)), (10_000, _rbf(12)), (20_000, _rbf(13)),
                                    (30_000, _rbf(14))), (10_000, 20_000, 30_000)),
    "agrawal": Schedule("agrawal", 40_000, ((0, _agrawal(0)), (10_000, _agrawal(2)),
                                            (20_000, _agrawal(4)), (30_000, _agrawal(1))),
                        (10_000, 20_000, 30_000)),
    "friedman": Schedule("friedman", 40_000, ((0, _friedman),), (15_000, 30_000),
                         task="regression"),
    "stationary": Schedule("stationary", 100_000, ((0, _sea(0)),), (), kind="stationary"),
}  # fmt: skip
SCHEDULES["hyperplane"] = replace(SCHEDULES["hyperplane"], kind="gradual")


class World:
    """Events ``(index, features, label)`` of a schedule; features keyed by strings."""

    def __init__(self, schedule: Schedule, seed: int = 1) -> None:
        self.schedule = schedule
        self.seed = seed

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any], Any]]:
        sch = self.schedule
        bounds = [start for start, _ in sch.segments[1:]] + [sch.length]
        i = 0
        for (start, make), end in zip(sch.segments, bounds, strict=True):
            gen = make(self.seed * 7919 + start)
            while i < end:
                x, y = next(gen)
                feats = {str(k): (str(v) if sch.name == "stagger" else v) for k, v in x.items()}
                if sch.transform:
                    feats = sch.transform(i, feats)
                yield i, feats, y
                i += 1

    def warm_start(self, n: int = 1000, learner: str = "logistic") -> TrainedModel:
        """The model the inference server starts with: trained on the first concept.

        ``learner``: the built-in classifier (:data:`streamproc.core.training.LEARNERS`).
        """
        first = self.schedule.segments[0][1](self.seed + 104729)
        rows = []
        for _ in range(n):
            x, y = next(first)
            feats = {
                str(k): (str(v) if self.schedule.name == "stagger" else v) for k, v in x.items()
            }
            rows.append(Example(feats, y, None, "v0", 0.0))
        return train(rows, learner=learner)
