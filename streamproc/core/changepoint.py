"""Where did the error rise begin? An offline change-point estimate, run once an alarm fires.

A CUSUM's "samples since the statistic last left zero" reaches back before the change whenever
noise lifted the statistic off zero shortly before it (measured on the closed-loop worlds: the
estimate lay before the true change in most alarms), and a retrain that starts there learns the
old concept again. Once the alarm has fired, the whole recent error sequence is known, so the
change point is estimated after the fact, as the split of the sequence into "before" and "after"
that maximises the two-segment likelihood (Hinkley 1970, "Inference about the change-point in a
sequence of random variables"; Bernoulli errors for 0/1 errors, a Gaussian mean shift otherwise).

The point estimate is unbiased but scattered by a few samples either way; training data taken
from a point a few samples too early teaches the old concept, and a few samples too late costs
little. So the estimate returned is the *latest* split whose profile log-likelihood is within
``slack`` of the maximum: the late end of a likelihood interval (``slack`` = 3 is about a 99%
interval, chi-square with 1 degree of freedom halved), still before the alarm.

Examples
--------
>>> import random
>>> rng = random.Random(3)
>>> errors = [float(rng.random() < 0.1) for _ in range(600)]
>>> errors += [float(rng.random() < 0.5) for _ in range(150)]
>>> k = estimate_change(errors)
>>> 600 <= k <= 700
True
>>> estimate_change([0.0] * 40)  # no rise: no estimate
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["estimate_change"]

MIN_SEGMENT = 10  # samples each side of a split: fewer cannot tell a level
_HUGE = 1e150  # errors beyond this are scaled down first (their squares would overflow)


def _profile(x: np.ndarray, binary: bool) -> tuple[np.ndarray, np.ndarray]:
    """Two-segment log-likelihood for each split k (segments x[:k], x[k:]) and the rise."""
    n = len(x)
    k = np.arange(MIN_SEGMENT, n - MIN_SEGMENT + 1)
    c = np.concatenate(([0.0], np.cumsum(x)))
    s1, s2 = c[k], c[n] - c[k]
    n1, n2 = k.astype(float), (n - k).astype(float)
    m1, m2 = s1 / n1, s2 / n2
    if binary:

        def ll(s: np.ndarray, m: np.ndarray, w: np.ndarray) -> np.ndarray:
            p = np.clip(m, 1e-12, 1 - 1e-12)
            out: np.ndarray = s * np.log(p) + (w - s) * np.log(1 - p)
            return out

        prof = ll(s1, m1, n1) + ll(s2, m2, n2)
    else:
        q = np.concatenate(([0.0], np.cumsum(x * x)))
        sse = (q[k] - s1 * m1) + (q[n] - q[k] - s2 * m2)
        var = max(float(np.var(x)), 1e-12)
        prof = -0.5 * sse / var
    return prof, m2 - m1


def estimate_change(
    errors: Sequence[float], slack: float = 3.0, two_sided: bool = False
) -> int | None:
    """Index of the first sample after the change in ``errors`` (oldest first), or None.

    Parameters
    ----------
    errors
        Per-prediction errors in time order, shape (n,): 0/1 (Bernoulli model) or any real
        values (Gaussian mean shift, common variance).
    slack
        Log-likelihood units below the maximum a later split may fall and still be chosen.
    two_sided
        Also a fall of the level (a class of the labels growing rarer): the direction is the
        one of the best split, the estimate the latest split in that direction within
        ``slack``.

    Returns
    -------
    int or None
        ``k`` such that ``errors[k:]`` is the estimated post-change segment; None when there are
        fewer than ``2 * MIN_SEGMENT`` values or no split shows a rise (a change, two-sided).

    >>> estimate_change([1.0] * 50 + [0.0] * 30, two_sided=True), estimate_change([1.0] * 80)
    (50, None)
    """
    x = np.asarray(errors, dtype=float)
    if len(x) < 2 * MIN_SEGMENT or not np.all(np.isfinite(x)):
        return None
    binary = bool(np.all((x == 0.0) | (x == 1.0)))
    top = float(np.abs(x).max())
    if top > _HUGE:
        # Squares would overflow; the split and the rise's sign do not depend on the scale.
        x = x / top
    prof, rise = _profile(x, binary)
    up = rise > 0
    if two_sided and np.any(rise != 0):
        moved = np.where(rise != 0, prof, -np.inf)
        up = np.sign(rise) == np.sign(rise[int(np.argmax(moved))])
    prof = np.where(up & (rise != 0), prof, -np.inf)
    best = float(prof.max())
    if not np.isfinite(best):
        return None
    ok = np.nonzero(prof >= best - slack)[0]
    return int(ok[-1]) + MIN_SEGMENT
