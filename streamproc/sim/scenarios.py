"""Synthetic traffic with known change points, for the demo, the tests and the benchmarks.

A two-feature world: ``x1, x2 ~ U(0, 1)``. Under concept ``A`` the label is ``x1 > x2``; under
concept ``B`` it is ``x1 + x2 > 1``. A model right for one is wrong half the time on the other,
so an abrupt switch is a real, measurable degradation.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

CONCEPTS: dict[str, Callable[[float, float], bool]] = {
    "A": lambda x1, x2: x1 > x2,
    "B": lambda x1, x2: x1 + x2 > 1.0,
}

Predictor = Callable[[dict[str, Any]], Any]

SEED_STEPS = (0.02, 0.05, 0.12, 0.03, 0.15)
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z: event time starts here in generated traffic


def rule_model(concept: str = "A", flip: float = 0.0, seed: int = 7) -> Predictor:
    """An inference server's initial model: a concept's rule, wrong ``flip`` of the time."""
    rng = random.Random(seed)
    rule = CONCEPTS[concept]

    def predict(features: dict[str, Any]) -> Any:
        y = rule(features["x1"], features["x2"])
        return (not y) if rng.random() < flip else y

    return predict


@dataclass(frozen=True, slots=True)
class Interaction:
    """One prediction and the label that answers it."""

    prediction: dict[str, Any]
    label: dict[str, Any]


def interactions(
    model_id: str,
    concept_at: Callable[[int], str],
    predictor: Callable[[int], tuple[str, Predictor]],
    start: int,
    count: int,
    seed: int = 1,
    dt: float = 1.0,
    label_noise: float = 0.0,
    t0: float = T0,
) -> Iterator[Interaction]:
    """Predictions ``start .. start+count-1`` with their labels (label_ts = prediction ts).

    Event ``i`` is at ``t0 + i * dt`` (seconds since the epoch).

    ``concept_at(i)`` names the concept in force at index i; ``predictor(i)`` returns the
    (version, predict function) serving at index i.
    """
    rng = random.Random(seed * 1_000_003 + start)
    for i in range(start, start + count):
        x1, x2 = rng.random(), rng.random()
        features = {"x1": round(x1, 6), "x2": round(x2, 6)}
        y = CONCEPTS[concept_at(i)](x1, x2)
        if label_noise and rng.random() < label_noise:
            y = not y
        version, predict = predictor(i)
        ts = t0 + i * dt
        event_id = f"{model_id}-{i}"
        yield Interaction(
            prediction={
                "event_id": event_id,
                "model_id": model_id,
                "model_version": version,
                "ts": ts,
                "features": features,
                "prediction": predict(features),
            },
            label={"event_id": event_id, "model_id": model_id, "ts": ts, "label": y},
        )


def seed_metrics(
    model_id: str, values: tuple[float, ...] = SEED_STEPS, t0: float = T0, interval: float = 60.0
) -> list[dict[str, Any]]:
    """The seed's table: one ``drift`` metric per monitoring interval, with no model_version."""
    return [
        {"model_id": model_id, "ts": t0 + (k + 1) * interval, "name": "drift", "value": v}
        for k, v in enumerate(values)
    ]
