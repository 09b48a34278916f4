"""Any detector, reporting only rises (kind ``rising_only``): for an error signal.

The monitor wraps the policy's numeric detector in it when it watches a regression model's
errors (:mod:`streamproc.core.errors`): a fall of the error is no reason to retrain.

Examples
--------
>>> import random
>>> rng = random.Random(3)
>>> det = RisingOnly({"detector": "mean_variance_cusum", "warmup": 200})
>>> any(det.update(rng.gauss(1.0, 0.1)) for _ in range(2000))
False
>>> any(det.update(rng.gauss(0.9, 0.1)) for _ in range(2000)), det.falls  # a fall: restarted
(False, 1)
>>> next(i for i in range(2000) if det.update(rng.gauss(1.0, 0.1))) < 100
True
>>> RisingOnly.from_state(det.state()).state() == det.state()
True
"""

from __future__ import annotations

from typing import Any, ClassVar

from streamproc.core.detect.base import Detector

__all__ = ["RisingOnly"]


class RisingOnly:
    """Any detector, reporting only rises: for an error signal, a fall is no reason to retrain.

    Wraps a (two-sided) numeric detector such as the policy's default numeric kind; when it
    fires on a change its :meth:`details` name as falling (``change`` containing ``_down``),
    the wrapper restarts it quietly (a fresh reference of the new, lower level) instead of
    reporting. A detector whose details do not name a direction (a windowed two-sample test)
    reports every change it finds. Everything else is the inner detector's.

    Parameters
    ----------
    inner
        The detector's spec: ``{"detector": kind, **params}`` (as in the policy).
    """

    kind: ClassVar[str] = "rising_only"

    def __init__(self, inner: dict[str, Any]) -> None:
        from streamproc.core.detect.registry import make_detector

        self.spec = dict(inner)
        spec = dict(inner)
        kind = spec.pop("detector")
        self.inner: Detector = make_detector(kind, **spec)
        self.falls = 0

    def update(self, x: float) -> bool:
        if not self.inner.update(x):
            return False
        if "_down" in str(self.inner.details().get("change", "")):
            self.falls += 1
            self.inner.reset()
            return False
        return True

    def reset(self) -> None:
        self.inner.reset()

    @property
    def statistic(self) -> float:
        return self.inner.statistic

    @property
    def threshold(self) -> float:
        return self.inner.threshold

    @property
    def n(self) -> int:
        return self.inner.n

    def details(self) -> dict[str, Any]:
        return {**self.inner.details(), "detector": self.spec["detector"], "falls": self.falls}

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "spec": self.spec,
            "inner": self.inner.state(),
            "falls": self.falls,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> RisingOnly:
        from streamproc.core.detect.registry import restore

        d = cls(s["spec"])
        d.inner = restore(s["inner"])
        d.falls = s["falls"]
        return d
