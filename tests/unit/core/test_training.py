"""Built-in trainer: the regression fit is exact and order-free (no SGD noise)."""

from __future__ import annotations

import pickle
import random

import pytest

from streamproc.core.example import Example
from streamproc.core.training import RidgeRegression, train


def _linear(n: int, seed: int, noise: float = 0.5) -> list[Example]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.uniform(0, 10), rng.uniform(-5, 5)
        cat = rng.choice(["red", "blue"])
        y = 3.0 * a - 2.0 * b + (4.0 if cat == "red" else 0.0) + 1.0 + rng.gauss(0, noise)
        out.append(Example({"a": a, "b": b, "c": cat}, y, None, "v1", float(i)))
    return out


def test_regression_recovers_a_linear_law_with_categories() -> None:
    model = train(_linear(400, 1), task="regression")
    assert model.predict({"a": 5.0, "b": 1.0, "c": "red"}) == pytest.approx(18.0, abs=0.2)
    assert model.predict({"a": 5.0, "b": 1.0, "c": "blue"}) == pytest.approx(14.0, abs=0.2)


def test_regression_does_not_depend_on_the_order_of_the_examples() -> None:
    # Constant-step SGD's model depends on the last examples seen; the exact fit does not.
    examples = _linear(300, 2, noise=3.0)
    shuffled = examples[:]
    random.Random(5).shuffle(shuffled)
    x = {"a": 7.5, "b": -2.0, "c": "blue"}
    assert train(examples, "regression").predict(x) == pytest.approx(
        train(shuffled, "regression").predict(x), abs=1e-9
    )


def test_regression_error_is_stable_across_neighbouring_windows() -> None:
    # Windows of 500 shifted by 40 examples: the served error hardly moves (spread 0.013;
    # the constant-step SGD fit used before spread 0.144 on the same windows).
    examples = _linear(1500, 3, noise=2.0)
    test = _linear(1000, 4, noise=2.0)
    maes = [train(examples[s : s + 500], "regression").error(test) for s in range(0, 1000, 40)]
    assert max(maes) - min(maes) < 0.1


def test_ridge_ignores_unseen_features_and_survives_a_constant_column() -> None:
    rows = [{"a": float(i), "k": 1.0} for i in range(30)]
    m = RidgeRegression.fit(rows, [2.0 * r["a"] for r in rows], alpha=1e-9)
    assert m.predict_one({"a": 3.0, "k": 1.0, "new": 99.0}) == pytest.approx(6.0, abs=1e-6)
    assert pickle.loads(pickle.dumps(m)) == m


def test_regression_refuses_a_label_that_is_not_a_number() -> None:
    examples = _linear(50, 6)
    examples[3] = examples[3]._replace(label="n/a")
    with pytest.raises(ValueError):
        train(examples, task="regression")
