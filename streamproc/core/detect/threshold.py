"""The threshold rule (kind ``threshold``): fires when a value crosses a fixed bound.

Examples
--------
>>> rule = ThresholdRule(above=0.1)
>>> [rule.update(x) for x in (0.02, 0.05, 0.12)]
[False, False, True]
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

__all__ = ["ThresholdRule"]


class ThresholdRule:
    """Fires when a value is above ``above`` (or below ``below``): the seed's rule.

    Parameters
    ----------
    above, below
        Fire when ``x > above`` or ``x < below``; give at least one.

    Examples
    --------
    >>> r = ThresholdRule(below=0.8)
    >>> r.update(0.9), r.update(0.7), r.statistic
    (False, True, 0.7)
    """

    kind: ClassVar[str] = "threshold"

    def __init__(self, above: float | None = None, below: float | None = None) -> None:
        if above is None and below is None:
            raise ValueError("a threshold rule needs 'above' or 'below'; set one of them.")
        self.above = above
        self.below = below
        self._last = math.nan
        self._n = 0
        self._side = ""  # "above" or "below": the side that fired last

    def update(self, x: float) -> bool:
        self._last = x
        self._n += 1
        if self.above is not None and x > self.above:
            self._side = "above"
            return True
        if self.below is not None and x < self.below:
            self._side = "below"
            return True
        return False

    def reset(self) -> None:
        self._n = 0

    def _direction(self) -> str:
        """The side that fired last; before any firing, the side nearer to the value."""
        if self._side:
            return self._side
        if self.above is None:
            return "below"
        if self.below is None or self._last != self._last:
            return "above"
        return "above" if self.above - self._last <= self._last - self.below else "below"

    @property
    def statistic(self) -> float:
        return self._last

    @property
    def threshold(self) -> float:
        return self.above if self._direction() == "above" else self.below  # type: ignore[return-value]

    @property
    def n(self) -> int:
        return self._n

    def details(self) -> dict[str, Any]:
        return {"direction": self._direction()}

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "above": self.above,
            "below": self.below,
            "last": None if math.isnan(self._last) else self._last,
            "count": self._n,
            "side": self._side,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> ThresholdRule:
        r = cls(above=s["above"], below=s["below"])
        r._last = math.nan if s["last"] is None else s["last"]
        r._n = s["count"]
        r._side = s.get("side", "")
        return r
