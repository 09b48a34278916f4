"""The batch form of :class:`~streamproc.core.detect.ranks.RankCusum`: many values at once.

A batch of ``n`` values is scanned with numpy, without touching the detector (:func:`scan`);
the caller then applies the first ``k`` values (:func:`commit`), typically up to the first
alarm. The result is identical, bit for bit, to ``k`` calls of ``RankCusum.update``.

Method
------
1. Ranks: ``searchsorted`` left and right in the sorted reference; ties broken by the same
   counter-based splitmix64 draw as the per-event path, on uint64 arrays.
2. Increments: table lookups (each table already minus its slack), the missing-rate CUSUM's
   two increments by presence.
3. CUSUMs: Page's recursion ``S_t = max(0, S_{t-1} + inc_t)`` has the closed form
   ``S_t = C_t - min(0, min_{j <= t} C_j)`` with ``C`` the cumulative sum started from the
   carried statistic (Lindley's recursion; Lindley 1952). The closed form rounds differently
   from the recursion, so it only *decides*: where each statistic restarts from zero, and
   where it reaches a threshold. A decision closer to its boundary than the closed form's
   rounding bound (``tol``) is not trusted: the scan says so (``exact`` False) and the
   caller applies those values one by one. The statistics that are kept are recomputed
   exactly: a sequential ``cumsum`` (numpy's ``add.accumulate`` adds left to right, as the
   per-event loop does) from the last restart.

Examples
--------
>>> import random
>>> from streamproc.core.detect.ranks import RankCusum
>>> rng = random.Random(1)
>>> a, b = RankCusum(warmup=50), RankCusum(warmup=50)
>>> for _ in range(50):
...     v = rng.gauss(0, 1)
...     _ = a.update(v), b.update(v)
>>> xs = [rng.gauss(0.5, 1) if i % 9 else None for i in range(300)]
>>> fired_one_by_one = [a.update(x) for x in xs]
>>> s = scan(b, values_of(xs))
>>> s.exact, s.fired.tolist() == fired_one_by_one
(True, True)
>>> commit(b, s, len(xs))
>>> a.state() == b.state()
True
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from streamproc.core.detect.ranks import RankCusum

__all__ = ["RankScan", "commit", "feed_reference", "reference_end", "scan", "values_of"]

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_SEED_MIX = 0xD1B54A32D192ED03
_EPS = float(np.finfo(np.float64).eps)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class RankScan:
    """What ``n`` values would do to one detector, computed without changing it.

    Attributes
    ----------
    fired
        ``(n,)`` bool: what ``update`` would return for each value.
    statistic
        ``(n,)`` float: the detector's ``statistic`` after each value (closed form: within
        ``tol`` of the per-event value; decisions on it are exact when ``exact``).
    exact
        False when a decision came within the rounding bound of its boundary: apply these
        values one by one instead.
    ranks
        ``(n,)`` int: each present value's rank, -1 for a missing one.
    incs
        ``(k + 1, n)`` float: each CUSUM's increment per value (the last row: missing rate).
    restart
        ``(k + 1, n)`` bool: where each CUSUM restarts from zero (at values it takes).
    """

    fired: BoolArray
    statistic: FloatArray
    exact: bool
    ranks: IntArray
    incs: FloatArray
    restart: BoolArray
    tol: float

    def near(self, level: float) -> bool:
        """Whether some statistic comes within the rounding bound of ``level`` (a threshold
        the caller compares the statistic with): then that comparison is not exact."""
        return bool(np.any(np.abs(self.statistic - level) < self.tol))


def values_of(column: Sequence[Any]) -> FloatArray:
    """A column of JSON numbers (``None`` for missing) as float64, NaN for missing.

    Raises
    ------
    TypeError
        A value is not an int, a float or None (strings and booleans are missing values for a
        rank CUSUM, but a column holding them is not a numeric column: apply it one by one).
    OverflowError
        An integer too large for a float.
    """
    types = set(map(type, column))
    if not types <= {int, float, type(None)}:
        raise TypeError(f"not a numeric column: {sorted(t.__name__ for t in types)}")
    return np.array(column, dtype=np.float64)


# The increment tables as arrays, by the identity of the detector's tables (shared by every
# detector with the same parameters and reference size: ranks._increments is cached).
_ARRAYS: dict[int, tuple[Any, FloatArray]] = {}


def _inc_table(det: RankCusum) -> FloatArray:
    incs = det._incs
    hit = _ARRAYS.get(id(incs))
    if hit is not None and hit[0] is incs:
        return hit[1]
    if len(_ARRAYS) >= 64:
        _ARRAYS.clear()
    arr = np.array(incs, dtype=np.float64)
    _ARRAYS[id(incs)] = (incs, arr)
    return arr


def _ranks(det: RankCusum, v: FloatArray, counters: IntArray) -> IntArray:
    assert isinstance(det._ref, array)  # frozen: an array of doubles, read without a copy
    ref = np.frombuffer(det._ref, dtype=np.float64)
    lo = np.searchsorted(ref, v, side="left").astype(np.int64)
    if not len(ref):
        return lo
    # Only a value equal to the reference value at its left rank can have ties: the right
    # search is made for those alone (a continuous feature has almost none).
    tied = ref[np.minimum(lo, len(ref) - 1)] == v
    if not tied.any():
        return lo
    ties = np.zeros(len(v), dtype=np.int64)
    ties[tied] = np.searchsorted(ref, v[tied], side="right") - lo[tied]
    base = np.uint64((det.seed * _SEED_MIX + _GOLDEN) & _MASK)
    with np.errstate(over="ignore"):
        z = counters.astype(np.uint64) + base
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    u = ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)
    t = (u * (ties + 1).astype(np.float64)).astype(np.int64)
    return np.where(ties > 0, lo + np.minimum(t, ties), lo)


def scan(det: RankCusum, x: FloatArray) -> RankScan | None:
    """Scan values ``x`` (NaN or +-inf: missing) through a frozen detector, changing nothing.

    Returns None before the reference has frozen (the warm-up is applied one by one).
    """
    if not det.ready or len(x) == 0:
        return None
    n = len(x)
    present = np.isfinite(x)
    ranks = np.full(n, -1, dtype=np.int64)
    counters = det._seen + np.arange(n, dtype=np.int64)
    ranks[present] = _ranks(det, x[present], counters[present])
    table = _inc_table(det)
    k = table.shape[0]
    incs = np.empty((k + 1, n), dtype=np.float64)
    incs[:k] = np.where(present, table[:, np.maximum(ranks, 0)], 0.0)
    incs[k] = np.where(present, det._m1, det._m0)
    s0 = np.asarray(det._s, dtype=np.float64)
    c = np.cumsum(np.concatenate((s0[:, None], incs), axis=1), axis=1)
    low = np.minimum.accumulate(np.minimum(c, 0.0), axis=1)
    pre = c[:, 1:] - low[:, :-1]  # S_{t-1} + inc_t: the value the recursion compares with 0
    stats = np.maximum(pre, 0.0)
    h = det.threshold
    tol = 16.0 * _EPS * (n + 2) * (1.0 + float(np.abs(c).max()) + float(np.abs(incs).max()))
    # The rows a value moves: every row when present, only the missing-rate row when missing.
    moved = np.ones((k + 1, n), dtype=bool)
    moved[:k] = present
    restart = moved & (pre <= 0.0)
    fired = np.where(present, (stats[:k] >= h).any(axis=0), stats[k] >= h)
    statistic = stats.max(axis=0)
    ambiguous = np.any(moved & (np.abs(pre) < tol)) or np.any(np.abs(stats - h) < tol)
    return RankScan(fired, statistic, not ambiguous, ranks, incs, restart, tol)


def commit(det: RankCusum, s: RankScan, k: int) -> None:
    """Apply the first ``k`` scanned values to ``det``, exactly as ``k`` updates would.

    Raises
    ------
    ValueError
        The scan was not exact (see :attr:`RankScan.exact`), or ``k`` is out of range.
    """
    if not s.exact or not 0 <= k <= len(s.ranks):
        raise ValueError("rank scan: commit needs an exact scan and 0 <= k <= its length.")
    if k == 0:
        return
    out = []
    for row, (inc, restart) in enumerate(zip(s.incs[:, :k], s.restart[:, :k], strict=True)):
        hits = np.flatnonzero(restart)
        if len(hits):
            tail = inc[hits[-1] + 1 :]
            out.append(float(np.cumsum(tail)[-1]) if len(tail) else 0.0)
        else:
            out.append(float(np.cumsum(np.concatenate(([det._s[row]], inc)))[-1]))
    # A statistic that only took zeros after a restart stays the recursion's +0.0.
    det._s = [v if v > 0.0 else 0.0 for v in out]
    ranks = s.ranks[:k]
    present = ranks >= 0
    det._seen += k
    det._cur_missing += int(k - int(present.sum()))
    if present.any():
        det._last_rank = int(ranks[np.flatnonzero(present)[-1]])


def reference_end(det: RankCusum, x: FloatArray) -> int:
    """Index in ``x`` of the value that completes the reference of a detector still in its
    warm-up (``len(x)``: none does). Until that value, ``update`` returns False whatever the
    values: they only go into the reference (NaN and +-inf are missing, as one by one)."""
    need = det.warmup - len(det._ref)
    present = np.cumsum(np.isfinite(x))
    return int(np.searchsorted(present, need))


def feed_reference(det: RankCusum, x: FloatArray) -> None:
    """``update`` on each value of ``x`` (all in the warm-up: up to :func:`reference_end`
    included), at once; the reference freezes after the last value if it completes it.

    Raises
    ------
    ValueError
        ``x`` reaches past the value that completes the reference.
    """
    if det.ready or len(x) > reference_end(det, x) + 1:
        raise ValueError("feed_reference: values past the warm-up; scan them instead")
    present = x[np.isfinite(x)]
    det._n += len(x)
    det._missing += len(x) - len(present)
    det._ref.extend(present.tolist())
    if len(det._ref) >= det.warmup:
        det._freeze()
