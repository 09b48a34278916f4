"""The annotated change-point series river bundles, as TCPD has them, and TCPD's two scores.

Series: river.drift.datasets holds seven series of the Turing Change Point Dataset (van den Burg
& Williams 2020, "An Evaluation of Change Point Detection Algorithms", arXiv:2003.06222) with
their five annotators' change points. River ships some of them before TCPD's own preprocessing,
and the annotations index TCPD's version, so :func:`load` redoes that preprocessing (from the
dataset scripts of github.com/alan-turing-institute/TCPD):

- ``Apple``: river has every trading day, 1996-12-12 .. 2004-05-14 (1,867 rows, OHLC, volume);
  TCPD drops the first row, keeps every 3rd, and two dimensions, Close and Volume (622 points).
- ``BrentSpotPrice``: river has every day since 1987-05-20 (8,195 rows); TCPD keeps every 10th
  row from the first and then starts at the first kept day of 2000 (500 points).
- ``Bitcoin``: TCPD ends on 2019-06-19 (774 points); river goes on to 2019-11-10.
- ``AirlinePassengers`` (468), ``Occupancy`` (509, 4 dimensions), ``RunLog`` (376, 2 dimensions:
  pace and distance) and ``UKCoalEmploy`` (105) are TCPD's series as they are.

Scores (:func:`f1_score`, :func:`cover_score`) follow the paper's definitions (section 5.1):

- Every annotator's set and the predictions include the start of the series, index 0 ("the
  start of the series is a change point", which keeps the scores defined with no change).
- F1: precision = |TP(union of annotators, predictions)| / |predictions|; recall = the mean over
  annotators of |TP(annotator, predictions)| / |annotator's set|. A true positive is an
  annotated point with a prediction within ``margin`` (5) points, each prediction matching at
  most one annotated point (the closest is used).
- Cover: the segmentation covering metric of Arbelaez et al. (2011): for each annotator's
  segmentation S, ``C(S', S) = 1/T sum_{A in S} |A| max_{A' in S'} J(A, A')`` (J: Jaccard
  index, S': the predicted segmentation), averaged over the annotators.

Examples
--------
>>> f1_score({"a": [10, 20], "b": [11, 20], "c": [10], "d": [0, 5]}, [10, 20])
1.0
>>> cover_score({"a": [], "b": [10]}, [], 20)
0.75
"""

from __future__ import annotations

import csv
import importlib
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SERIES", "Series", "cover_score", "f1_score", "load", "segments", "true_positives"]

SERIES = (
    "AirlinePassengers",
    "Apple",
    "Bitcoin",
    "BrentSpotPrice",
    "Occupancy",
    "RunLog",
    "UKCoalEmploy",
)
MARGIN = 5


@dataclass(frozen=True)
class Series:
    name: str
    columns: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]  # one tuple per column, all of length n
    annotations: Mapping[str, tuple[int, ...]]

    @property
    def n(self) -> int:
        return len(self.values[0])


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def load(name: str) -> Series:
    """One series, preprocessed as TCPD does (see the module docstring)."""
    ds = getattr(importlib.import_module("river.drift.datasets"), name)()
    rows = _rows(Path(ds.path))
    if name == "Apple":
        rows = rows[1::3]
        columns: tuple[str, ...] = ("Close", "Volume")
    elif name == "BrentSpotPrice":
        rows = rows[::10]
        first = next(i for i, r in enumerate(rows) if r["day"].endswith("2000"))
        rows = rows[first:]
        columns = ("DPB",)
    elif name == "Bitcoin":
        last = next(i for i, r in enumerate(rows) if r["date"] == "2019-06-19")
        rows = rows[: last + 1]
        columns = ("price",)
    else:
        columns = tuple(k for k in rows[0] if k not in ("date", "time", "Year"))
    values = tuple(tuple(float(r[c]) for r in rows) for c in columns)
    notes = {str(k): tuple(int(t) for t in v) for k, v in ds.annotations.items()}
    return Series(name, columns, values, notes)


def true_positives(truth: Iterable[int], predicted: Iterable[int], margin: int = MARGIN) -> int:
    """Annotated points with a prediction within ``margin``, each prediction used once.

    Annotated points are taken in increasing order and each takes the closest unused
    prediction.

    >>> true_positives({0, 10, 20}, {0, 14, 16, 40})
    2
    """
    free = sorted(set(predicted))
    hits = 0
    for t in sorted(set(truth)):
        near = [p for p in free if abs(p - t) <= margin]
        if near:
            free.remove(min(near, key=lambda p: (abs(p - t), p)))
            hits += 1
    return hits


def f1_score(
    annotations: Mapping[str, Sequence[int]], predicted: Iterable[int], margin: int = MARGIN
) -> float:
    """TCPD's F1: precision over the union of annotators, recall averaged over annotators."""
    users = [set(v) | {0} for v in annotations.values()]
    pred = set(predicted) | {0}
    union = set().union(*users)
    precision = true_positives(union, pred, margin) / len(pred)
    recall = sum(true_positives(u, pred, margin) / len(u) for u in users) / len(users)
    if precision + recall == 0.0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def segments(points: Iterable[int], n: int) -> list[tuple[int, int]]:
    """Half-open segments ``[start, end)`` of ``range(n)`` cut at the given change points.

    >>> segments([3, 5, 0, 9], 8)
    [(0, 3), (3, 5), (5, 8)]
    """
    cuts = sorted({p for p in points if 0 < p < n})
    bounds = [0, *cuts, n]
    return list(itertools.pairwise(bounds))


def _jaccard(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / (max(a[1], b[1]) - min(a[0], b[0]) if inter else 1)


def cover_score(
    annotations: Mapping[str, Sequence[int]], predicted: Iterable[int], n: int
) -> float:
    """TCPD's cover: each annotator's segmentation covered by the predicted one, averaged."""
    pred = segments(predicted, n)
    total = 0.0
    for points in annotations.values():
        truth = segments(points, n)
        total += sum((b - a) * max(_jaccard((a, b), p) for p in pred) for a, b in truth) / n
    return total / len(annotations)
