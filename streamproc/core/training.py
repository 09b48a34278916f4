"""Built-in trainer: a river model fit on a model's recent labelled examples.

Features arrive as JSON (numbers, strings, booleans, nulls); :func:`vectorize` turns them into
what river's linear models take (strings one-hot, booleans 0/1, nulls left out). Classification
uses one-vs-rest logistic regression, regression a linear regression, both behind a standard
scaler; several passes over the (small) window make up for online learning's single look.

Examples
--------
>>> examples = [[{"x": float(i % 10)}, i % 10 >= 5, None, "v1", float(i)] for i in range(400)]
>>> model = train(examples, task="classification")
>>> model.predict({"x": 8.0}), model.predict({"x": 1.0})
(True, False)
>>> round(model.error(examples), 2) <= 0.05
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from river import compose, linear_model, multiclass, optim, preprocessing

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


@dataclass
class TrainedModel:
    """A fitted model that predicts from raw JSON features; pickled as the registry artifact."""

    task: str
    pipeline: Any

    def predict(self, features: Mapping[str, Any]) -> Any:
        x = vectorize(features)
        y = self.pipeline.predict_one(x)
        return float(y) if self.task == "regression" else y

    def error(self, examples: Sequence[Sequence[Any]]) -> float:
        """Mean 0/1 error (classification) or absolute error (regression) on examples."""
        if not examples:
            return float("nan")
        total = 0.0
        for ex in examples:
            y_hat = self.predict(ex[0])
            if self.task == "regression":
                total += abs(float(y_hat) - float(ex[1]))
            else:
                total += 0.0 if y_hat == ex[1] else 1.0
        return total / len(examples)


def _pipeline(task: str) -> Any:
    if task == "regression":
        return compose.Pipeline(
            preprocessing.StandardScaler(), linear_model.LinearRegression(optimizer=optim.SGD(0.01))
        )
    return compose.Pipeline(
        preprocessing.StandardScaler(),
        multiclass.OneVsRestClassifier(linear_model.LogisticRegression(optimizer=optim.SGD(0.1))),
    )


def train(examples: Sequence[Sequence[Any]], task: str = "auto", epochs: int = 3) -> TrainedModel:
    """Fit a fresh model on examples ``[features, label, ...]``, oldest first.

    The last pass runs in arrival order, so the most recent concept weighs most.
    """
    if not examples:
        raise ValueError("no labelled examples to train on; wait until labels have been joined.")
    if task == "auto":
        task = infer_task([ex[1] for ex in examples])
    pipe = _pipeline(task)
    rows = [(vectorize(ex[0]), ex[1]) for ex in examples]
    for _ in range(epochs):
        for x, y in rows:
            pipe.learn_one(x, float(y) if task == "regression" else y)
    return TrainedModel(task=task, pipeline=pipe)
