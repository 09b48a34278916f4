"""Special functions and multiple testing for the two-sample drift tests.

Tail probabilities and their inverses for the standard normal, chi-square and Kolmogorov
distributions (scalar calls, in the inner loop of a look), and the two ways of combining many
p-values: Holm's step-down procedure (family-wise error) and Benjamini-Hochberg (false
discovery rate).

Why not scipy's: ``scipy.special`` (installed with river) has all of them (``ndtr``,
``ndtri``, ``chdtrc``, ``chdtri``, ``kolmogorov``, ``kolmogi``) and is faster for the
inverses, but its values differ from these in the last bits (relative differences up to 5e-13
over the test grid; bit-for-bit equal on 0% to 89% of it, ``bench/detect_stats.py``), so
switching would change the thresholds and p-values the detectors report, and this module keeps
them identical. The speed does not matter here: the inverses run once per reference (and
degree of freedom), the tails a few times per look. Measured with scipy 1.17.1, per scalar
call, own / scipy: ``normal_sf`` 0.13 / 0.17 us, ``normal_isf`` 0.39 / 0.18, ``chi2_sf`` 11 /
0.7, ``chi2_isf`` 565 / 1.0, ``ks_sf`` 0.40 / 0.13, ``ks_isf`` 121 / 0.18. Each is checked
against scipy's over a grid to the precision it claims (``tests/unit/core/detect``).

Examples
--------
>>> round(normal_sf(1.959963984540054), 6), round(normal_isf(0.025), 6)
(0.025, 1.959964)
>>> round(ks_pvalue(0.2, 100, 100), 4)
0.0314
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

__all__ = [
    "benjamini_hochberg",
    "chi2_isf",
    "chi2_sf",
    "combine_pvalues_holm",
    "ks_isf",
    "ks_lambda",
    "ks_pvalue",
    "ks_sf",
    "normal_isf",
    "normal_sf",
]

_TINY = 1e-300
_NORMAL = NormalDist()


def normal_sf(z: float) -> float:
    """Upper tail of the standard normal, accurate far into the tail."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def normal_isf(p: float) -> float:
    """``z`` with ``normal_sf(z) == p``."""
    return -_NORMAL.inv_cdf(min(max(p, _TINY), 1.0 - 1e-16))


def _log_gamma_prefactor(a: float, x: float) -> float:
    return -x + a * math.log(x) - math.lgamma(a)


def _gamma_q(a: float, x: float) -> float:
    """Regularized upper incomplete gamma ``Q(a, x)`` (Numerical Recipes ``gammq``)."""
    if x <= 0.0:
        return 1.0
    if x < a + 1.0:
        # Series for P(a, x); Q = 1 - P is not small here, so no cancellation trouble.
        ap, term = a, 1.0 / a
        total = term
        for _ in range(100_000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-17:
                break
        return max(0.0, 1.0 - total * math.exp(_log_gamma_prefactor(a, x)))
    # Continued fraction for Q(a, x), modified Lentz.
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, 100_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = d if abs(d) > _TINY else _TINY
        c = b + an / c
        c = c if abs(c) > _TINY else _TINY
        d = 1.0 / d
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-16:
            break
    return math.exp(_log_gamma_prefactor(a, x)) * h


def chi2_sf(x: float, df: float) -> float:
    """Survival function of the chi-square distribution with ``df`` degrees of freedom.

    >>> round(chi2_sf(3.841458820694124, 1), 6), round(chi2_sf(18.307038053275146, 10), 6)
    (0.05, 0.05)
    """
    if df <= 0:
        raise ValueError(f"chi-square needs df > 0, got {df}.")
    return _gamma_q(0.5 * df, 0.5 * x)


def chi2_isf(p: float, df: float) -> float:
    """``x`` with ``chi2_sf(x, df) == p`` (bisection; relative precision 1e-12).

    >>> round(chi2_isf(0.05, 1), 6), round(chi2_isf(1e-6, 3), 4)
    (3.841459, 30.6648)
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"chi2_isf needs 0 < p < 1, got {p}.")
    lo, hi = 0.0, max(1.0, df)
    while chi2_sf(hi, df) > p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if chi2_sf(mid, df) > p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return 0.5 * (lo + hi)


def ks_sf(lam: float) -> float:
    """``P(K > lam)`` for the Kolmogorov distribution (two series, each fast in its range).

    >>> round(ks_sf(1.3580986393225505), 6)
    0.05
    """
    if lam <= 0.0:
        return 1.0
    if lam < 1.18:
        y = math.exp(-(math.pi**2) / (8.0 * lam * lam))
        s = y + y**9 + y**25 + y**49 + y**81
        return max(0.0, 1.0 - math.sqrt(2.0 * math.pi) / lam * s)
    x = math.exp(-2.0 * lam * lam)
    return min(1.0, 2.0 * (x - x**4 + x**9 - x**16))


def ks_lambda(n: float, m: float) -> float:
    """Stephens' scale of the KS distance for samples of sizes n and m: ``P = ks_sf(lam * d)``."""
    ne = math.sqrt(n * m / (n + m))
    return ne + 0.12 + 0.11 / ne


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Asymptotic p-value of a two-sample KS distance ``d`` between samples of sizes n and m."""
    return ks_sf(ks_lambda(n, m) * d)


def ks_isf(p: float) -> float:
    """``lam`` with ``ks_sf(lam) == p`` (bisection; relative precision 1e-13)."""
    lo, hi = 0.0, 1.0
    while ks_sf(hi) > p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if ks_sf(mid) > p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    return 0.5 * (lo + hi)


def combine_pvalues_holm(pvalues: Sequence[float], alpha: float) -> list[bool]:
    """Holm's step-down procedure: which hypotheses to reject at family-wise level ``alpha``.

    Use it when many features are tested at once and any false alarm is costly.

    >>> combine_pvalues_holm([0.01, 0.02, 0.03, 0.5], alpha=0.05)
    [True, False, False, False]
    >>> combine_pvalues_holm([0.001, 0.02, 0.2], alpha=0.05)
    [True, True, False]
    """
    m = len(pvalues)
    out = [False] * m
    for rank, i in enumerate(sorted(range(m), key=lambda j: pvalues[j])):
        if pvalues[i] > alpha / (m - rank):
            break
        out[i] = True
    return out


def benjamini_hochberg(pvalues: Sequence[float], q: float) -> list[bool]:
    """Benjamini-Hochberg: which hypotheses to reject at false-discovery rate ``q``.

    >>> benjamini_hochberg([0.01, 0.02, 0.03, 0.5], q=0.05)
    [True, True, True, False]
    """
    m = len(pvalues)
    order = sorted(range(m), key=lambda j: pvalues[j])
    k = 0
    for rank, i in enumerate(order, start=1):
        if pvalues[i] <= rank * q / m:
            k = rank
    out = [False] * m
    for i in order[:k]:
        out[i] = True
    return out
