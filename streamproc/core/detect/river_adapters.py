"""river's drift detectors behind the :class:`~streamproc.core.detect.base.Detector` protocol.

Kinds ``adwin``, ``page_hinkley``, ``kswin`` (any numbers) and ``ddm``, ``eddm``, ``hddm_a``,
``hddm_w``, ``fhddm`` (error indicators): one :class:`RiverDetector` subclass each, rising
only unless ``direction="both"``.
"""

from __future__ import annotations

import base64
import importlib
import inspect
import math
import pickle
from typing import Any, ClassVar

from streamproc.core.detect import river_compat as rc
from streamproc.core.detect.blockhist import BlockHistogram

__all__ = [
    "RIVER_KINDS",
    "RIVER_SNAPSHOT_FORMAT",
    "RiverADWIN",
    "RiverDDM",
    "RiverDetector",
    "RiverEDDM",
    "RiverFHDDM",
    "RiverHDDMA",
    "RiverHDDMW",
    "RiverKSWIN",
    "RiverPageHinkley",
]

RIVER_SNAPSHOT_FORMAT = 1
_NO_RIVER_PARAMS = ("window",)  # KSWIN's initial window: not a setting, and not JSON


def _river_version() -> str:
    from river.__version__ import __version__  # river.__version__, the running river

    return str(__version__)


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


class RiverDetector:
    """A river drift detector behind the :class:`Detector` interface.

    One subclass per river detector, registered under its kind: ``adwin``, ``page_hinkley``
    and ``kswin`` take any numbers; ``ddm``, ``eddm``, ``hddm_a``, ``hddm_w`` and ``fhddm``
    take error indicators (a value >= 0.5 is an error, like :class:`Cusum`). Keyword
    parameters are those of the river class (river's defaults otherwise), as JSON scalars.
    Each subclass documents its :attr:`statistic` and :attr:`threshold`; they are evidence for
    a retrain request, read from the river object, and river's own rule decides when to fire.

    Parameters
    ----------
    direction
        ``"up"`` (the default): only a rise of the level fires. After a retrain the error falls
        while the new model settles, and a two-sided detector would ask for another retrain
        (the notes measured 35 false alarms in 40k STAGGER samples for default ADWIN, ~4.6
        when only rises count). ADWIN and KSWIN still find changes both ways (and adapt their
        window to a fall) but only fire when the recent mean is above the older one;
        PageHinkley runs with ``mode="up"``, HDDM_A/HDDM_W with ``two_sided_test=False``.
        DDM, EDDM and FHDDM only detect rises of the error rate, so they take ``"up"`` only.
        ``"both"``: every change fires (PageHinkley ``mode="both"``, HDDM two-sided).

    Notes
    -----
    river restarts a detector by itself on the update after it fired. The wrapper clears that
    flag so that only :meth:`reset` restarts it (a fresh river object with the same
    parameters), after the caller has read the evidence; until then PageHinkley, DDM, EDDM,
    HDDM_A/W and FHDDM keep firing, like :class:`Cusum`, while ADWIN and KSWIN, having cut
    their window down to the recent data, do not. NaN values are skipped (not counted in
    :attr:`n`). Defaults are river's and not a policy. False alarms on stationary input,
    measured with river 0.26.1 and a reset after each alarm: PageHinkley 76 (up) / 126 (both)
    in 200k N(0,1) (its threshold is in the units of x); EDDM 42 in 200k Bernoulli(0.1);
    KSWIN 11 (up) / 23 (both) in 20k N(0,1), at ~0.3 ms per value; DDM ~0.9 per 20k
    Bernoulli(0.1), nearly all within ~100 samples of a (re)start, when its best level comes
    from a few errors (0.2 per 20k with ``warm_start=1000``). The binary detectors are quiet at
    low error rates but not at high ones: per 20k samples at error rates 0.1 / 0.2 / 0.3,
    HDDM_W 0 / 1.3 / 8, HDDM_A 0 / 0.24 / 0.4, FHDDM 0 / 0.6 / 2.4; ADWIN, DDM (after
    warm-up), HDDM_A/W and FHDDM raised none in 200k at 0.1.

    :meth:`state` holds the river object pickled (protocol 4, base64) with the river version
    that wrote it; :func:`~streamproc.core.detect.registry.restore` refuses a snapshot
    written by another river major.minor, since river objects do not load across versions
    (HDDM_A became HDDMA in 0.25). Loading a pickle runs code: restore only snapshots this
    service wrote to its own state store.

    Examples
    --------
    >>> import random
    >>> from streamproc.core.detect.registry import make_detector, restore
    >>> rng = random.Random(7)
    >>> det = make_detector("adwin")  # direction="up"
    >>> any(det.update(rng.gauss(1.0, 0.1)) for _ in range(2000))
    False
    >>> any(det.update(rng.gauss(0.5, 0.1)) for _ in range(2000))  # a fall does not fire
    False
    >>> fired = next(i for i in range(2000) if det.update(rng.gauss(1.5, 0.1)))
    >>> fired < 100, det.statistic > det.threshold, round(det.details()["mean_before"], 1)
    (True, True, 0.5)
    >>> restore(det.state()).state() == det.state()
    True
    >>> det.reset()
    >>> det.n, det.statistic
    (0, 0.0)
    """

    kind: ClassVar[str] = "river"
    _module: ClassVar[str] = "river.drift"
    _name: ClassVar[str] = ""
    _binary: ClassVar[bool] = False
    _two_sided: ClassVar[bool] = True  # accepts direction="both"
    _reserved: ClassVar[tuple[str, ...]] = ()  # river parameters set from ``direction``
    _extra: ClassVar[tuple[str, ...]] = ()  # attributes saved in the state, JSON-able

    def __init__(self, direction: str = "up", **params: Any) -> None:
        if direction not in ("up", "both"):
            raise ValueError(f"{self.kind}: direction must be 'up' or 'both', got {direction!r}.")
        if direction == "both" and not self._two_sided:
            raise ValueError(f"{self.kind} only detects rises of the error rate; use 'up'.")
        allowed = self._allowed_params()
        for key, value in params.items():
            if key in self._reserved:
                raise ValueError(
                    f"{self.kind}: {key!r} follows from direction ('up' or 'both'); drop it."
                )
            if key not in allowed:
                raise ValueError(
                    f"{self.kind}: unknown parameter {key!r}; river's {self._name} takes "
                    f"{sorted(allowed)}."
                )
            if not (value is None or isinstance(value, bool | int | float | str)):
                raise ValueError(f"{self.kind}: {key} must be a number, a string or null.")
        self.direction = direction
        self.params = dict(sorted(params.items()))
        self.reset()

    @classmethod
    def _river_class(cls) -> Any:
        return getattr(importlib.import_module(cls._module), cls._name)

    @classmethod
    def _allowed_params(cls) -> set[str]:
        names = inspect.signature(cls._river_class()).parameters
        return {n for n in names if n not in _NO_RIVER_PARAMS and n not in cls._reserved}

    def _river_params(self) -> dict[str, Any]:
        return dict(self.params)

    def reset(self) -> None:
        """A fresh river object with the same parameters."""
        try:
            self._det = self._river_class()(**self._river_params())
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{self.kind}: {exc}") from None
        self._n = 0
        self._skipped = 0
        self._fired = 0
        self._reset_extra()

    # Hooks for the subclasses.
    def _reset_extra(self) -> None:
        pass

    def _prepare(self, x: float) -> float:
        if self._binary:
            return 1.0 if x >= 0.5 else 0.0
        return float(x)

    def _before(self, v: float) -> None:
        pass

    def _after(self, v: float, detected: bool) -> bool:
        return detected

    def _evidence(self) -> tuple[float, float]:
        raise NotImplementedError

    def _details(self) -> dict[str, Any]:
        return {}

    def update(self, x: float) -> bool:
        if x != x:  # NaN
            self._skipped += 1
            return False
        v = self._prepare(x)
        self._before(v)
        det = self._det
        det.update(v)
        self._n += 1
        detected = bool(det.drift_detected)
        if detected:
            rc.clear_drift(det)  # or river restarts on the next update by itself
        fired = self._after(v, detected)
        if fired:
            self._fired += 1
        return fired

    @property
    def statistic(self) -> float:
        return self._evidence()[0]

    @property
    def threshold(self) -> float:
        return self._evidence()[1]

    @property
    def n(self) -> int:
        return self._n

    def details(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "river": self._name,
            "direction": self.direction,
            "detections": self._fired,
            "skipped": self._skipped,
        }
        d.update(self._details())
        return d

    def state(self) -> dict[str, Any]:
        blob = pickle.dumps(self._det, protocol=4)
        return {
            "kind": self.kind,
            "direction": self.direction,
            "params": dict(self.params),
            "format": {
                "codec": "pickle-base64",
                "version": RIVER_SNAPSHOT_FORMAT,
                "river": _river_version(),
            },
            "river": base64.b64encode(blob).decode("ascii"),
            "s": [self._n, self._skipped, self._fired, *(getattr(self, a) for a in self._extra)],
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> RiverDetector:
        fmt = s.get("format") or {}
        if fmt.get("codec") != "pickle-base64" or fmt.get("version") != RIVER_SNAPSHOT_FORMAT:
            raise ValueError(
                f"{cls.kind} detector state has format {fmt!r}, not river snapshot format "
                f"{RIVER_SNAPSHOT_FORMAT}; reset the worker's state (new application id)."
            )
        written, running = str(fmt.get("river")), _river_version()
        if _major_minor(written) != _major_minor(running):
            raise ValueError(
                f"{cls.kind} detector state was written with river {written} but river "
                f"{running} is installed, and river objects do not carry across versions; "
                "reset the worker's state (new application id) to start from fresh detectors."
            )
        det = cls(direction=s["direction"], **s["params"])
        obj = pickle.loads(base64.b64decode(s["river"]))
        if type(obj) is not type(det._det):
            raise ValueError(f"{cls.kind} detector state holds a {type(obj).__name__}.")
        det._det = obj
        det._n, det._skipped, det._fired, *extra = s["s"]
        for name, value in zip(cls._extra, extra, strict=True):
            setattr(det, name, value)
        return det

    # Adapters that keep a block histogram (ADWIN, PageHinkley) save it through this attribute
    # (named in their ``_extra``): its own plain state, restored into a BlockHistogram.
    _hist: BlockHistogram

    @property
    def _hist_state(self) -> list[Any]:
        return self._hist.state()

    @_hist_state.setter
    def _hist_state(self, value: list[Any]) -> None:
        self._hist = BlockHistogram.from_state(value)


class RiverADWIN(RiverDetector):
    """ADWIN (kind ``adwin``): adaptive window, cut where two sub-windows' means differ.

    river's ADWIN (Bifet & Gavalda 2007, compiled) says that its window changed, not where:
    at a detection it drops its oldest buckets only, so its own cut can be far from the change
    (measured: a change at 1,000 reported at 512, means 0.80 -> 0.78). The wrapper keeps its own
    exponential histogram of the window (:class:`~streamproc.core.detect.blockhist.BlockHistogram`,
    trimmed to ADWIN's width after each update) and, at a detection, finds the likeliest
    change point in the window ADWIN held, with the means before and after it.

    ``statistic``: at the last detection, the mean after that change point minus the mean
    before it (absolute value with ``direction="both"``); 0.0 before any detection.
    ``threshold``: ADWIN's cut bound for that split, with river's formula
    (``sqrt(2 m v d') + 2/3 d' m``, v the window variance); before any detection, the bound for
    splitting the current window in halves. ``details`` adds the window (width, mean,
    variance), ``mean_before``, ``mean_after``, ``since_change`` (values after the change
    point), ``change_index`` (its index since the last reset) and ``dropped`` (values ADWIN
    itself dropped).
    """

    kind: ClassVar[str] = "adwin"
    _name: ClassVar[str] = "ADWIN"
    _extra: ClassVar[tuple[str, ...]] = ("_w", "_t", "_v", "_cut", "_hist_state")

    def _reset_extra(self) -> None:
        self._w = 0.0  # width, total and sum of squared deviations after the last update
        self._t = 0.0
        self._v = 0.0
        # [mean_after - mean_before, bound, after_n, before_n, mean_before, change_index,
        #  dropped by ADWIN]
        self._cut: list[float] = []
        self._hist = BlockHistogram()

    def _bound(self, n0: float, n1: float, width: float, var: float) -> float:
        if width <= 1.0:
            return 0.0
        det = self._det
        dd = math.log(2.0 * math.log(width) / det.delta)
        low = float(det.min_window_length)
        m = 1.0 / max(n0 - low + 1.0, 1.0) + 1.0 / max(n1 - low + 1.0, 1.0)
        return math.sqrt(2.0 * m * var * max(dd, 0.0)) + 2.0 / 3.0 * dd * m

    def _after(self, v: float, detected: bool) -> bool:
        det = self._det
        w1, t1 = float(det.width), float(det.total)
        hist = self._hist
        hist.add(v)
        fired = False
        if detected:
            held = self._w + 1.0  # ADWIN's window just before its cut
            hist.trim(int(held))
            split = hist.best_split()
            if split is not None:
                var = self._v / self._w if self._w > 0.0 else 0.0
                diff = split.mean_after - split.mean_before
                bound = self._bound(split.before_n, split.after_n, held, var)
                self._cut = [
                    diff,
                    bound,
                    split.after_n,
                    split.before_n,
                    split.mean_before,
                    self._n - split.after_n,
                    held - w1,
                ]
                fired = self.direction == "both" or diff > 0.0
        if hist.n > w1:
            hist.trim(int(w1))
        self._w, self._t, self._v = w1, t1, float(det.variance)
        return fired

    def _evidence(self) -> tuple[float, float]:
        if self._cut:
            diff = self._cut[0]
            return (diff if self.direction == "up" else abs(diff)), self._cut[1]
        w = self._w
        if w < 2.0:
            return 0.0, 0.0
        return 0.0, self._bound(w / 2.0, w / 2.0, w, self._v / w)

    def _details(self) -> dict[str, Any]:
        w = self._w
        d: dict[str, Any] = {
            "width": int(w),
            "mean": self._t / w if w else 0.0,
            "variance": self._v / w if w else 0.0,
            "delta": float(self._det.delta),
        }
        if self._cut:
            diff, _, after_n, _, before, index, dropped = self._cut
            d.update(
                mean_before=before,
                mean_after=before + diff,
                since_change=int(after_n),
                change_index=int(index),
                dropped=int(dropped),
            )
        return d


class RiverPageHinkley(RiverDetector):
    """Page-Hinkley (kind ``page_hinkley``): cumulative deviations from the running mean.

    ``statistic``: the cumulative sum of ``x - mean - delta`` (forgetting factor ``alpha``)
    above its running minimum, i.e. river's ``test_increase``; with ``direction="both"`` the
    larger of that and the mirrored ``test_decrease``. ``threshold``: river's ``threshold``
    parameter (50 by default, in the units of x: scale it to the data). ``since_change``:
    samples since the likeliest change point, ``mean_before`` and ``mean_after`` the means of
    the values before and after it, from the wrapper's own block histogram of the values since
    the last reset (:class:`~streamproc.core.detect.blockhist.BlockHistogram`; the sample where
    the cumulative sum left its minimum was measured 500 values off on a clean step).
    """

    kind: ClassVar[str] = "page_hinkley"
    _name: ClassVar[str] = "PageHinkley"
    _reserved: ClassVar[tuple[str, ...]] = ("mode",)
    _extra: ClassVar[tuple[str, ...]] = ("_since_up", "_since_down", "_hist_state")

    def _river_params(self) -> dict[str, Any]:
        return {**self.params, "mode": "up" if self.direction == "up" else "both"}

    def _reset_extra(self) -> None:
        self._since_up = 0
        self._since_down = 0
        # Block sums of the values, for the means before and after the change point.
        self._hist = BlockHistogram()

    def _after(self, v: float, detected: bool) -> bool:
        self._hist.add(v)
        ph = rc.page_hinkley_sums(self._det)
        self._since_up = 0 if ph.sum_increase <= ph.min_increase else self._since_up + 1
        self._since_down = 0 if ph.sum_decrease >= ph.max_decrease else self._since_down + 1
        return detected

    def _sides(self) -> tuple[float, float]:
        ph = rc.page_hinkley_sums(self._det)
        if ph.n == 0:
            return 0.0, 0.0
        return (
            float(ph.sum_increase - ph.min_increase),
            float(ph.max_decrease - ph.sum_decrease),
        )

    def _evidence(self) -> tuple[float, float]:
        up, down = self._sides()
        stat = up if self.direction == "up" else max(up, down)
        return stat, float(self._det.threshold)

    def _details(self) -> dict[str, Any]:
        up, down = self._sides()
        rising = self.direction == "up" or up >= down
        d: dict[str, Any] = {
            "mean": rc.page_hinkley_mean(self._det),
            "side": "up" if rising else "down",
            "since_change": self._since_up if rising else self._since_down,
        }
        split = self._hist.best_split()
        if split is not None:  # at block resolution: exact near the end of the stream
            d.update(
                since_change=split.after_n,
                mean_before=split.mean_before,
                mean_after=split.mean_after,
            )
        return d


class RiverKSWIN(RiverDetector):
    """KSWIN (kind ``kswin``): KS test of the last ``stat_size`` values against older ones.

    ``statistic``: ``-log10`` of the last KS p-value (0.0 until the window is full);
    ``threshold``: ``-log10(alpha)``. river also requires the KS distance to exceed 0.1. With
    ``direction="up"`` a detection fires only when the mean of the recent values is above the
    mean of the older ones. ``seed`` defaults to 0 so that runs replay identically. About 0.3
    ms per value: not for many features at once.
    """

    kind: ClassVar[str] = "kswin"
    _name: ClassVar[str] = "KSWIN"
    _extra: ClassVar[tuple[str, ...]] = ("_means",)

    def __init__(self, direction: str = "up", **params: Any) -> None:
        params.setdefault("seed", 0)
        super().__init__(direction, **params)
        if self._det.window_size < 2 * self._det.stat_size:
            # river would fail on the first full window (it samples stat_size older values).
            raise ValueError(f"{self.kind}: window_size must be at least 2 * stat_size.")

    def _reset_extra(self) -> None:
        self._prev: list[float] = []
        self._means: list[float] = []  # [older, recent] at the last detection

    def _before(self, v: float) -> None:
        det = self._det
        if len(det.window) >= det.window_size - 1:
            self._prev = list(det.window)

    def _after(self, v: float, detected: bool) -> bool:
        if not detected:
            return False
        det = self._det
        size, recent = det.window_size, det.stat_size
        full = ([*self._prev, v])[-size:]
        older = full[: size - recent]
        newer = full[size - recent :]
        self._means = [sum(older) / len(older), sum(newer) / len(newer)]
        return self.direction == "both" or self._means[1] > self._means[0]

    def _evidence(self) -> tuple[float, float]:
        det = self._det
        thr = -math.log10(max(float(det.alpha), 1e-300))
        if self._n < det.window_size:
            return 0.0, thr
        return -math.log10(max(float(det.p_value), 1e-300)), thr

    def _details(self) -> dict[str, Any]:
        det = self._det
        d: dict[str, Any] = {
            "p_value": float(det.p_value) if self._n >= det.window_size else None,
            "alpha": float(det.alpha),
            "window_size": int(det.window_size),
            "stat_size": int(det.stat_size),
        }
        if self._means:
            d.update(
                mean_before=self._means[0],
                mean_after=self._means[1],
                since_change=int(det.stat_size),
            )
        return d


class RiverDDM(RiverDetector):
    """DDM (kind ``ddm``): error rate p and its deviation s against their best level so far.

    ``statistic``: ``(p + s - p_min) / s_min``, how many of the best level's deviations the
    error rate stands above that level (0.0 during the warm start; 1e12 when the best level
    had no error at all, where river's DDM fires on the first error); ``threshold``:
    ``drift_threshold`` (3). It grows less sensitive the longer it runs without a reset (the
    notes: a 0.2 -> 0.4 jump caught 93% of the time after 2k stable samples, 37% after 20k).
    """

    kind: ClassVar[str] = "ddm"
    _module: ClassVar[str] = "river.drift.binary"
    _name: ClassVar[str] = "DDM"
    _binary: ClassVar[bool] = True
    _two_sided: ClassVar[bool] = False

    def _evidence(self) -> tuple[float, float]:
        det = self._det
        thr = float(det.drift_threshold)
        n, p, p_min, s_min = rc.ddm_levels(det)
        if p_min is None or s_min is None or n == 0:
            return 0.0, thr
        excess = p + math.sqrt(p * (1.0 - p) / n) - p_min
        if s_min > 0.0:
            return min(excess / s_min, 1e12), thr
        return (0.0 if excess <= 0.0 else 1e12), thr

    def _details(self) -> dict[str, Any]:
        levels = rc.ddm_levels(self._det)
        return {
            "error_rate": levels.p,
            "min_error_rate": None if levels.p_min is None else float(levels.p_min),
            "warning": bool(self._det.warning_detected),
        }


class RiverEDDM(RiverDetector):
    """EDDM (kind ``eddm``): the distance between errors, against its best level so far.

    ``statistic``: ``1 - (m + 2 s) / max(m + 2 s)``, how far the mean distance between errors
    plus two deviations has shrunk from its maximum; ``threshold``: ``1 - beta`` (0.1). River
    only checks it once ``warm_start`` errors have been seen. The notes measured 31 false
    alarms in 200k stationary Bernoulli(0.1) with the defaults.
    """

    kind: ClassVar[str] = "eddm"
    _module: ClassVar[str] = "river.drift.binary"
    _name: ClassVar[str] = "EDDM"
    _binary: ClassVar[bool] = True
    _two_sided: ClassVar[bool] = False

    def _evidence(self) -> tuple[float, float]:
        det = self._det
        thr = 1.0 - float(det.beta)
        d = rc.eddm_levels(det)
        if d.p2s_prime_max <= 0 or d.n < 1:
            return 0.0, thr
        level = (d.mean + 2.0 * max(d.variance, 0.0) ** 0.5) / d.p2s_prime_max
        return max(0.0, 1.0 - float(level)), thr

    def _details(self) -> dict[str, Any]:
        d = rc.eddm_levels(self._det)
        return {
            "errors": int(d.errors),
            "mean_distance": float(d.mean),
            "warning": bool(self._det.warning_detected),
        }


class _RiverHDDM(RiverDetector):
    _module: ClassVar[str] = "river.drift.binary"
    _binary: ClassVar[bool] = True
    _reserved: ClassVar[tuple[str, ...]] = ("two_sided_test",)

    def _river_params(self) -> dict[str, Any]:
        return {**self.params, "two_sided_test": self.direction == "both"}

    def _rise(self) -> tuple[float, float]:
        raise NotImplementedError

    def _fall(self) -> tuple[float, float]:
        raise NotImplementedError

    def _evidence(self) -> tuple[float, float]:
        rise = self._rise()
        if self.direction == "up":
            return rise
        fall = self._fall()
        return rise if rise[0] - rise[1] >= fall[0] - fall[1] else fall

    def _details(self) -> dict[str, Any]:
        rise = self._rise()
        fall = self._fall() if self.direction == "both" else (0.0, 1.0)
        return {
            "side": "up" if rise[0] - rise[1] >= fall[0] - fall[1] else "down",
            "warning": bool(self._det.warning_detected),
        }


class RiverHDDMA(_RiverHDDM):
    """HDDM_A (kind ``hddm_a``): Hoeffding bound on the error rate since its lowest point.

    ``statistic``: the error rate since the cut point minus the error rate up to it (the
    rise, or the fall for the down side of ``direction="both"``); ``threshold``: the Hoeffding
    bound river compares it with at ``drift_confidence`` (1.0 until a comparison is possible).
    """

    kind: ClassVar[str] = "hddm_a"
    _name: ClassVar[str] = "HDDMA"

    def _side(self, rising: bool) -> tuple[float, float]:
        det = self._det
        n, mean, cut_n, cut_mean = rc.hddm_a_means(det, rising)
        if cut_n == 0 or cut_n == n:
            return 0.0, 1.0
        m = (n - cut_n) / cut_n * (1.0 / n)
        bound = math.sqrt(m / 2.0 * math.log(2.0 / det.drift_confidence))
        return (1.0 if rising else -1.0) * float(mean - cut_mean), bound

    def _rise(self) -> tuple[float, float]:
        return self._side(True)

    def _fall(self) -> tuple[float, float]:
        return self._side(False)


class RiverHDDMW(_RiverHDDM):
    """HDDM_W (kind ``hddm_w``): McDiarmid bound on exponentially weighted error rates.

    ``statistic``: the weighted error rate after the cut point minus the one before it (the
    rise, or the fall for the down side of ``direction="both"``); ``threshold``: the McDiarmid
    bound river compares it with at ``drift_confidence`` (1.0 until both sides have data).
    """

    kind: ClassVar[str] = "hddm_w"
    _name: ClassVar[str] = "HDDMW"

    def _side(self, rising: bool) -> tuple[float, float]:
        split = rc.hddm_w_split(self._det, rising)
        return (0.0, 1.0) if split is None else split

    def _rise(self) -> tuple[float, float]:
        return self._side(True)

    def _fall(self) -> tuple[float, float]:
        return self._side(False)


class RiverFHDDM(RiverDetector):
    """FHDDM (kind ``fhddm``): Hoeffding bound on a sliding window's error rate.

    river's FHDDM fires when the mean of its input falls below its running maximum by more
    than ``epsilon``: fed errors, that is a *fall* of the error rate. The wrapper feeds it
    ``1 - error`` (the success indicator), so it fires on a rise of the error rate.
    ``statistic``: error rate of the last full window minus the lowest such rate so far (0.0
    until the window first fills; the stacking short window, if set, is not reflected);
    ``threshold``: ``epsilon = sqrt(ln(1 / confidence_level) / (2 sliding_window_size))``.
    """

    kind: ClassVar[str] = "fhddm"
    _module: ClassVar[str] = "river.drift.binary"
    _name: ClassVar[str] = "FHDDM"
    _binary: ClassVar[bool] = True
    _two_sided: ClassVar[bool] = False
    _extra: ClassVar[tuple[str, ...]] = ("_u",)

    def _reset_extra(self) -> None:
        self._u = -1.0  # success rate of the last full window (-1: none yet)
        self._pre = (0, 0.0)

    def _prepare(self, x: float) -> float:
        return 0.0 if x >= 0.5 else 1.0

    def _before(self, v: float) -> None:
        det = self._det
        self._pre = (rc.fhddm_filled(det), float(det.n_one))

    def _after(self, v: float, detected: bool) -> bool:
        size = self._det.sliding_window_size
        filled, ones = self._pre
        if filled == size - 1:
            self._u = (ones + v) / size
        return detected

    def _evidence(self) -> tuple[float, float]:
        u_max, eps = rc.fhddm_bounds(self._det)
        if self._u < 0.0:
            return 0.0, eps
        return float(u_max - self._u), eps

    def _details(self) -> dict[str, Any]:
        u_max, _ = rc.fhddm_bounds(self._det)
        return {
            "error_rate": None if self._u < 0.0 else 1.0 - self._u,
            "min_error_rate": None if self._u < 0.0 else 1.0 - u_max,
            "window": int(self._det.sliding_window_size),
        }


RIVER_KINDS: dict[str, Any] = {
    c.kind: c
    for c in (
        RiverADWIN,
        RiverPageHinkley,
        RiverKSWIN,
        RiverDDM,
        RiverEDDM,
        RiverHDDMA,
        RiverHDDMW,
        RiverFHDDM,
    )
}
