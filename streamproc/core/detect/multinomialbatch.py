"""The batch form of :class:`~streamproc.core.detect.multinomial.MultinomialCusum`.

A batch of ``n`` values is scanned without touching the detector (:func:`scan`); the caller
then applies the first ``k`` values (:func:`commit`), typically up to the first alarm. The
result is identical, bit for bit, to ``k`` calls of ``MultinomialCusum.update``.

Method
------
1. Cells: each value's cell index (the detector's own key function and cell map).
2. Plug-in estimate: the EWMA's scale ``g`` after each value is ``divide.accumulate`` of
   ``1 - rate`` (numpy's accumulate is sequential, so each step rounds as the per-event
   division does); each cell's unnormalized weight before each of its values is an
   ``add.accumulate`` of ``rate * g`` over that cell's values. A scale past ``1e100`` is
   renormalized after the value that crossed it, as one by one, and the scan goes on from
   there. ``p1`` then takes the per-event expression, operation for operation.
3. Logarithms: ``math.log`` on each ``p1`` (numpy's vectorized log may round differently).
4. The CUSUM recursion itself is a plain loop over floats (its additions in the per-event
   order), about a tenth of an ``update``; it records each statistic, which makes every
   decision exact.

Examples
--------
>>> import random
>>> from streamproc.core.detect.multinomial import MultinomialCusum
>>> rng = random.Random(3)
>>> a, b = MultinomialCusum(warmup=200), MultinomialCusum(warmup=200)
>>> for _ in range(200):
...     v = rng.choice("abc")
...     _ = a.update(v), b.update(v)
>>> xs = [rng.choice("aabcd") for _ in range(3000)]
>>> fired_one_by_one = [a.update(x) for x in xs]
>>> s = scan(b, xs)
>>> s.fired.tolist() == fired_one_by_one
True
>>> commit(b, s, len(xs))
>>> a.state() == b.state()
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamproc.core.detect.multinomial import OTHER, MultinomialCusum, _key
from streamproc.core.detect.rankbatch import BoolArray, FloatArray, IntArray

__all__ = ["MultinomialScan", "commit", "feed_reference", "reference_end", "scan"]

_RENORMALIZE = 1e100  # the per-event update's bound on the EWMA's scale


@dataclass(frozen=True, slots=True)
class MultinomialScan:
    """What ``n`` values would do to one frozen detector, computed without changing it.

    Attributes
    ----------
    fired
        ``(n,)`` bool: what ``update`` would return for each value.
    statistic
        ``(n,)`` float: the detector's ``statistic`` after each value, exactly.
    since
        ``(n,)`` int: values since the statistic last left zero, after each value.
    cells
        ``(n,)`` int: each value's cell index.
    exact
        Always True (the statistics are the per-event ones); kept for the batch path's
        common interface with the rank scan.
    """

    fired: BoolArray
    statistic: FloatArray
    since: IntArray
    cells: IntArray
    exact: bool = True

    def near(self, level: float) -> bool:
        """Never: each statistic is the per-event one, so a comparison with ``level`` is
        exact."""
        return False


def scan(det: MultinomialCusum, values: Sequence[Any]) -> MultinomialScan | None:
    """Scan ``values`` through a frozen detector, changing nothing.

    Returns None before the reference has frozen (the warm-up is applied one by one).
    """
    if not det.ready or len(values) == 0:
        return None
    cells = _cells(det, values)
    p1, _, _ = _plug_in(det, cells)
    logs = list(map(math.log, p1.tolist()))
    lp0 = det._lp0
    c, h = det._c, det._h
    s_prev = det._s
    since = det._since
    stats: list[float] = []
    sinces: list[int] = []
    for lg, i in zip(logs, cells.tolist(), strict=True):
        s = s_prev + lg - lp0[i] - c  # the per-event expression, in its order
        if s > 0.0:
            since = since + 1 if s_prev != 0.0 else 1
            s_prev = s
        else:
            s_prev = 0.0
            since = 0
        stats.append(s_prev)
        sinces.append(since)
    statistic = np.array(stats, dtype=np.float64)
    return MultinomialScan(statistic >= h, statistic, np.array(sinces, dtype=np.int64), cells)


def commit(det: MultinomialCusum, s: MultinomialScan, k: int) -> None:
    """Apply the first ``k`` scanned values to ``det``, exactly as ``k`` updates would.

    Raises
    ------
    ValueError
        ``k`` is out of range.
    """
    if not 0 <= k <= len(s.cells):
        raise ValueError("multinomial scan: commit needs 0 <= k <= its length.")
    if k == 0:
        return
    cells = s.cells[:k]
    _, w, g = _plug_in(det, cells)
    det._w, det._g = w.tolist(), g
    det._current = _current(det, s, k)
    det._s = float(s.statistic[k - 1])
    det._since = int(s.since[k - 1])
    det._seen += k


def _cells(det: MultinomialCusum, values: Sequence[Any]) -> IntArray:
    cells = det._cells
    other = cells[OTHER]
    types = set(map(type, values))
    if types == {str} or types == {int}:
        # Each distinct value's cell once: of one of these types, equal values have one key
        # (a mix would not: 1 == True == 1.0, yet their keys are "1", "true" and "1.0").
        memo = {x: cells.get(_key(x), other) for x in set(values)}
        return np.fromiter(map(memo.__getitem__, values), dtype=np.int64, count=len(values))
    return np.fromiter(
        (cells.get(_key(x), other) for x in values), dtype=np.int64, count=len(values)
    )


def _plug_in(det: MultinomialCusum, cells: IntArray) -> tuple[FloatArray, FloatArray, float]:
    """``p1`` before each value, and the EWMA's weights and scale after the last."""
    n = len(cells)
    q = 1.0 - det.rate
    keep, mix = 1.0 - det.mix, det.mix
    p0 = np.asarray(det._p0, dtype=np.float64)
    w = np.asarray(det._w, dtype=np.float64).copy()
    g = det._g
    p1 = np.empty(n, dtype=np.float64)
    start = 0
    while start < n:
        steps = np.full(n - start + 1, q)
        steps[0] = g
        with np.errstate(over="ignore"):  # past the bound is past where this chunk ends
            scale = np.divide.accumulate(steps)  # scale[t]: before value start + t
        over = np.flatnonzero(scale[1:] > _RENORMALIZE)
        end = start + (int(over[0]) + 1 if len(over) else n - start)
        before, after = scale[: end - start], scale[1 : end - start + 1]
        here = cells[start:end]
        add = det.rate * after
        w_before = np.empty(end - start, dtype=np.float64)
        for cell in np.unique(here).tolist():
            at = np.flatnonzero(here == cell)
            acc = np.add.accumulate(np.concatenate(([w[cell]], add[at])))
            w_before[at] = acc[:-1]
            w[cell] = acc[-1]
        p1[start:end] = keep * w_before / before + mix * p0[here]
        g = float(after[-1])
        if len(over):  # the value at end - 1 crossed the bound: renormalized after it
            w = w / g
            g = 1.0
        start = end
    return p1, w, g


def _current(det: MultinomialCusum, s: MultinomialScan, k: int) -> list[int]:
    """The per-cell counts since the statistic last left zero, after ``k`` values (left as
    they were when the statistic returns to zero, as one by one)."""
    positive = s.since[:k] > 0
    left_zero = positive & (s.since[:k] == 1)
    starts = np.flatnonzero(left_zero)
    if len(starts):
        begin, base = int(starts[-1]), np.zeros(len(det._p0), dtype=np.int64)
    elif det._s > 0.0:
        begin, base = 0, np.asarray(det._current, dtype=np.int64)
    else:
        return list(det._current)
    zeros = np.flatnonzero(~positive[begin:])
    end = begin + int(zeros[0]) if len(zeros) else k
    counts = np.bincount(s.cells[begin:end], minlength=len(det._p0))
    return [int(v) for v in base + counts]


def reference_end(det: MultinomialCusum, n: int) -> int:
    """Index, among ``n`` next values, of the one that completes the reference of a detector
    still in its warm-up (``n``: none does). Until it, ``update`` returns False whatever the
    values: they are only counted."""
    return min(n, det.warmup - det._n - 1)


def feed_reference(det: MultinomialCusum, values: Sequence[Any]) -> None:
    """``update`` on each of ``values`` (all in the warm-up: up to :func:`reference_end`
    included), at once; the reference freezes after the last value if it completes it.

    Raises
    ------
    ValueError
        ``values`` reach past the value that completes the reference.
    """
    if det.ready or len(values) > det.warmup - det._n:
        raise ValueError("feed_reference: values past the warm-up; scan them instead")
    for x in values:
        det._count(_key(x))
    det._n += len(values)
    if det._n >= det.warmup:
        det._freeze()
