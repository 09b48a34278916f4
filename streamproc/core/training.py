"""Built-in trainer: a river model fit on a model's recent labelled examples.

Features arrive as JSON (numbers, strings, booleans, nulls); :func:`vectorize` turns them into
what river's models take (strings one-hot, booleans 0/1, nulls left out). Classification uses
one-vs-rest logistic regression (river, several SGD passes over the small window) or, with
``learner="tree"``, a Hoeffding tree (:class:`DenseTree`); regression a ridge least-squares fit
solved exactly (:class:`RidgeRegression`); all behind a standard scaling fitted on the window.

The tree, for concepts made of threshold rules (river's Agrawal loan functions: age below 40 or
above 60, salary bands), which no linear model represents. Trained on 530 examples of Agrawal
functions 0, 2, 4, 1 (3 seeds, scored on 2,000 later examples), the logistic regression's
error was 0.42, 0.46, 0.21, 0.42, the tree's 0.004, 0.07, 0.08, 0.22 (a :func:`train` on
1,000 examples: 0.38-0.49 s against 0.03-0.07 s, median of 5, Agrawal and SEA, load 2.9).
Why it is not the default: where the concept is linear it pays (SEA, a line through two
features: 0.094 against 0.071 on 530 examples, 0.085 against 0.073 on 1,000), and in the
closed-loop benchmark (``bench/closed_loop.py --seeds 3 --learner tree``, every
classification world) it lifted agrawal from 0.634 to 0.922 and mixed from 0.897 to 0.934 but
lost on sea (0.923 to 0.910, with 6.67 retrains instead of 6), sea_noise (0.857 to 0.851), rbf
(0.902 to 0.897), hyperplane (0.854 to 0.825), sea_shift (0.929 to 0.912) and the stationary
world (0.925 to 0.913).

Why regression is solved, not learnt by SGD: constant-step SGD does not converge, so its model
depends on the last examples' noise. Measured on FriedmanDrift (10 features, 530 examples after
a change, 36 windows shifted by 41 examples each, scored on 2,000 later events): SGD's mean
absolute error 2.161 +- 0.065 (worst 2.354), the least-squares fit's 2.059 +- 0.016; the
closed-loop benchmark's default and oracle refits, trained 41 events apart, served 2.42 and
2.13 on one seed.

Examples
--------
>>> from streamproc.core.example import Example
>>> examples = [
...     Example({"x": float(i % 10)}, i % 10 >= 5, None, "v1", float(i)) for i in range(400)
... ]
>>> model = train(examples, task="classification")
>>> model.predict({"x": 8.0}), model.predict({"x": 1.0})
(True, False)
>>> round(model.error(examples), 2) <= 0.05
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from river import linear_model, multiclass, optim, tree

from streamproc.core.example import Example

__all__ = [
    "LEARNERS",
    "DenseTree",
    "RidgeRegression",
    "TrainedModel",
    "infer_task",
    "train",
    "vectorize",
]

# The built-in classifiers, the default first (``learner`` of :func:`train`).
LEARNERS = ("logistic", "tree")


def vectorize(features: Mapping[str, Any]) -> dict[str, float]:
    """JSON feature values as river wants them: floats, strings one-hot, nulls left out.

    >>> vectorize({"a": 1, "b": "red", "c": True, "d": None})
    {'a': 1.0, 'b=red': 1.0, 'c': 1.0}
    """
    out: dict[str, float] = {}
    for k, v in features.items():
        if v is None:
            continue
        if isinstance(v, str):
            out[f"{k}={v}"] = 1.0
        else:
            out[k] = float(v)
    return out


def infer_task(labels: Sequence[Any]) -> str:
    """'regression' when labels are non-integral numbers, else 'classification'."""
    for y in labels:
        if isinstance(y, float) and not y.is_integer():
            return "regression"
    return "classification"


@dataclass(frozen=True)
class Scaling:
    """Per-feature mean and deviation of the numeric inputs, fitted on the training window.

    One-hot columns (``name=value``) stay 0/1: scaling them by their presence alone, as an
    online scaler does with sparse rows, would give absent and present categories
    inconsistent values.
    """

    means: dict[str, float]
    stds: dict[str, float]

    @classmethod
    def fit(cls, rows: Sequence[Mapping[str, float]]) -> Scaling:
        sums: dict[str, list[float]] = {}
        for x in rows:
            for k, v in x.items():
                if "=" not in k:
                    acc = sums.setdefault(k, [0.0, 0.0, 0.0])
                    acc[0] += 1
                    acc[1] += v
                    acc[2] += v * v
        means, stds = {}, {}
        for k, (n, s1, s2) in sums.items():
            mean = s1 / n
            means[k] = mean
            stds[k] = math.sqrt(max(s2 / n - mean * mean, 0.0)) or 1.0
        return cls(means, stds)

    def apply(self, x: Mapping[str, float]) -> dict[str, float]:
        m, s = self.means, self.stds
        return {k: (v - m[k]) / s[k] if k in m else v for k, v in x.items()}


@dataclass
class TrainedModel:
    """A fitted model that predicts from raw JSON features; pickled as the registry artifact."""

    task: str
    pipeline: Any
    scaling: Scaling | None = None
    # "tree", "logistic" or "ridge"; a model pickled before the field existed is a logistic one.
    learner: str = "logistic"

    def predict(self, features: Mapping[str, Any]) -> Any:
        x = vectorize(features)
        if self.scaling is not None:
            x = self.scaling.apply(x)
        y = self.pipeline.predict_one(x)
        return float(y) if self.task == "regression" else y

    def error(self, examples: Sequence[Example]) -> float:
        """Mean 0/1 error (classification) or absolute error (regression) on examples."""
        if not examples:
            return float("nan")
        total = 0.0
        for ex in examples:
            y_hat = self.predict(ex.features)
            if self.task == "regression":
                total += abs(float(y_hat) - float(ex.label))
            else:
                total += 0.0 if y_hat == ex.label else 1.0
        return total / len(examples)


@dataclass(frozen=True)
class RidgeRegression:
    """Linear regression fitted exactly: ridge least squares on (scaled) feature dicts.

    Minimises ``sum((y - b - x.w)^2) + alpha * |w|^2`` (Hoerl & Kennard 1970, "Ridge
    regression"), the intercept ``b`` unpenalised, solved with :func:`numpy.linalg.lstsq` on
    the centred data stacked over ``sqrt(alpha) I`` (rank-deficient columns, such as a constant
    or a one-hot of a single category, get the smallest-norm weights). A feature absent from a
    row is 0 there, as in river's sparse linear models; one unseen in training is ignored.

    Examples
    --------
    >>> rows = [{"a": float(i), "b": float(i % 3)} for i in range(50)]
    >>> m = RidgeRegression.fit(rows, [2.0 * r["a"] - r["b"] + 1.0 for r in rows], alpha=1e-9)
    >>> round(m.predict_one({"a": 10.0, "b": 2.0}), 6)
    19.0
    """

    columns: tuple[str, ...]
    weights: tuple[float, ...]
    intercept: float

    @classmethod
    def fit(
        cls, rows: Sequence[Mapping[str, float]], y: Sequence[float], alpha: float = 1.0
    ) -> RidgeRegression:
        """Fit on ``rows`` (n dicts) and targets ``y`` (n numbers); ``alpha`` >= 0."""
        columns = tuple(sorted({k for x in rows for k in x}))
        index = {k: j for j, k in enumerate(columns)}
        xs = np.zeros((len(rows), len(columns)))
        for i, x in enumerate(rows):
            for k, v in x.items():
                xs[i, index[k]] = v
        ys = np.asarray(y, dtype=float)
        mx, my = xs.mean(axis=0), float(ys.mean())
        a = np.vstack([xs - mx, math.sqrt(alpha) * np.eye(len(columns))])
        b = np.concatenate([ys - my, np.zeros(len(columns))])
        w = np.linalg.lstsq(a, b, rcond=None)[0]
        return cls(columns, tuple(float(v) for v in w), my - float(mx @ w))

    def predict_one(self, x: Mapping[str, float]) -> float:
        out = self.intercept
        for k, w in zip(self.columns, self.weights, strict=True):
            v = x.get(k)
            if v is not None:
                out += w * v
        return out


@dataclass(frozen=True)
class DenseTree:
    """A Hoeffding tree (river) fitted by several passes over a small window, on dense rows.

    Hoeffding trees (Domingos & Hulten 2000, "Mining high-speed data streams") split a leaf
    once the Hoeffding bound says its best split is better than the second best with
    confidence ``1 - delta``, or when the two are closer than ``tau``. They learn online; on
    a retrain window of a few hundred examples a single pass leaves the tree a stump, so the
    window is replayed ``passes`` times in arrival order (the repeated examples tighten the
    bound: each pass is one more vote for the same splits). Settings chosen on windows of
    150, 530 and 1,000 examples of Agrawal functions 0, 2, 4, 1, SEA, SEA with 10% noise and
    RandomRBF (3 seeds, mean error on 2,000 later examples): grace 10, delta 1e-3, tau 0.1
    and 10 passes 0.133 (0.34 s per fit on 1,000 examples); tau 0.1 and 20 passes 0.137
    (0.68 s); river's delta 1e-5 and tau 0.05 with 20 passes 0.142; the logistic regression
    0.275.

    Every row is made dense over the columns seen in training (an absent one-hot column is 0,
    as in the linear models): a tree never shown a 0 for ``color=red`` cannot split on it.

    Examples
    --------
    >>> rows = [{"age": float(a)} for a in range(20, 80)] * 5
    >>> labels = [r["age"] < 40 or r["age"] >= 60 for r in rows]
    >>> model = DenseTree.fit(rows, labels)
    >>> [model.predict_one({"age": a}) for a in (25.0, 50.0, 70.0)]
    [True, False, True]
    """

    columns: tuple[str, ...]
    model: Any

    @classmethod
    def fit(
        cls,
        rows: Sequence[Mapping[str, float]],
        y: Sequence[Any],
        passes: int = 10,
        grace_period: int = 10,
        delta: float = 1e-3,
        tau: float = 0.1,
    ) -> DenseTree:
        """Fit on ``rows`` (n dicts) and labels ``y`` (n classes), oldest first."""
        columns = tuple(sorted({k for x in rows for k in x}))
        fitted = cls(columns, tree.HoeffdingTreeClassifier(grace_period=grace_period,
                                                           delta=delta, tau=tau))  # fmt: skip
        dense = [fitted._dense(x) for x in rows]
        for _ in range(passes):
            for x, label in zip(dense, y, strict=True):
                fitted.model.learn_one(x, label)
        return fitted

    def _dense(self, x: Mapping[str, float]) -> dict[str, float]:
        return {c: x.get(c, 0.0) for c in self.columns}

    def predict_one(self, x: Mapping[str, float]) -> Any:
        """The class for one (scaled) row; features unseen in training are ignored."""
        return self.model.predict_one(self._dense(x))


def _classifier() -> Any:
    return multiclass.OneVsRestClassifier(
        linear_model.LogisticRegression(optimizer=optim.SGD(0.1), intercept_lr=0.1)
    )


def _labelled(ex: Sequence[Any]) -> Example:
    """An example from an :class:`Example`, a row in its field order, or a (features, label)."""
    if isinstance(ex, Example):
        return ex
    if len(ex) == 2:
        return Example(ex[0], ex[1], None, "", 0.0)
    return Example.from_row(ex)


def train(
    examples: Sequence[Example] | Sequence[Sequence[Any]],
    task: str = "auto",
    epochs: int = 5,
    learner: str = "logistic",
) -> TrainedModel:
    """Fit a fresh model on the examples' features and labels, oldest first.

    ``examples``: :class:`Example` values, rows in their field order, or ``[features, label]``
    pairs (all training reads). Classification: ``learner`` ``"logistic"`` (one-vs-rest
    logistic regression, ``epochs`` SGD passes) or ``"tree"`` (:class:`DenseTree`); each pass runs
    in arrival order, so the most recent concept weighs most. Regression: a ridge fit
    (:class:`RidgeRegression`), every example weighing the same; ``learner`` does not apply.

    Raises
    ------
    ValueError
        No examples, an unknown ``learner``, or a regression label that is not a number.
    """
    if learner not in LEARNERS:
        raise ValueError(f"unknown learner {learner!r}; use one of {LEARNERS}.")
    if not examples:
        raise ValueError("no labelled examples to train on; wait until labels have been joined.")
    examples = [_labelled(ex) for ex in examples]
    if task == "auto":
        task = infer_task([ex.label for ex in examples])
    raw = [vectorize(ex.features) for ex in examples]
    scaling = Scaling.fit(raw)
    rows = [(scaling.apply(x), ex.label) for x, ex in zip(raw, examples, strict=True)]
    if task == "regression":
        ridge = RidgeRegression.fit([x for x, _ in rows], [float(y) for _, y in rows])
        return TrainedModel(task=task, pipeline=ridge, scaling=scaling, learner="ridge")
    if learner == "tree":
        fitted = DenseTree.fit([x for x, _ in rows], [y for _, y in rows])
        return TrainedModel(task=task, pipeline=fitted, scaling=scaling, learner="tree")
    model = _classifier()
    for _ in range(epochs):
        for x, y in rows:
            model.learn_one(x, y)
    return TrainedModel(task=task, pipeline=model, scaling=scaling, learner="logistic")
