"""The special functions of the drift tests agree with scipy's over a grid of arguments.

They are kept (not replaced by scipy's) because scipy's differ in the last bits (relative
differences up to 5e-13, ``bench/detect_stats.py``), which would change the thresholds and
p-values the detectors report; here each is checked against scipy's to the precision it claims.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.special as sc

from streamproc.core.detect import stats as st

DFS = (1, 2, 3, 5, 10, 30, 100, 1000)

# name -> (own, scipy's, arguments, relative tolerance)
CASES: dict[
    str, tuple[Callable[..., float], Callable[..., Any], list[tuple[float, ...]], float]
] = {
    "normal_sf": (
        st.normal_sf,
        lambda z: sc.ndtr(-z),
        [(z,) for z in np.linspace(-5, 37, 400)],
        1e-12,
    ),
    "normal_isf": (
        st.normal_isf,
        lambda p: -sc.ndtri(p),
        [(p,) for p in np.logspace(-290, -0.01, 400)],
        1e-14,
    ),
    "chi2_sf": (
        st.chi2_sf,
        lambda x, d: sc.chdtrc(d, x),
        [(x, d) for d in DFS for x in np.linspace(0.01, 3 * d + 50, 40)],
        1e-11,
    ),
    "chi2_isf": (
        st.chi2_isf,
        lambda p, d: sc.chdtri(d, p),
        [(p, d) for d in DFS for p in np.logspace(-290, -0.05, 40)],
        1e-11,
    ),
    "ks_sf": (st.ks_sf, sc.kolmogorov, [(lam,) for lam in np.linspace(0.05, 6, 400)], 1e-13),
    "ks_isf": (st.ks_isf, sc.kolmogi, [(p,) for p in np.logspace(-15, -0.05, 200)], 1e-12),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_special_function_agrees_with_scipy_over_a_grid(name: str) -> None:
    own, theirs, grid, tol = CASES[name]
    for args in grid:
        got, want = own(*args), float(theirs(*args))
        assert got == pytest.approx(want, rel=tol, abs=1e-300), (name, args, got, want)


def test_holm_and_benjamini_hochberg_on_a_known_case() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm at 0.05: 0.005 <= 0.0125, 0.01 <= 0.0167, 0.03 > 0.025: stop.
    assert st.combine_pvalues_holm(p, alpha=0.05) == [True, False, False, True]
    # BH at 0.05: the largest k with p_(k) <= k q / m is k = 4 (0.04 <= 0.05): all rejected.
    assert st.benjamini_hochberg(p, q=0.05) == [True, True, True, True]
