"""Built-in trainer: a river model fit on a model's recent labelled examples.

Features arrive as JSON (numbers, strings, booleans, nulls); :func:`vectorize` turns them into
what river's linear models take (strings one-hot, booleans 0/1, nulls left out). Classification
uses one-vs-rest logistic regression, regression a linear regression, both behind a standard
scaling fitted on the window; several passes over the (small) window make up for online
learning's single look.

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

from river import linear_model, multiclass, optim

from streamproc.core.example import Example

__all__ = ["TrainedModel", "infer_task", "train", "vectorize"]


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


def _model(task: str) -> Any:
    if task == "regression":
        return linear_model.LinearRegression(optimizer=optim.SGD(0.01), intercept_lr=0.01)
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
    examples: Sequence[Example] | Sequence[Sequence[Any]], task: str = "auto", epochs: int = 5
) -> TrainedModel:
    """Fit a fresh model on the examples' features and labels, oldest first.

    ``examples``: :class:`Example` values, rows in their field order, or ``[features, label]``
    pairs (all training reads). The last pass runs in arrival order, so the most recent concept
    weighs most.
    """
    if not examples:
        raise ValueError("no labelled examples to train on; wait until labels have been joined.")
    examples = [_labelled(ex) for ex in examples]
    if task == "auto":
        task = infer_task([ex.label for ex in examples])
    raw = [vectorize(ex.features) for ex in examples]
    scaling = Scaling.fit(raw)
    rows = [(scaling.apply(x), ex.label) for x, ex in zip(raw, examples, strict=True)]
    model = _model(task)
    for _ in range(epochs):
        for x, y in rows:
            model.learn_one(x, float(y) if task == "regression" else y)
    return TrainedModel(task=task, pipeline=model, scaling=scaling)
