"""Every private attribute of river that the adapters use, named once, in one place.

river's drift detectors expose whether they fired, not why: the evidence a retrain request
carries (the statistic, the threshold it was compared with, the levels before and after) lives
in private attributes. :mod:`~streamproc.core.detect.river_adapters` reads them only through
the functions below, and writes one: the drift flag, cleared so that river does not restart
a detector by itself on the next update (only the caller's ``reset`` restarts it).

Checked against river 0.26.1 (the tests run on it) and 0.25.0 (the wheel's drift detector
modules, ``river/drift`` and ``river/base/drift_detector.py``, are identical to 0.26.1's);
``pyproject.toml`` bounds river below 0.27 until a newer version is checked here.
:func:`missing` lists the names a running river lacks (a unit test asserts there are none), so
an upgrade that renames one fails there, with the name, before any evidence goes wrong.

Examples
--------
>>> missing()
[]
>>> from river.drift.binary import DDM
>>> det = DDM()
>>> ddm_levels(det)
DDMLevels(n=0.0, p=0.0, p_min=None, s_min=None)
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

__all__ = [
    "CHECKED_VERSIONS",
    "PRIVATE_READ",
    "PRIVATE_READ_NESTED",
    "PRIVATE_WRITTEN",
    "DDMLevels",
    "EDDMLevels",
    "PageHinkleySums",
    "clear_drift",
    "ddm_levels",
    "eddm_levels",
    "fhddm_bounds",
    "fhddm_filled",
    "hddm_a_means",
    "hddm_w_split",
    "missing",
    "page_hinkley_mean",
    "page_hinkley_sums",
]

CHECKED_VERSIONS = ("0.25.0", "0.26.1")

# river class (module:name) -> the private attributes read from its instances.
PRIVATE_READ: dict[str, tuple[str, ...]] = {
    "river.drift:PageHinkley": (
        "_x_mean", "_sum_increase", "_min_increase", "_sum_decrease", "_max_decrease",
    ),
    "river.drift.binary:DDM": ("_p", "_p_min", "_s_min"),
    "river.drift.binary:EDDM": ("_error_distances", "_p2s_prime_max", "_n_errors"),
    "river.drift.binary:HDDMA": ("_z", "_x_min", "_x_max"),
    "river.drift.binary:HDDMW": (
        "_s1_incr", "_s2_incr", "_s1_decr", "_s2_decr", "_mcdiarmid_bound",
    ),
    "river.drift.binary:FHDDM": ("_sliding_window", "_u_max", "_epsilon"),
}  # fmt: skip
# Read from objects held in private attributes above: HDDMW's four SampleInfo objects.
PRIVATE_READ_NESTED: dict[str, tuple[str, ...]] = {
    "river.drift.binary:HDDMW._s1_incr": ("_is_init",),
}
# Written on every river drift detector (river.base.DriftDetector).
PRIVATE_WRITTEN: tuple[str, ...] = ("_drift_detected",)


def _river_class(path: str) -> Any:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def missing() -> list[str]:
    """The private names above that fresh detectors of the running river lack (none expected)."""
    out: list[str] = []
    for path, names in PRIVATE_READ.items():
        det = _river_class(path)()
        out += [f"{path}.{name}" for name in (*names, *PRIVATE_WRITTEN) if not hasattr(det, name)]
    for path, names in PRIVATE_READ_NESTED.items():
        cls_path, attr = path.rsplit(".", 1)
        inner = getattr(_river_class(cls_path)(), attr, None)
        out += [f"{path}.{name}" for name in names if not hasattr(inner, name)]
    return out


def clear_drift(det: Any) -> None:
    """Clear the drift flag, or river restarts the detector by itself on the next update."""
    det._drift_detected = False


class PageHinkleySums(NamedTuple):
    """PageHinkley's cumulative sums and their extremes, and the values it has seen."""

    n: float
    sum_increase: float
    min_increase: float
    sum_decrease: float
    max_decrease: float


def page_hinkley_sums(det: Any) -> PageHinkleySums:
    """PageHinkley's sums, for its statistic and the time since it last left its extreme."""
    return PageHinkleySums(
        det._x_mean.n, det._sum_increase, det._min_increase, det._sum_decrease, det._max_decrease
    )


def page_hinkley_mean(det: Any) -> float:
    """PageHinkley's running mean of the values."""
    return float(det._x_mean.get())


class DDMLevels(NamedTuple):
    """DDM's samples, error rate, and the best (lowest) level so far with its deviation."""

    n: float
    p: float
    p_min: float | None
    s_min: float | None


def ddm_levels(det: Any) -> DDMLevels:
    """DDM's levels: its statistic is how far ``p + s`` stands above ``p_min + s_min``."""
    return DDMLevels(det._p.n, float(det._p.get()), det._p_min, det._s_min)


class EDDMLevels(NamedTuple):
    """EDDM's distances between errors (count, mean, variance), best level, and errors."""

    n: float
    mean: float
    variance: float
    p2s_prime_max: float
    errors: int


def eddm_levels(det: Any) -> EDDMLevels:
    """EDDM's distances between errors, and the largest ``mean + 2 sd`` of them so far."""
    dist = det._error_distances
    return EDDMLevels(dist.mean.n, dist.mean.get(), dist.get(), det._p2s_prime_max, det._n_errors)


def hddm_a_means(det: Any, rising: bool) -> tuple[float, float, float, float]:
    """HDDM_A's ``(n, mean)`` of all values, then of those up to the cut (min if rising)."""
    z = det._z
    cut = det._x_min if rising else det._x_max
    return z.n, z.get(), cut.n, cut.get()


def hddm_w_split(det: Any, rising: bool) -> tuple[float, float] | None:
    """HDDM_W's weighted means after minus before the cut, and McDiarmid's bound for it.

    None until both sides have data. Rising: river's increase pair; falling: the decrease pair
    (before and after swapped, so a fall is positive).
    """
    first, second = (det._s1_incr, det._s2_incr) if rising else (det._s2_decr, det._s1_decr)
    if not (first._is_init and second._is_init):
        return None
    bound = det._mcdiarmid_bound(first.ibc + second.ibc, det.drift_confidence)
    return float(second.ewma - first.ewma), float(bound)


def fhddm_filled(det: Any) -> int:
    """Values in FHDDM's sliding window."""
    return len(det._sliding_window)


def fhddm_bounds(det: Any) -> tuple[float, float]:
    """FHDDM's highest success rate of a full window so far, and its epsilon."""
    return float(det._u_max), float(det._epsilon)
