"""Online change detectors behind one small interface.

Every detector takes one number at a time (``update``), says whether it fired, exposes the
statistic it compares with its threshold, counts the samples it has seen since its last reset,
and turns its whole state into a plain dict (``state``) that :func:`restore` turns back into an
identical detector. After a detection the caller reads the evidence, then calls ``reset``.

Examples
--------
>>> rule = ThresholdRule(above=0.1)
>>> [rule.update(x) for x in (0.02, 0.05, 0.12)]
[False, False, True]
>>> det = Cusum(warmup=50, arl=1e4)
>>> fired = [det.update(1.0 if i % 10 == 0 else 0.0) for i in range(400)]  # 10% errors
>>> any(fired)
False
>>> fired_at = next(i for i in range(400) if det.update(1.0 if i % 2 == 0 else 0.0))
>>> fired_at < 100  # 50% errors are caught fast
True
>>> det.details()["since_change"] <= fired_at + 1
True
>>> det.reset()
>>> restore(det.state()).state() == det.state()
True
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Protocol

__all__ = ["Cusum", "Detector", "ThresholdRule", "make_detector", "restore"]


class Detector(Protocol):
    """What every detector offers the trigger policy."""

    kind: ClassVar[str]

    def update(self, x: float) -> bool:
        """Feed one value; return True when a change is detected."""

    def reset(self) -> None:
        """Start afresh after a detection (the caller reads the evidence first)."""

    @property
    def statistic(self) -> float:
        """The current test statistic (compared with :attr:`threshold`)."""

    @property
    def threshold(self) -> float:
        """The value the statistic must reach to fire."""

    @property
    def n(self) -> int:
        """Samples seen since the last reset."""

    def details(self) -> dict[str, Any]:
        """Extra evidence for a retrain request (reference estimates, window sizes)."""

    def state(self) -> dict[str, Any]:
        """Parameters and state as JSON-able primitives; :func:`restore` inverts it."""


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

    def update(self, x: float) -> bool:
        self._last = x
        self._n += 1
        return (self.above is not None and x > self.above) or (
            self.below is not None and x < self.below
        )

    def reset(self) -> None:
        self._n = 0

    @property
    def statistic(self) -> float:
        return self._last

    @property
    def threshold(self) -> float:
        return self.above if self.above is not None else self.below  # type: ignore[return-value]

    @property
    def n(self) -> int:
        return self._n

    def details(self) -> dict[str, Any]:
        return {"direction": "above" if self.above is not None else "below"}

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "above": self.above,
            "below": self.below,
            "last": None if math.isnan(self._last) else self._last,
            "count": self._n,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> ThresholdRule:
        r = cls(above=s["above"], below=s["below"])
        r._last = math.nan if s["last"] is None else s["last"]
        r._n = s["count"]
        return r


class Cusum:
    """One-sided CUSUM for a rise of an error signal, calibrated on a warm-up window.

    The first ``warmup`` values estimate the in-control level. Values in {0, 1} are treated as a
    Bernoulli error rate p0 and the detector looks for ``p1 = p0 * (1 + shift)``; other values
    as Gaussian with mean mu0 and deviation s0, looking for ``mu0 + shift * s0``. The statistic
    is the log-likelihood ratio of "changed" against "unchanged" since the most likely change
    point (Page's CUSUM), the optimal detector for a shift of the given size. It fires at
    ``ln(arl)``, which keeps false alarms below about one per ``arl`` in-control samples.

    Only rises count: after a retrain the error falls, and that is no reason to retrain again.

    Parameters
    ----------
    warmup
        Samples used to estimate the in-control level before detection starts.
    shift
        Relative rise of the error rate (Bernoulli) or rise in deviations (Gaussian) to look for.
    arl
        Target average run length between false alarms, in samples.

    Examples
    --------
    >>> det = Cusum(warmup=4, shift=1.0, arl=100)
    >>> [det.update(x) for x in (0.0, 1.0, 0.0, 0.0)]
    [False, False, False, False]
    >>> round(det.details()["reference_level"], 3)
    0.333
    """

    kind: ClassVar[str] = "cusum"

    def __init__(self, warmup: int = 500, shift: float = 0.5, arl: float = 1e6) -> None:
        if warmup < 2:
            raise ValueError(f"cusum warmup must be at least 2 samples, got {warmup}.")
        if shift <= 0 or arl <= 1:
            raise ValueError("cusum needs shift > 0 and arl > 1.")
        self.warmup = warmup
        self.shift = shift
        self.arl = arl
        self.reset()

    def reset(self) -> None:
        self._n = 0
        self._since = 0
        self._sum = 0.0
        self._sumsq = 0.0
        self._binary = True
        self._s = 0.0
        # Increments for x = 0 and x = 1 (Bernoulli), or (mu0, s0) for the Gaussian case.
        self._a = 0.0
        self._b = 0.0

    def _calibrate(self) -> None:
        n = self.warmup
        mean = self._sum / n
        if self._binary:
            # Posterior mean with a uniform prior keeps p0 away from 0 on a model that never errs.
            # Half a posterior deviation above the estimate: an underestimated p0 would make
            # the in-control stream drift upwards and raise false alarms.
            mean_p = (self._sum + 1.0) / (n + 2.0)
            sd_p = math.sqrt(mean_p * (1.0 - mean_p) / (n + 3.0))
            p0 = min(max(mean_p + 0.5 * sd_p, 1e-4), 0.9)
            p1 = min(p0 * (1.0 + self.shift), 0.999)
            self._a = math.log((1.0 - p1) / (1.0 - p0))
            self._b = math.log(p1 / p0)
        else:
            var = max(self._sumsq / n - mean * mean, 0.0) * n / (n - 1)
            self._a = mean
            self._b = max(math.sqrt(var), 1e-9)

    def update(self, x: float) -> bool:
        self._n += 1
        if self._n <= self.warmup:
            self._sum += x
            self._sumsq += x * x
            self._binary = self._binary and (x == 0.0 or x == 1.0)
            if self._n == self.warmup:
                self._calibrate()
            return False
        if self._binary:
            llr = self._b if x >= 0.5 else self._a
        else:
            z = (x - self._a) / self._b
            llr = self.shift * z - 0.5 * self.shift * self.shift
        self._s = max(0.0, self._s + llr)
        # Samples since the statistic last left zero: the likeliest change point.
        self._since = self._since + 1 if self._s > 0.0 else 0
        return self._s >= self.threshold

    @property
    def statistic(self) -> float:
        return self._s

    @property
    def threshold(self) -> float:
        return math.log(self.arl)

    @property
    def n(self) -> int:
        return self._n

    def details(self) -> dict[str, Any]:
        ready = self._n >= self.warmup
        if self._binary:
            level = (self._sum + 1.0) / (min(self._n, self.warmup) + 2.0)
        else:
            level = self._a if ready else self._sum / max(self._n, 1)
        return {
            "model": "bernoulli" if self._binary else "gaussian",
            "reference_level": level,
            "reference_n": min(self._n, self.warmup),
            "current_n": max(self._n - self.warmup, 0),
            "since_change": self._since,
            "shift": self.shift,
        }

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "warmup": self.warmup,
            "shift": self.shift,
            "arl": self.arl,
            "s": [
                self._n,
                self._sum,
                self._sumsq,
                self._binary,
                self._s,
                self._a,
                self._b,
                self._since,
            ],
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> Cusum:
        d = cls(warmup=s["warmup"], shift=s["shift"], arl=s["arl"])
        d._n, d._sum, d._sumsq, d._binary, d._s, d._a, d._b, d._since = s["s"]
        return d


_KINDS: dict[str, Any] = {ThresholdRule.kind: ThresholdRule, Cusum.kind: Cusum}


def make_detector(kind: str, **params: Any) -> Detector:
    """Build a detector by its policy name, e.g. ``make_detector("cusum", warmup=200)``."""
    try:
        cls = _KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown detector {kind!r}; use one of {sorted(_KINDS)}.") from None
    det: Detector = cls(**params)
    return det


def restore(state: dict[str, Any]) -> Detector:
    """Rebuild a detector from :meth:`Detector.state`."""
    det: Detector = _KINDS[state["kind"]].from_state(state)
    return det
