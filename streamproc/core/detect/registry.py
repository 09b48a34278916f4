"""Detector kinds by name: :func:`make_detector`, :func:`parameters` and the one :func:`restore`.

Kinds: ``threshold`` (:mod:`~streamproc.core.detect.threshold`) and ``cusum``
(:mod:`~streamproc.core.detect.cusum`) for error rates and metrics; river's detectors
``adwin``, ``page_hinkley``, ``kswin``, ``ddm``, ``eddm``, ``hddm_a``, ``hddm_w`` and ``fhddm``
(:mod:`~streamproc.core.detect.river_adapters`, rises only unless ``direction="both"``);
windowed two-sample tests of a feature against a frozen reference, ``numeric_drift`` (``ks``,
``psi``, ``wasserstein``; :mod:`~streamproc.core.detect.numeric_drift`) and
``categorical_drift`` (``chi2``, ``js``; :mod:`~streamproc.core.detect.categorical_drift`),
each test also on its own kind; CUSUMs on one feature: ``rank_cusum``
(:mod:`~streamproc.core.detect.ranks`, distribution-free, the default for numbers),
``mean_variance_cusum`` (:mod:`~streamproc.core.detect.shift`, Gaussian) and
``multinomial_cusum`` (:mod:`~streamproc.core.detect.multinomial`, the default for
categories); ``rank_cp``, a robust two-segment change test on a reported metric's own recent
values (:mod:`~streamproc.core.detect.seriescp`); and ``rising_only``, any of them reporting
rises only (:mod:`~streamproc.core.detect.rising`).

What each kind does with a NaN value is in :data:`NAN_HANDLING`: river's detectors and
``rank_cp`` skip it, the feature detectors count it as a missing value (like None), the
threshold rule never fires on it, and the error CUSUM must not get one (the monitor sends it
0/1 errors and finite values only).

Examples
--------
>>> det = make_detector("cusum", warmup=50, arl=1e4)
>>> any(det.update(1.0 if i % 10 == 0 else 0.0) for i in range(400))
False
>>> restore(det.state()).state() == det.state()
True
>>> sorted(parameters("cusum"))
['arl', 'min_rise', 'reference_max', 'shift', 'warmup']
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from streamproc.core.detect.base import Detector
from streamproc.core.detect.categorical_drift import CategoricalDrift, Chi2Drift, JSDrift
from streamproc.core.detect.cusum import Cusum
from streamproc.core.detect.multinomial import MultinomialCusum
from streamproc.core.detect.numeric_drift import KSDrift, NumericDrift, PSIDrift, WassersteinDrift
from streamproc.core.detect.ranks import RankCusum
from streamproc.core.detect.rising import RisingOnly
from streamproc.core.detect.river_adapters import RIVER_KINDS, RiverADWIN
from streamproc.core.detect.seriescp import RankChangePoint
from streamproc.core.detect.shift import MeanVarianceCusum
from streamproc.core.detect.threshold import ThresholdRule

__all__ = ["KINDS", "NAN_HANDLING", "TWOSAMPLE_KINDS", "make_detector", "parameters", "restore"]

TWOSAMPLE_KINDS: dict[str, Any] = {
    c.kind: c
    for c in (
        NumericDrift,
        KSDrift,
        PSIDrift,
        WassersteinDrift,
        CategoricalDrift,
        Chi2Drift,
        JSDrift,
    )
}

# Every registered kind, by name (the order of the policy's documentation).
KINDS: dict[str, Any] = {
    ThresholdRule.kind: ThresholdRule,
    Cusum.kind: Cusum,
    **RIVER_KINDS,
    **TWOSAMPLE_KINDS,
    MeanVarianceCusum.kind: MeanVarianceCusum,
    RankChangePoint.kind: RankChangePoint,
    RisingOnly.kind: RisingOnly,
    RankCusum.kind: RankCusum,
    MultinomialCusum.kind: MultinomialCusum,
}

_SKIPPED = "skipped: not counted in n, no effect on the statistics (counted in details)"
_NUMERIC_MISSING = "missing: counted in n as a missing value, like None (a missing-rate test)"
_CATEGORY_MISSING = "missing: counted in n as the missing category, like None"
# What each kind does with a NaN value (checked by tests/unit/core/detect/test_contract.py).
NAN_HANDLING: dict[str, str] = {
    "threshold": "never fires: counted in n, NaN is the statistic, compares false both ways",
    "cusum": (
        "undefined: in warm-up a NaN poisons the reference (the detector never fires); then, "
        "Bernoulli: counted as a correct answer; Gaussian: resets the statistic to 0. The "
        "monitor sends it only 0/1 errors and finite values"
    ),
    **{kind: _SKIPPED for kind in RIVER_KINDS},
    "rank_cp": _SKIPPED,
    **{kind: _NUMERIC_MISSING for kind in ("numeric_drift", "ks", "psi", "wasserstein")},
    **{kind: _CATEGORY_MISSING for kind in ("categorical_drift", "chi2", "js")},
    "mean_variance_cusum": _NUMERIC_MISSING,
    "rank_cusum": _NUMERIC_MISSING,
    "rising_only": "as the detector it wraps",
    "multinomial_cusum": _CATEGORY_MISSING,
}


if TYPE_CHECKING:  # the registered classes implement the protocol (checked by mypy)
    _CONFORM: tuple[Detector, ...] = (
        ThresholdRule(above=1.0),
        Cusum(),
        RiverADWIN(),
        NumericDrift(),
        CategoricalDrift(),
        RankChangePoint(),
        RankCusum(),
        MultinomialCusum(),
        MeanVarianceCusum(),
        RisingOnly({"detector": "cusum"}),
    )


def make_detector(kind: str, **params: Any) -> Detector:
    """Build a detector by its policy name, e.g. ``make_detector("cusum", warmup=200)``."""
    try:
        cls = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown detector {kind!r}; use one of {sorted(KINDS)}.") from None
    det: Detector = cls(**params)
    return det


def restore(state: dict[str, Any]) -> Detector:
    """Rebuild any registered detector from its :meth:`~Detector.state`: the one entry point.

    Raises
    ------
    ValueError
        The state names no registered kind, or its detector refuses it (another snapshot
        format, another river version): the message says to reset the worker's state.
    """
    try:
        cls = KINDS[state["kind"]]
    except KeyError:
        raise ValueError(
            f"detector state of unknown kind {state.get('kind')!r}; reset the worker's state."
        ) from None
    det: Detector = cls.from_state(state)
    return det


def parameters(kind: str) -> frozenset[str]:
    """The parameter names ``make_detector(kind, ...)`` accepts (for the policy's messages)."""
    try:
        cls = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown detector {kind!r}; use one of {sorted(KINDS)}.") from None
    sig = inspect.signature(cls).parameters
    names = {n for n, p in sig.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values()):
        names |= cls._allowed_params()
    return frozenset(names)
