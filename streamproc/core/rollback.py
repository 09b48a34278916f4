"""Rollback: after a promotion, is the new version significantly worse live than the old one?

The baseline is the previous version's live error just before it was replaced (its most recent
labelled examples, or those since the change that triggered the retrain). The new version's live
errors are compared with it by a one-sided two-sample z-test on the mean error (for 0/1 errors
this is the two-proportion test), once at least ``min_samples`` have been joined, and until
``max_samples``; after that the new version has proven itself and the watch ends. ``z`` is high
(default 3.7, one-sided p ~ 1e-4 per look) because the test is repeated after every sample.

Examples
--------
>>> watch = RollbackWatch.from_errors("v1", [0.0] * 95 + [1.0] * 5, min_samples=50)
>>> fired = [watch.update(1.0 if i % 3 == 0 else 0.0) for i in range(200)]  # 33% errors
>>> fired.index(True) >= 49
True
>>> watch.evidence()["baseline_error"]
0.05
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

__all__ = ["Moments", "RollbackWatch"]


class Moments(NamedTuple):
    """Count, sum and sum of squares of a run of errors; a snapshot keeps them as a row."""

    n: int
    total: float
    sumsq: float

    def add(self, x: float) -> Moments:
        return Moments(self.n + 1, self.total + x, self.sumsq + x * x)


class RollbackWatch:
    """Sequential test of 'new version worse than the baseline' on live errors.

    Parameters
    ----------
    previous_version
        The version to roll back to.
    base_n, base_sum, base_sumsq
        Count, sum and sum of squares of the baseline's errors.
    min_samples, max_samples
        Test only between these numbers of the new version's errors.
    z
        One-sided critical value of the test statistic.
    """

    def __init__(
        self,
        previous_version: str,
        base_n: int,
        base_sum: float,
        base_sumsq: float,
        min_samples: int = 200,
        max_samples: int = 5000,
        z: float = 3.7,
    ) -> None:
        self.previous_version = previous_version
        self.base = Moments(base_n, base_sum, base_sumsq)
        self.new = Moments(0, 0.0, 0.0)
        self.min_samples = min_samples
        self.max_samples = max_samples
        self.z_crit = z
        self.z = 0.0

    @classmethod
    def from_errors(
        cls, previous_version: str, errors: Sequence[float], **kw: Any
    ) -> RollbackWatch:
        return cls(
            previous_version,
            len(errors),
            float(sum(errors)),
            float(sum(e * e for e in errors)),
            **kw,
        )

    @property
    def done(self) -> bool:
        return self.new.n >= self.max_samples

    def update(self, err: float) -> bool:
        """Add one live error of the new version; True when it is significantly worse."""
        self.new = new = self.new.add(err)
        if new.n < self.min_samples or self.done:
            return False
        self.z = _z(self.base, new)
        return self.z > self.z_crit

    def evidence(self) -> dict[str, Any]:
        bn, bs = self.base.n, self.base.total
        nn, ns = self.new.n, self.new.total
        return {
            "test": "one-sided two-sample z-test on mean live error",
            "baseline_version": self.previous_version,
            "baseline_error": bs / bn if bn else None,
            "baseline_n": bn,
            "new_error": ns / nn if nn else None,
            "new_n": nn,
            "z": self.z,
            "z_critical": self.z_crit,
        }

    def state(self) -> dict[str, Any]:
        """The baseline, the new version's errors and the last statistic; the limits and the
        critical value are the policy's (``rollback``), not the state's."""
        return {
            "prev": self.previous_version,
            "base": list(self.base),
            "new": list(self.new),
            "z": self.z,
        }

    @classmethod
    def from_state(
        cls, s: dict[str, Any], min_samples: int, max_samples: int, z: float
    ) -> RollbackWatch:
        """Rebuild from :meth:`state` under the given limits (the current policy's); the
        ``limits`` a snapshot written before issue 15 carries are ignored.

        >>> w = RollbackWatch.from_errors("v1", [0.0, 1.0] * 20, min_samples=50)
        >>> back = RollbackWatch.from_state(w.state(), min_samples=10, max_samples=90, z=2.0)
        >>> back.base == w.base, back.min_samples, back.z_crit
        (True, 10, 2.0)
        """
        base_n, base_sum, base_sumsq = s["base"]
        w = cls(s["prev"], base_n, base_sum, base_sumsq, min_samples, max_samples, z)
        w.new = Moments(*s["new"])
        w.z = s["z"]
        return w


def _z(base: Moments, new: Moments) -> float:
    """Welch-style z of mean(new) - mean(base); pooled variance for 0/1 errors."""
    bn, bs, bq = base.n, base.total, base.sumsq
    nn, ns, nq = new.n, new.total, new.sumsq
    mb, mn = bs / bn, ns / nn
    vb = max(bq / bn - mb * mb, 0.0)
    vn = max(nq / nn - mn * mn, 0.0)
    binary = bq == bs and nq == ns  # every error was 0 or 1
    if binary:
        p = (bs + ns) / (bn + nn)
        var = p * (1.0 - p) * (1.0 / bn + 1.0 / nn)
    else:
        var = vb / bn + vn / nn
    if var <= 0.0:
        return math.inf if mn > mb else 0.0
    return float((mn - mb) / math.sqrt(var))
