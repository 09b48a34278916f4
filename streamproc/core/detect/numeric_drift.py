"""Drift of one numeric feature against a frozen reference: KS, PSI, Wasserstein (and JS).

Kinds ``numeric_drift`` (several tests) and ``ks``, ``psi``, ``wasserstein`` (one each). The
window machinery and the calibration are described in
:mod:`~streamproc.core.detect.windowdrift`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from streamproc.core.detect.stats import ks_isf, ks_lambda, ks_sf, normal_isf, normal_sf
from streamproc.core.detect.windowdrift import (
    MIN_VALUES,
    FloatArray,
    IntArray,
    WindowDrift,
    b64,
    unb64,
)

__all__ = ["KSDrift", "NumericDrift", "PSIDrift", "WassersteinDrift"]

_CLIP = 0.005  # Wasserstein compares values clipped to the reference's [0.5%, 99.5%] quantiles


class NumericDrift(WindowDrift):
    """Drift of one numeric feature: KS, PSI and Wasserstein against a frozen reference.

    Registered as ``numeric_drift`` (several tests, ``tests=[...]``) and as ``ks``, ``psi``
    and ``wasserstein`` (one test each). See the module docstring for the calibration.

    Parameters
    ----------
    reference_size
        Values (missing ones included) that form the reference, frozen once full.
    window_size
        Values in the current window (a ring buffer of the most recent values).
    every
        Values between two looks, once the current window is full.
    tests
        Any of ``"ks"``, ``"psi"``, ``"wasserstein"``, ``"js"`` (binned like PSI).
    alpha
        False-alarm probability of one look, split evenly over its tests (Bonferroni).
    confirm
        Consecutive significant looks needed to fire.
    bins
        PSI/JS bins, at reference quantiles (fewer when the reference has ties; a reference
        with at most ``bins`` distinct values gets one bin per value).
    resamples
        Reference splits for the PSI/JS/Wasserstein null.
    seed
        Seed of those splits (the calibration is deterministic).
    missing
        Also test the missing rate (two-proportion z-test), counted as one more test.

    Examples
    --------
    >>> det = KSDrift(reference_size=100, window_size=50, every=10, missing=False)
    >>> [det.update(float(i % 10)) for i in range(150)][-1]
    False
    >>> fired = [det.update(float(i % 10) + 5.0) for i in range(50)]
    >>> fired.index(True) < 50, det.details()["test"]
    (True, 'ks')
    """

    kind: ClassVar[str] = "numeric_drift"
    _ALLOWED: ClassVar[tuple[str, ...]] = ("ks", "psi", "wasserstein", "js")
    _PARAMS: ClassVar[tuple[str, ...]] = (*WindowDrift._PARAMS, "bins", "missing")
    _DEFAULT_TESTS: ClassVar[tuple[str, ...]] = ("ks", "psi", "wasserstein")

    def __init__(
        self,
        reference_size: int = 1000,
        window_size: int = 1000,
        every: int = 250,
        tests: Sequence[str] | None = None,
        alpha: float = 1e-6,
        confirm: int = 1,
        bins: int = 10,
        resamples: int = 200,
        seed: int = 0,
        missing: bool = True,
    ) -> None:
        super().__init__(reference_size, window_size, every, tests, alpha, confirm, resamples, seed)
        if not 2 <= bins <= 1000:
            raise ValueError(f"{self.kind}: bins must be in [2, 1000], got {bins}.")
        self.bins = int(bins)
        self.missing = bool(missing)
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next ``reference_size`` values form a new reference."""
        self._reset_common()
        self._refbuf: FloatArray = np.empty(self.reference_size, dtype=np.float64)
        self._ref: FloatArray = np.empty(0, dtype=np.float64)  # sorted, non-missing
        self._ref_missing = 0
        self._ring: FloatArray = np.empty(0, dtype=np.float64)
        self._edges: FloatArray = np.empty(0, dtype=np.float64)
        self._ref_counts: FloatArray = np.empty(0, dtype=np.float64)
        self._scale = 1.0
        self._clip = (0.0, 0.0)

    @property
    def _n_tests(self) -> int:
        return len(self.tests) + (1 if self.missing else 0)

    def update(self, x: float | None) -> bool:
        """Store one value; every ``every`` values (window full) run the tests."""
        self._n += 1
        try:
            v = float(x)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            v = math.nan
        if v - v != 0.0:  # NaN or +-inf
            v = math.nan
        return self._store(v)

    # ---------------------------------------------------------------- freeze and look

    def _freeze(self) -> None:
        buf = self._refbuf
        ok = ~np.isnan(buf)
        self._ref = np.sort(buf[ok])
        self._ref_missing = int(buf.size - self._ref.size)
        self._refbuf = np.empty(0, dtype=np.float64)
        self._ring = np.full(self.window_size, np.nan, dtype=np.float64)
        self._frozen = True
        self._countdown = self.window_size
        self._pos = 0
        ref = self._ref
        self._cal = {}
        if ref.size >= 2 * MIN_VALUES:
            self._prepare_reference()
            rng = np.random.default_rng(self.seed)
            if "wasserstein" in self.tests:
                self._calibrate_wasserstein(rng)
            self._calibrate_binned(self._bin_of(ref), self._edges.size + 1, rng)
        self._derive()

    def _prepare_reference(self) -> None:
        ref = self._ref
        uniq = np.unique(ref)
        if uniq.size <= self.bins:
            edges = (uniq[:-1] + uniq[1:]) / 2.0
        else:
            edges = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, self.bins + 1)[1:-1]))
        self._edges = np.asarray(edges, dtype=np.float64)
        self._ref_counts = np.bincount(self._bin_of(ref), minlength=self._edges.size + 1).astype(
            np.float64
        )
        lo, hi = np.quantile(ref, [_CLIP, 1.0 - _CLIP])
        self._clip = (float(lo), float(hi))
        sd = float(np.clip(ref, lo, hi).std())
        self._scale = sd if sd > 0.0 else 1.0

    def _bin_of(self, values: FloatArray) -> IntArray:
        # (e_{i-1}, e_i] intervals: a point mass sitting on a quantile edge stays in one bin.
        return np.asarray(np.searchsorted(self._edges, values, side="left"), dtype=np.int64)

    def _calibrate_wasserstein(self, rng: np.random.Generator) -> None:
        ref = self._ref
        half = ref.size // 2
        lo, hi = self._clip
        perm = np.clip(rng.permuted(np.tile(ref, (self.resamples, 1)), axis=1), lo, hi)
        a = np.sort(perm[:, :half], axis=1)
        b = np.sort(perm[:, half : 2 * half], axis=1)
        # Equal sizes: W1 is the mean gap between matched order statistics.
        units = np.abs(a - b).mean(axis=1) / self._scale / math.sqrt(2.0 / half)
        med = float(np.median(units))
        sd = float(units.std(ddof=1))
        se_med = 1.2533 * sd / math.sqrt(units.size)
        self._cal["wasserstein"] = [med + 2.0 * se_med, max(1.0, sd)]

    def _look(self) -> bool:
        ring = self._ring
        ok = ~np.isnan(ring)
        cur = np.sort(ring[ok])
        ref = self._ref
        n, m = ref.size, cur.size
        self._current_n = m
        results: dict[str, list[float]] = {}
        if self.missing:
            results["missing"] = self._missing_test(self.window_size - m)
        if n >= MIN_VALUES and m >= MIN_VALUES:
            h = 1.0 / n + 1.0 / m
            if "ks" in self.tests or "wasserstein" in self.tests:
                both = np.concatenate((ref, cur))
                both.sort()
                gap = np.abs(
                    np.searchsorted(ref, both, side="right") / n
                    - np.searchsorted(cur, both, side="right") / m
                )
                if "ks" in self.tests:
                    d = float(gap.max())
                    lam = ks_lambda(n, m)
                    thr = self._ks_critical() / lam
                    results["ks"] = [d, thr, ks_sf(lam * d)]
                if "wasserstein" in self._cal:
                    # W1 of both samples clipped to the reference's central 99%.
                    lo, hi = self._clip
                    seg = np.minimum(both[1:], hi) - np.maximum(both[:-1], lo)
                    w = float(np.dot(gap[:-1], np.maximum(seg, 0.0))) / self._scale
                    med, sigma = self._cal["wasserstein"]
                    t = w / math.sqrt(h) - med
                    p = normal_sf(t / sigma) if t > 0.0 else 1.0
                    results["wasserstein"] = [w, self._derived["wasserstein"] * math.sqrt(h), p]
            if "psi" in self._cal or "js" in self._cal:
                counts = np.bincount(self._bin_of(cur), minlength=self._edges.size + 1)
                results.update(self._binned_tests(self._ref_counts, counts.astype(np.float64)))
        if not results:
            results["none"] = [0.0, 0.0, 1.0]
        return self._record(results)

    def _ks_critical(self) -> float:
        crit = self._derived.get("_ks")
        if crit is None:
            crit = self._derived["_ks"] = ks_isf(self.alpha_per_test)
        return crit

    def _missing_test(self, k2: int) -> list[float]:
        n1, n2 = self.reference_size, self.window_size
        k1 = self._ref_missing
        pooled = (k1 + k2) / (n1 + n2)
        zcrit = normal_isf(self.alpha_per_test / 2.0)
        if pooled <= 0.0 or pooled >= 1.0:
            return [0.0, zcrit, 1.0]
        z = abs(k2 / n2 - k1 / n1) / math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
        return [z, zcrit, min(1.0, 2.0 * normal_sf(z))]

    # ---------------------------------------------------------------- evidence and state

    def details(self) -> dict[str, Any]:
        d = self._details_common()
        d["reference_n"] = int(self._ref.size) if self._frozen else self._fill
        d["current_n"] = self._current_n
        d["reference_missing_rate"] = self._ref_missing / self.reference_size
        missing_now = self.window_size - self._current_n if self._last else 0
        d["current_missing_rate"] = missing_now / self.window_size
        return d

    def state(self) -> dict[str, Any]:
        s = self._state_common()
        if self._frozen:
            s["ref"] = b64(self._ref, "<f8")
            s["ref_missing"] = self._ref_missing
            s["ring"] = b64(self._ring, "<f8")
        else:
            s["ref"] = b64(self._refbuf[: self._fill], "<f8")
        return s

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> NumericDrift:
        det = cls(**s["p"])
        det._restore_common(s)
        ref = unb64(s["ref"], "<f8")
        if det._frozen:
            det._ref = ref
            det._ref_missing = int(s["ref_missing"])
            det._ring = unb64(s["ring"], "<f8")
            det._refbuf = np.empty(0, dtype=np.float64)
            if ref.size >= 2 * MIN_VALUES:
                det._prepare_reference()
            det._derive()
        else:
            det._refbuf[: ref.size] = ref
        return det


class KSDrift(NumericDrift, test="ks"):
    """``numeric_drift`` with the Kolmogorov-Smirnov test only (kind ``ks``)."""


class PSIDrift(NumericDrift, test="psi"):
    """``numeric_drift`` with the calibrated population stability index only (kind ``psi``)."""


class WassersteinDrift(NumericDrift, test="wasserstein"):
    """``numeric_drift`` with the calibrated Wasserstein distance only (kind ``wasserstein``)."""
