"""Where a change happened in a stream, from an exponential block histogram of it.

River's drift detectors say *that* a change happened, not where, and their internals are
compiled (ADWIN is in Rust since river 0.22). To report a real change point and the means
before and after it, a wrapper keeps its own summary of the values: an exponential histogram
(Datar, Gionis, Indyk & Motwani 2002, the structure ADWIN itself uses; Bifet & Gavalda 2007)
of blocks of sizes 1, 2, 4, ..., at most ``per_level`` of each size, newest smallest. Memory is
O(per_level * log n); an update is amortized O(1); a split point is exact within the most
recent blocks and within a fraction ``1 / per_level`` of its distance from the end otherwise.

The change point is the block boundary that maximizes the two-sample statistic
``n0 n1 / n * (mean0 - mean1)^2`` (the CUSUM estimate of a single mean change, as in binary
segmentation; Hinkley 1970), over the last ``width`` values. Values are stored relative to the
first one, so large offsets keep their precision.

Examples
--------
>>> h = BlockHistogram()
>>> for i in range(3024):
...     h.add(0.8 if i < 3000 else 0.4)
>>> h.trim(1024)  # the window a detector kept: about the last 1024 values
>>> s = h.best_split()
>>> round(s.mean_before, 2), s.after_n, round(s.mean_after, 2)
(0.8, 24, 0.4)
>>> BlockHistogram.from_state(h.state()).state() == h.state()
True
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

__all__ = ["BlockHistogram", "Split"]


class Split(NamedTuple):
    """The likeliest single change in a window: sizes and means on both sides."""

    before_n: int
    mean_before: float
    after_n: int
    mean_after: float


class BlockHistogram:
    """Exponential histogram of block counts and sums over the recent values of a stream.

    Parameters
    ----------
    per_level
        Blocks kept of each size before the two oldest merge (resolution ``1/per_level``).
    """

    def __init__(self, per_level: int = 16) -> None:
        if per_level < 2:
            raise ValueError(f"per_level must be >= 2, got {per_level!r}.")
        self.per_level = per_level
        self.clear()

    def clear(self) -> None:
        self._levels: list[deque[list[float]]] = []  # [count, sum] per block, oldest left
        self._n = 0
        self._shift: float | None = None

    @property
    def n(self) -> int:
        """Values the histogram covers."""
        return self._n

    def add(self, x: float) -> None:
        if self._shift is None:
            self._shift = x
        levels = self._levels
        if not levels:
            levels.append(deque())
        levels[0].append([1.0, x - self._shift])
        self._n += 1
        k = 0
        while len(levels[k]) > self.per_level:
            a = levels[k].popleft()
            b = levels[k].popleft()
            if k + 1 == len(levels):
                levels.append(deque())
            levels[k + 1].append([a[0] + b[0], a[1] + b[1]])
            k += 1

    def trim(self, width: int) -> None:
        """Drop the oldest blocks while at least ``width`` values remain."""
        levels = self._levels
        for k in range(len(levels) - 1, -1, -1):
            lv = levels[k]
            while lv and self._n - lv[0][0] >= width:
                self._n -= int(lv.popleft()[0])
        while levels and not levels[-1]:
            levels.pop()

    def best_split(self) -> Split | None:
        """The block boundary with the largest ``n0 n1 / n (mean0 - mean1)^2``; None if < 2."""
        blocks = [b for lv in reversed(self._levels) for b in lv]  # oldest first
        if len(blocks) < 2:
            return None
        n = sum(b[0] for b in blocks)
        total = sum(b[1] for b in blocks)
        best, where = -1.0, (0.0, 0.0)
        n0 = s0 = 0.0
        for b in blocks[:-1]:
            n0 += b[0]
            s0 += b[1]
            n1 = n - n0
            diff = s0 / n0 - (total - s0) / n1
            stat = n0 * n1 / n * diff * diff
            if stat > best:
                best, where = stat, (n0, s0)
        n0, s0 = where
        shift = self._shift or 0.0
        return Split(int(n0), shift + s0 / n0, int(n - n0), shift + (total - s0) / (n - n0))

    def split_at(self, after_n: int) -> Split | None:
        """Means before and after the block boundary nearest ``after_n`` values from the end."""
        blocks = [b for lv in self._levels for b in reversed(lv)]  # newest first
        n1 = s1 = 0.0
        total = sum(b[1] for b in blocks)
        for b in blocks[:-1]:
            if n1 >= after_n:
                break
            n1 += b[0]
            s1 += b[1]
        n0 = self._n - n1
        if n1 <= 0 or n0 <= 0:
            return None
        shift = self._shift or 0.0
        return Split(int(n0), shift + (total - s1) / n0, int(n1), shift + s1 / n1)

    def state(self) -> list[Any]:
        return [
            self.per_level,
            self._n,
            self._shift,
            [[list(b) for b in lv] for lv in self._levels],
        ]

    @classmethod
    def from_state(cls, s: list[Any]) -> BlockHistogram:
        h = cls(s[0])
        h._n, h._shift = s[1], s[2]
        h._levels = [deque([list(map(float, b)) for b in lv]) for lv in s[3]]
        return h
