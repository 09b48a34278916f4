"""The special functions and multiple testing of the drift tests: tables, scipy, Holm, BH.

They are kept (not replaced by scipy's) because scipy's differ in the last bits (relative
differences up to 5e-13, ``bench/detect_stats.py``), which would change the thresholds and
p-values the detectors report; here each is checked against scipy's to the precision it claims.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.special as sc

from streamproc.core.detect import stats as st
from streamproc.core.detect.stats import (
    benjamini_hochberg,
    chi2_isf,
    chi2_sf,
    combine_pvalues_holm,
    ks_pvalue,
    ks_sf,
)

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


# --------------------------------------------------------------------------- distributions


def test_chi_square_tail_matches_tables() -> None:
    # (x, df, upper tail) from standard tables.
    for x, df, p in [
        (3.841458820694124, 1, 0.05),
        (6.634896601021214, 1, 0.01),
        (18.307038053275146, 10, 0.05),
        (23.209251158954356, 10, 0.01),
        (29.587, 10, 0.001),
        (124.342, 100, 0.05),
    ]:
        assert chi2_sf(x, df) == pytest.approx(p, rel=1e-3)
        assert chi2_isf(p, df) == pytest.approx(x, rel=1e-3)
    assert chi2_sf(0.0, 3) == 1.0
    assert chi2_sf(1e4, 3) == 0.0
    # Far tail: the Lentz fraction keeps relative accuracy where 1 - P would be all rounding.
    assert chi2_sf(100.0, 2) == pytest.approx(math.exp(-50.0), rel=1e-10)
    for p in (0.3, 1e-3, 1e-7, 1e-12):
        for df in (1, 4, 9, 50):
            assert chi2_sf(chi2_isf(p, df), df) == pytest.approx(p, rel=1e-8)


def test_kolmogorov_tail() -> None:
    assert ks_sf(1.3580986393225505) == pytest.approx(0.05, rel=1e-6)
    assert ks_sf(1.6276236115189) == pytest.approx(0.01, rel=1e-6)
    assert ks_sf(0.0) == 1.0
    assert ks_sf(0.2) == pytest.approx(1.0, abs=1e-12)
    # The two series agree where they meet.
    assert ks_sf(1.1799999) == pytest.approx(ks_sf(1.1800001), rel=1e-6)
    assert ks_pvalue(0.0, 100, 100) == 1.0
    assert ks_pvalue(0.5, 100, 100) < 1e-9


def test_multiple_testing_helpers() -> None:
    ps = [0.01, 0.02, 0.03, 0.5]
    assert combine_pvalues_holm(ps, 0.05) == [True, False, False, False]
    assert benjamini_hochberg(ps, 0.05) == [True, True, True, False]
    assert combine_pvalues_holm([], 0.05) == []
    assert benjamini_hochberg([0.2, 0.001], 0.05) == [False, True]
