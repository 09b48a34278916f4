"""Built-in trainer: the regression fit is exact and order-free (no SGD noise); classes are
learnt by a logistic regression or, on request, a Hoeffding tree (threshold rules, one-hot
categories)."""

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


# Classification: the default learner is the logistic regression; a Hoeffding tree (DenseTree)
# is the choice for threshold rules.


def _agrawal_like(n: int, seed: int) -> list[Example]:
    """Agrawal's function 0 (river): class A when age < 40 or age >= 60; salary is noise."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        age, salary = rng.uniform(20, 80), rng.uniform(20_000, 150_000)
        out.append(Example({"age": age, "salary": salary}, age < 40 or age >= 60, None, "v1",
                           float(i)))  # fmt: skip
    return out


def test_tree_learns_a_threshold_rule_a_linear_model_cannot() -> None:
    examples, test = _agrawal_like(500, 1), _agrawal_like(2000, 2)
    tree_model = train(examples, task="classification", learner="tree")
    linear = train(examples, task="classification")
    assert (tree_model.learner, linear.learner) == ("tree", "logistic")
    assert tree_model.error(test) < 0.05
    assert linear.error(test) > 0.25  # no line separates the two age bands from the middle one


def test_tree_splits_on_one_hot_categories() -> None:
    # STAGGER-like: class when size is small and color red. The one-hot columns are absent for
    # other categories; the dense rows give the tree the 0s it needs to split on them.
    rng = random.Random(3)
    sizes, colors = ["small", "medium", "large"], ["red", "green", "blue"]
    rows = [(rng.choice(sizes), rng.choice(colors)) for _ in range(600)]
    examples = [Example({"size": s, "color": c}, s == "small" and c == "red", None, "v1",
                        float(i)) for i, (s, c) in enumerate(rows)]  # fmt: skip
    model = train(examples, task="classification", learner="tree")
    assert model.error(examples) == 0.0
    assert model.predict({"size": "small", "color": "red"}) is True
    assert model.predict({"size": "small", "color": "purple"}) is False  # unseen category


def test_tree_with_missing_and_unseen_features_predicts_a_known_class() -> None:
    examples = _agrawal_like(300, 4)
    examples[5] = examples[5]._replace(features={"age": None, "salary": 50_000.0})
    model = train(examples, task="classification", learner="tree")
    assert model.predict({"salary": 60_000.0, "extra": 1.0}) in (True, False)
    assert model.predict({}) in (True, False)


def test_tree_model_pickles_and_predicts_the_same() -> None:
    examples, test = _agrawal_like(400, 5), _agrawal_like(200, 6)
    model = train(examples, task="classification", learner="tree")
    again = pickle.loads(pickle.dumps(model))
    served = [model.predict(ex.features) for ex in test]
    assert [again.predict(ex.features) for ex in test] == served


def test_multiclass_labels_are_learnt_by_the_tree() -> None:
    rng = random.Random(7)
    xs = [rng.uniform(0, 30) for _ in range(600)]
    examples = [Example({"x": x}, ["low", "mid", "high"][int(x // 10)], None, "v1", float(i))
                for i, x in enumerate(xs)]  # fmt: skip
    model = train(examples, learner="tree")
    assert [model.predict({"x": x}) for x in (5.0, 15.0, 25.0)] == ["low", "mid", "high"]


def test_unknown_learner_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="'logistic', 'tree'"):
        train(_agrawal_like(60, 8), learner="forest")


def test_an_artifact_pickled_before_the_learner_field_reads_as_logistic() -> None:
    model = train(_agrawal_like(100, 9))
    assert model.learner == "logistic"
    del model.__dict__["learner"]  # as an artifact written by the previous release
    assert pickle.loads(pickle.dumps(model)).learner == "logistic"
