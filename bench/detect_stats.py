"""The special functions of ``streamproc.core.detect.stats`` against scipy's: values and speed.

    python bench/detect_stats.py

For each function, over a grid of arguments: how many values are bit-for-bit equal to
scipy's, the largest relative difference, and the time of one scalar call (own and scipy,
best of 3 x 2,000 calls). The drift tests call these on scalars, a few times per look (chi2_sf,
normal_sf, ks_sf) or once per reference and degree of freedom (chi2_isf, ks_isf, normal_isf).
"""

from __future__ import annotations

import timeit
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy
import scipy.special as sc

from streamproc.core.detect import stats as st

DFS = (1, 2, 3, 5, 10, 30, 100, 1000)


def grids() -> dict[str, tuple[Callable[..., float], Callable[..., Any], list[tuple[float, ...]]]]:
    """name -> (own function, scipy's equivalent, argument tuples)."""
    return {
        "normal_sf": (
            st.normal_sf,
            lambda z: sc.ndtr(-z),
            [(z,) for z in np.linspace(-5, 37, 400)],
        ),
        "normal_isf": (
            st.normal_isf,
            lambda p: -sc.ndtri(p),
            [(p,) for p in np.logspace(-290, -0.01, 400)],
        ),
        "chi2_sf": (
            st.chi2_sf,
            lambda x, d: sc.chdtrc(d, x),
            [(x, d) for d in DFS for x in np.linspace(0.01, 3 * d + 50, 40)],
        ),
        "chi2_isf": (
            st.chi2_isf,
            lambda p, d: sc.chdtri(d, p),
            [(p, d) for d in DFS for p in np.logspace(-290, -0.05, 40)],
        ),
        "ks_sf": (st.ks_sf, sc.kolmogorov, [(lam,) for lam in np.linspace(0.05, 6, 400)]),
        "ks_isf": (st.ks_isf, sc.kolmogi, [(p,) for p in np.logspace(-15, -0.05, 200)]),
    }


def per_call_us(fn: Callable[..., Any], args: Sequence[float]) -> float:
    return min(timeit.repeat(lambda: fn(*args), number=2000, repeat=3)) / 2000 * 1e6


def main() -> int:
    print(f"{'function':10s} {'equal':>9s} {'max rel diff':>12s} {'own us':>8s} {'scipy us':>8s}")
    for name, (own, theirs, grid) in grids().items():
        a = np.array([own(*g) for g in grid])
        b = np.array([float(theirs(*g)) for g in grid])
        both = (a > 0) & (b > 0)
        rel = float(np.max(np.abs(a[both] - b[both]) / b[both]))
        mid = grid[len(grid) // 2]
        t_own, t_scipy = per_call_us(own, mid), per_call_us(theirs, mid)
        equal = f"{int(np.sum(a == b))}/{len(grid)}"
        print(f"{name:10s} {equal:>9s} {rel:12.1e} {t_own:8.2f} {t_scipy:8.2f}")
    print(f"scipy {scipy.__version__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
