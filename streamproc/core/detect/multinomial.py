"""Sequential multinomial test for one categorical value: an adaptive CUSUM on category frequencies.

A windowed chi-square test must fill its window with changed data before it can see a change,
so its delay is bounded below by the window (the bench measured 3.98x the ``ln(ARL)/KL`` bound
with 1000-value windows). A CUSUM has no window: its delay is close to ``ln(ARL) / KL(p1 || p0)``
for the change it looks for. The post-change frequencies ``p1`` are unknown, so they are
estimated as the change goes on, from past values only (a predictable plug-in estimate): the
adaptive CUSUM of Lorden & Pollak (2005); see Tartakovsky, Nikiforov & Basseville (2014),
"Sequential Analysis", ch. 8, for multinomial and nonparametric CUSUMs.

Method
------
1. Reference: the first ``warmup`` values after a (re)start give the cell counts. Cells are the
   first ``max_categories`` distinct categories seen with at least ``min_count`` values, plus
   ``other`` (every rarer, later or unseen category, so state stays bounded, identifiers
   beyond the cap are never stored, and no cell rests on a handful of values) and
   ``missing`` (None, NaN). ``p0(c) = (count(c) + 1/2) / (W + C/2)`` (Jeffreys prior, so a cell
   never has probability 0).
2. Plug-in estimate of the current frequencies: an exponentially weighted average of past
   one-hot vectors, ``e_t = (1 - rate) e_{t-1} + rate * onehot(x_t)``, starting at ``p0``, mixed
   with ``p0``: ``p1_t = (1 - mix) e_{t-1} + mix p0``. It depends only on values before ``x_t``.
3. Recursion: ``S_t = max(0, S_{t-1} + ln(p1_t(x_t) / p0(x_t)) - c)``; fire at ``S_t >= ln(arl)``.
   ``p1_t`` is a probability vector chosen before ``x_t``, so under ``p0``
   ``E[exp(increment)] = 1``: a likelihood ratio, and Ville's inequality bounds the false-alarm
   probability per restart by ``1/arl`` whatever ``p0`` is. Under no change the plug-in is
   noisy around ``p0``, which gives the statistic a negative drift of about
   ``(cells - 1) * rate / 4`` per value. The reference's own estimation error pushes the other
   way, by ``KL(p || p0)``, about ``(cells - 1) / (2 W)`` per value, and fully so when the
   plug-in is exact (a constant); each increment therefore pays ``penalty * (cells - 1) / W``.

Per-event increments plus one recursion: a batch path computes the cell index of many values
(dict lookup), the EWMA by a linear filter (``scipy.signal.lfilter``) per cell, the increments
with numpy, and the CUSUM by the closed form in /work/shared/notes/detectors.md. The EWMA is
kept unnormalized here (weights times a growing scale) so one update is O(1), not O(cells).

Examples
--------
>>> import random
>>> rng = random.Random(5)
>>> det = MultinomialCusum(warmup=500)
>>> cats, p0, p1 = ["a", "b", "c"], [0.5, 0.3, 0.2], [0.35, 0.3, 0.35]
>>> any(det.update(rng.choices(cats, p0)[0]) for _ in range(20000))
False
>>> delay = next(i for i in range(5000) if det.update(rng.choices(cats, p1)[0]))
>>> delay < 400
True
>>> sorted(c[0] for c in det.details()["top_cells"][:2])  # the cells that moved most
['a', 'c']
>>> fresh = MultinomialCusum(warmup=100)
>>> _ = [fresh.update("a") for _ in range(100)]
>>> next(i for i in range(100) if fresh.update("never-seen"))  # unseen category: "other"
6
>>> MultinomialCusum.from_state(det.state()).state() == det.state()
True
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from streamproc.core.stateformat import check_format

__all__ = ["MULTINOMIAL_FORMAT", "MultinomialCusum", "cell_key"]

MULTINOMIAL_FORMAT = 1
OTHER = "<other>"
MISSING = "<missing>"
_MAX_KEY = 200  # characters of a category kept as a cell name


def cell_key(x: Any) -> str:
    """The cell name of a value, as in ``details()["top_cells"]``.

    >>> cell_key(True), cell_key(3), cell_key(None)
    ('true', '3', '<missing>')
    """
    return _key(x)


def _key(x: Any) -> str:
    """The cell name of a value: categories are compared as text (bounded length)."""
    if x is None or (isinstance(x, float) and x != x):
        return MISSING
    if isinstance(x, bool):
        return "true" if x else "false"
    s = x if isinstance(x, str) else str(x)
    return s[:_MAX_KEY]


class MultinomialCusum:
    """Adaptive multinomial CUSUM on the frequencies of one categorical value.

    Parameters
    ----------
    warmup
        Values that form the reference counts ``W`` (missing ones included, as a cell).
    arl
        Average run length between false alarms, in values: the threshold is ``ln(arl)``.
    max_categories
        Distinct categories with a cell of their own; later ones share ``other``.
    rate
        Weight of the newest value in the plug-in estimate of the current frequencies.
    mix
        Share of ``p0`` mixed into the plug-in estimate (keeps every increment finite).
    min_count
        Reference count below which a category shares the ``other`` cell.
    penalty
        Subtracted from each increment, in units of ``(cells - 1) / W``.

    Raises
    ------
    ValueError
        On a warm-up below 10, ``arl <= 1``, ``max_categories < 1``, ``rate`` or ``mix``
        outside (0, 1).
    """

    kind: ClassVar[str] = "multinomial_cusum"

    def __init__(
        self,
        warmup: int = 1000,
        arl: float = 1e6,
        max_categories: int = 64,
        rate: float = 0.02,
        mix: float = 0.05,
        min_count: int = 5,
        penalty: float = 1.0,
    ) -> None:
        if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 10:
            raise ValueError(f"{self.kind}: warmup must be a whole number >= 10, got {warmup!r}.")
        for name, v in (("max_categories", max_categories), ("min_count", min_count)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{self.kind}: {name} must be a whole number >= 0, got {v!r}.")
        finite = all(math.isfinite(v) for v in (arl, rate, mix, penalty))
        if (
            not (finite and arl > 1 and max_categories >= 1 and 0 < rate < 1 and 0 < mix < 1)
            or not penalty >= 0
        ):
            raise ValueError(
                f"{self.kind} needs arl > 1, max_categories >= 1, 0 < rate < 1, 0 < mix < 1 "
                "and penalty >= 0."
            )
        self.warmup = warmup
        self.arl = float(arl)
        self.max_categories = max_categories
        self.rate = float(rate)
        self.mix = float(mix)
        self.min_count = min_count
        self.penalty = float(penalty)
        self._h = math.log(self.arl)
        self.reset()

    def reset(self) -> None:
        self._n = 0
        self._counts: dict[str, int] = {}
        self._cells: dict[str, int] = {}  # cell name -> index, once frozen
        self._p0: list[float] = []
        self._lp0: list[float] = []
        self._c = 0.0  # per-value penalty: the reference's own estimation error
        self._w: list[float] = []  # EWMA weights, e = w / g
        self._g = 1.0
        self._s = 0.0
        self._since = 0  # values since the statistic last left zero
        self._seen = 0
        self._current: list[int] = []  # counts since the statistic last left zero

    # ------------------------------------------------------------------ reference

    def _count(self, key: str) -> None:
        counts = self._counts
        if key in counts:
            counts[key] += 1
        elif key in (OTHER, MISSING) or len(counts) < self.max_categories:
            counts[key] = 1
        else:
            counts[OTHER] = counts.get(OTHER, 0) + 1

    def _freeze(self) -> None:
        counts: dict[str, int] = {}
        for c, k in self._counts.items():
            # A category seen fewer than min_count times has a frequency too uncertain for a
            # cell of its own (its likelihood ratio would be noise): it joins "other".
            rare = k < self.min_count and c not in (OTHER, MISSING)
            cell = OTHER if rare else c
            counts[cell] = counts.get(cell, 0) + k
        counts.setdefault(OTHER, 0)
        counts.setdefault(MISSING, 0)
        names = sorted(counts)
        total = sum(counts.values()) + 0.5 * len(names)
        self._cells = {c: i for i, c in enumerate(names)}
        self._p0 = [(counts[c] + 0.5) / total for c in names]
        self._lp0 = [math.log(p) for p in self._p0]
        self._w = list(self._p0)
        self._g = 1.0
        self._c = self.penalty * (len(names) - 1) / max(sum(counts.values()), 1)
        self._current = [0] * len(names)

    # ------------------------------------------------------------------ updates

    def update(self, x: Any) -> bool:
        key = _key(x)
        if not self._cells:
            self._n += 1
            self._count(key)
            if self._n >= self.warmup:
                self._freeze()
            return False
        self._seen += 1
        cells = self._cells
        i = cells.get(key)
        if i is None:
            i = cells[OTHER]
        w, g = self._w, self._g
        p1 = (1.0 - self.mix) * w[i] / g + self.mix * self._p0[i]
        s = self._s + math.log(p1) - self._lp0[i] - self._c
        # EWMA step, unnormalized: e_t = w / g with g growing by 1 / (1 - rate).
        g /= 1.0 - self.rate
        w[i] += self.rate * g
        if g > 1e100:
            w[:] = [v / g for v in w]
            g = 1.0
        self._g = g
        if s > 0.0:
            if self._s == 0.0:
                self._current = [0] * len(w)
                self._since = 0
            self._since += 1
            self._current[i] += 1
            self._s = s
        else:
            self._s = 0.0
            self._since = 0
        return self._s >= self._h

    # ------------------------------------------------------------------ evidence

    @property
    def ready(self) -> bool:
        """Whether the reference is complete (the warm-up is over)."""
        return bool(self._cells)

    @property
    def statistic(self) -> float:
        return self._s

    @property
    def threshold(self) -> float:
        return self._h

    @property
    def n(self) -> int:
        return self._n + self._seen

    def details(self) -> dict[str, Any]:
        """Reference and recent frequencies of the cells that moved most (top 5)."""
        names = list(self._cells)
        since = max(self._since, 1)
        moved = [
            (c, self._p0[i], self._current[i] / since)
            for c, i in self._cells.items()
            if self._current and self._since
        ]
        moved.sort(key=lambda t: -abs(t[2] - t[1]))
        return {
            "change": "frequencies",
            "cells": len(names),
            "reference_n": min(self._n, self.warmup),
            "current_n": self._seen,
            "since_change": self._since,
            "top_cells": [[c, round(p, 6), round(q, 6)] for c, p, q in moved[:5]],
            "reference_missing": self._counts.get(MISSING, 0),
            "reference_other": self._counts.get(OTHER, 0),
        }

    # ------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "format": MULTINOMIAL_FORMAT,
            "params": {
                "warmup": self.warmup,
                "arl": self.arl,
                "max_categories": self.max_categories,
                "rate": self.rate,
                "mix": self.mix,
                "min_count": self.min_count,
                "penalty": self.penalty,
            },
            "n": self._n,
            "seen": self._seen,
            "counts": sorted(self._counts.items()),
            "frozen": bool(self._cells),
            "ewma": list(self._w),
            "scale": self._g,
            "s": self._s,
            "since": self._since,
            "current": list(self._current),
        }

    @classmethod
    def from_state(cls, st: dict[str, Any]) -> MultinomialCusum:
        check_format(cls.kind, st, MULTINOMIAL_FORMAT)
        d = cls(**st["params"])
        d._n, d._seen = st["n"], st["seen"]
        d._counts = {str(k): int(v) for k, v in st["counts"]}
        if st["frozen"]:
            d._freeze()
            d._w = [float(v) for v in st["ewma"]]
            d._g = float(st["scale"])
        d._s, d._since = float(st["s"]), int(st["since"])
        d._current = [int(v) for v in st["current"]]
        return d
