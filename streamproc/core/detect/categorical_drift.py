"""Drift of one categorical feature against a frozen reference: chi-square, JS (and PSI).

Kinds ``categorical_drift`` (several tests) and ``chi2``, ``js`` (one each). The window
machinery and the calibration are described in :mod:`~streamproc.core.detect.windowdrift`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Sequence
from typing import Any, ClassVar

import numpy as np

from streamproc.core.detect.stats import chi2_isf, chi2_sf
from streamproc.core.detect.windowdrift import FloatArray, IntArray, WindowDrift, b64, unb64

__all__ = ["CategoricalDrift", "Chi2Drift", "JSDrift"]


def _category_key(x: object) -> Hashable:
    """A JSON-able key for a category: None for missing, scalars as such, the rest as text."""
    if x is None:
        return None
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, bool | str):
        return x
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        return None if x != x else float(x)
    return str(x)


class CategoricalDrift(WindowDrift):
    """Drift of one categorical feature: chi-square and Jensen-Shannon against a reference.

    Values may be any hashable (str, int, bool...); None and NaN are the category ``None``
    (missing), so a change of the missing rate is a change of the distribution. Categories
    seen fewer than ``min_count`` times in the reference, and those first seen after it froze,
    share one "rare" cell. Registered as ``categorical_drift`` (``tests=[...]``) and as
    ``chi2`` and ``js`` (one test each).

    Parameters
    ----------
    reference_size, window_size, every, alpha, confirm, resamples, seed
        As for :class:`NumericDrift`.
    tests
        Any of ``"chi2"``, ``"js"``, ``"psi"``.
    min_count
        Reference count below which a category goes to the rare cell.
    max_categories
        Distinct values remembered; later new values all count as one overflow value.

    Examples
    --------
    >>> det = Chi2Drift(reference_size=300, window_size=300, every=50)
    >>> stable = ["a", "b", "c"] * 400
    >>> any(det.update(x) for x in stable)
    False
    >>> shifted = ["a", "a", "a", "b", None, "c"] * 100
    >>> fired = next(i for i, x in enumerate(shifted) if det.update(x))
    >>> fired < 300, det.details()["test"]
    (True, 'chi2')
    """

    kind: ClassVar[str] = "categorical_drift"
    _ALLOWED: ClassVar[tuple[str, ...]] = ("chi2", "js", "psi")
    _PARAMS: ClassVar[tuple[str, ...]] = (*WindowDrift._PARAMS, "min_count", "max_categories")
    _DEFAULT_TESTS: ClassVar[tuple[str, ...]] = ("chi2", "js")

    def __init__(
        self,
        reference_size: int = 1000,
        window_size: int = 1000,
        every: int = 250,
        tests: Sequence[str] | None = None,
        alpha: float = 1e-6,
        confirm: int = 1,
        min_count: int = 5,
        max_categories: int = 1000,
        resamples: int = 200,
        seed: int = 0,
    ) -> None:
        super().__init__(reference_size, window_size, every, tests, alpha, confirm, resamples, seed)
        if min_count < 1 or max_categories < 2:
            raise ValueError(f"{self.kind}: needs min_count >= 1 and max_categories >= 2.")
        self.min_count = int(min_count)
        self.max_categories = int(max_categories)
        self.reset()

    @classmethod
    def _base_kind(cls) -> str:
        return "categorical_drift"

    def reset(self) -> None:
        """Forget everything, categories included: the next values form a new reference."""
        self._reset_common()
        # Code 0 is the overflow value; category i (1-based) is self._cats[i - 1].
        self._codes: dict[Any, int] = {}
        self._cats: list[Any] = []
        self._refbuf: IntArray = np.empty(self.reference_size, dtype=np.int64)
        self._ring: IntArray = np.empty(0, dtype=np.int64)
        self._cell: IntArray = np.empty(0, dtype=np.int64)  # code -> cell
        self._ref_counts: FloatArray = np.empty(0, dtype=np.float64)

    def _code(self, x: object) -> int:
        """The code of a value not found as such in ``_codes`` (the slow path)."""
        key = _category_key(x)
        code = self._codes.get(key)
        if code is None:
            if len(self._cats) >= self.max_categories:
                return 0
            self._cats.append(key)
            code = self._codes[key] = len(self._cats)
        if isinstance(key, str) and not isinstance(x, str):
            # Remember the raw spelling (a tuple, an enum) so it takes the fast path next time.
            with contextlib.suppress(TypeError):  # unhashable
                self._codes[x] = code
        return code

    def update(self, x: object) -> bool:
        """Store one value; every ``every`` values (window full) run the tests."""
        self._n += 1
        try:
            code = self._codes.get(x)
        except TypeError:  # unhashable
            code = None
        if code is None:
            code = self._code(x)
        return self._store(code)

    def _cells(self) -> int:
        return int(self._ref_counts.size)

    def _freeze(self) -> None:
        ref = self._refbuf
        self._frozen = True
        self._countdown = self.window_size
        self._pos = 0
        self._ring = np.zeros(self.window_size, dtype=np.int64)
        self._build_cells(np.bincount(ref, minlength=len(self._cats) + 1))
        self._cal = {}
        self._calibrate_binned(self._cell[ref], self._cells(), np.random.default_rng(self.seed))
        self._refbuf = np.empty(0, dtype=np.int64)
        self._derive()

    def _build_cells(self, code_counts: IntArray) -> None:
        """Own cell for categories seen >= min_count times; the last cell is the rare one."""
        frequent = code_counts >= self.min_count
        frequent[0] = False
        cell = np.cumsum(frequent) - 1
        rare = int(frequent.sum())
        self._cell = np.where(frequent, cell, rare).astype(np.int64)
        weights = code_counts.astype(np.float64)
        self._ref_counts = np.asarray(
            np.bincount(self._cell, weights=weights, minlength=rare + 1), dtype=np.float64
        )

    def _cell_counts(self, codes: IntArray) -> FloatArray:
        k = len(self._cats) + 1
        per_code = np.bincount(codes, minlength=k)
        cells = self._cell
        if cells.size < k:  # categories first seen after the freeze: rare cell
            rare = self._cells() - 1
            cells = np.concatenate((cells, np.full(k - cells.size, rare, dtype=np.int64)))
        counts = np.bincount(cells, weights=per_code.astype(np.float64), minlength=self._cells())
        return np.asarray(counts, dtype=np.float64)

    def _look(self) -> bool:
        cur = self._cell_counts(self._ring)
        ref = self._ref_counts
        self._current_n = self.window_size
        results: dict[str, list[float]] = {}
        if "chi2" in self.tests:
            results["chi2"] = self._chi2(ref, cur)
        results.update(self._binned_tests(ref, cur))
        return self._record(results)

    def _chi2(self, ref: FloatArray, cur: FloatArray) -> list[float]:
        cols = ref + cur
        keep = cols > 0
        df = int(keep.sum()) - 1
        if df < 1:
            return [0.0, 0.0, 1.0]
        r, c, tot = ref[keep], cur[keep], cols[keep]
        n_r, n_c = float(r.sum()), float(c.sum())
        big_n = n_r + n_c
        e_r, e_c = tot * n_r / big_n, tot * n_c / big_n
        stat = float(np.sum((r - e_r) ** 2 / e_r) + np.sum((c - e_c) ** 2 / e_c))
        crit = self._derived.get(f"_chi2_{df}")
        if crit is None:
            crit = self._derived[f"_chi2_{df}"] = chi2_isf(self.alpha_per_test, df)
        return [stat, crit, chi2_sf(stat, df)]

    # ---------------------------------------------------------------- evidence and state

    def details(self) -> dict[str, Any]:
        d = self._details_common()
        d["reference_n"] = self.reference_size if self._frozen else self._fill
        d["current_n"] = self._current_n
        d["categories"] = len(self._cats)
        d["cells"] = self._cells()
        return d

    def state(self) -> dict[str, Any]:
        s = self._state_common()
        s["cats"] = list(self._cats)
        if self._frozen:
            s["ref_counts"] = [int(v) for v in self._ref_counts]
            s["cell"] = b64(self._cell, "<i8")
            s["ring"] = b64(self._ring, "<i4")
        else:
            s["ref"] = b64(self._refbuf[: self._fill], "<i4")
        return s

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> CategoricalDrift:
        det = cls(**s["p"])
        det._restore_common(s)
        det._cats = list(s["cats"])
        det._codes = {k: i for i, k in enumerate(det._cats, start=1)}
        if det._frozen:
            det._ref_counts = np.asarray(s["ref_counts"], dtype=np.float64)
            det._cell = unb64(s["cell"], "<i8").astype(np.int64)
            det._ring = unb64(s["ring"], "<i4").astype(np.int64)
            det._refbuf = np.empty(0, dtype=np.int64)
            det._derive()
        else:
            ref = unb64(s["ref"], "<i4")
            det._refbuf[: ref.size] = ref
        return det


class Chi2Drift(CategoricalDrift, test="chi2"):
    """``categorical_drift`` with the chi-square test only (kind ``chi2``)."""


class JSDrift(CategoricalDrift, test="js"):
    """``categorical_drift`` with the calibrated Jensen-Shannon divergence only (kind ``js``)."""
