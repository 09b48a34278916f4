"""One labelled example: a prediction joined with its label, as kept for training and gating.

The monitor keeps a window of them (:mod:`streamproc.core.window`); a retrain trains on them
and the gate judges on them (:mod:`streamproc.core.retrain`, :mod:`streamproc.core.gate`).
In a snapshot an example is a JSON array in field order, ``[features, label, prediction,
version, ts]`` (:meth:`Example.row`): field names repeated in every example would add about
45 bytes to each, and the window is bounded in bytes. :meth:`Example.from_row` reads that
array back, and it is the format snapshots have always used.

Examples
--------
>>> ex = Example({"x": 1.5}, label=1, prediction=0, version="v1", ts=60.0)
>>> ex.label, ex.prediction, ex.ts
(1, 0, 60.0)
>>> ex.row()
[{'x': 1.5}, 1, 0, 'v1', 60.0]
>>> Example.from_row(ex.row()) == ex
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

__all__ = ["Example", "as_examples"]


class Example(NamedTuple):
    """A prediction with its label.

    Attributes
    ----------
    features
        The inputs the prediction was made from (JSON values by feature name).
    label
        The ground truth that answered it.
    prediction
        What the deployed ``version`` predicted for these features (None: not known).
    version
        The model version that made the prediction.
    ts
        Event time of the label, seconds (when the example became labelled).
    """

    features: Mapping[str, Any]
    label: Any
    prediction: Any
    version: str
    ts: float

    def row(self) -> list[Any]:
        """The example as its snapshot keeps it: a JSON-ready array in field order."""
        return [self.features, self.label, self.prediction, self.version, self.ts]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Example:
        """An example from :meth:`row`'s array (or any 5-item sequence in field order).

        Raises
        ------
        ValueError
            When ``row`` does not have the five fields.
        """
        if len(row) != len(cls._fields):
            raise ValueError(
                f"an example has {len(cls._fields)} fields {cls._fields}, got {len(row)}: "
                f"{str(row)[:80]}; pass [features, label, prediction, version, ts]"
            )
        features, label, prediction, version, ts = row
        return cls(features, label, prediction, version, ts)


def as_examples(examples: Sequence[Sequence[Any]]) -> list[Example]:
    """``examples`` as :class:`Example` values (rows in field order are converted).

    >>> as_examples([[{"x": 1}, 0, 0, "v1", 5.0]])[0].version
    'v1'
    """
    return [ex if isinstance(ex, Example) else Example.from_row(ex) for ex in examples]
