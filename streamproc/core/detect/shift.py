"""Distribution shift of one numeric value, caught as fast as theory allows: CUSUMs on z-scores.

The first ``warmup`` values estimate the reference mean and deviation (captured afresh after each
deployment). After that, each value becomes a z-score and feeds four Page CUSUMs, each the
log-likelihood ratio of a specific change against "no change" since its likeliest start:

- mean up and mean down, each tuned to every size in ``shifts`` (in deviations; one CUSUM is
  optimal for one size, two sizes cover small and large shifts within ~1.4x of the bound),
- variance up by the factor ``scale`` (Gaussian, on z squared),
- the rate of missing values (None, NaN, infinities) up (Bernoulli).

The detector fires when one of them reaches ``ln(arl)``, which bounds false alarms to about one
per ``arl`` values per statistic. CUSUM is optimal for the change it is tuned to: its delay is
close to ``ln(arl) / KL``, the lower bound for any detector with that false-alarm rate. Each
update is a few float operations, and the state is a dozen numbers: cheap for many features.

Examples
--------
>>> import random
>>> rng = random.Random(1)
>>> det = MeanVarianceCusum(arl=1e6)
>>> any(det.update(rng.gauss(0, 1)) for _ in range(20000))
False
>>> delay = next(i for i in range(5000) if det.update(rng.gauss(1.0, 1)))
>>> delay < 60
True
>>> det.details()["change"]
'mean_up_1sd'
>>> MeanVarianceCusum.from_state(det.state()).state() == det.state()
True
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from streamproc.core.detect.base import named_fields
from streamproc.core.stateformat import check_format

__all__ = ["SHIFT_FORMAT", "MeanVarianceCusum"]

# Snapshot format: 2 names its fields; 1 (no ``format`` key) listed them in the order below,
# then the statistics in the order of ``names``.
SHIFT_FORMAT = 2
_PARAMS = ("warmup", "shifts", "scale", "arl")
_FIELDS = (
    "n", "seen", "sum", "sumsq", "missing", "mean", "sd", "missing_llr", "present_llr", "slack",
)  # fmt: skip


def _number(x: object) -> float | None:
    if x is None or isinstance(x, bool | str):
        return None
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


class MeanVarianceCusum:
    """Two-sided mean, variance and missing-rate CUSUMs on one numeric value.

    Parameters
    ----------
    warmup
        Values that form the reference (mean, deviation, missing rate).
    shifts
        Mean shifts, in reference deviations, the mean CUSUMs are tuned to.
    scale
        Variance ratio the variance CUSUM is tuned to.
    arl
        Average run length between false alarms, per statistic, in values.
    """

    kind: ClassVar[str] = "mean_variance_cusum"

    def __init__(
        self,
        warmup: int = 1000,
        shifts: tuple[float, ...] | list[float] = (0.5, 1.0),
        scale: float = 2.0,
        arl: float = 1e6,
    ) -> None:
        if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 10:
            raise ValueError(f"{self.kind}: warmup must be a whole number >= 10, got {warmup!r}.")
        shifts = tuple(float(d) for d in shifts)
        ok = all(math.isfinite(v) for v in (*shifts, scale, arl))
        if not (ok and shifts and min(shifts) > 0 and scale > 1 and arl > 1):
            raise ValueError(f"{self.kind} needs finite shifts > 0, scale > 1 and arl > 1.")
        self.warmup = warmup
        self.shifts = shifts
        self.names = (
            *(f"mean_up_{d:g}sd" for d in shifts),
            *(f"mean_down_{d:g}sd" for d in shifts),
            "variance_up",
            "missing_up",
        )
        self.scale = float(scale)
        self.arl = float(arl)
        # Per-value LLR increments of the variance CUSUM: a * z^2 - b.
        self._va = 0.5 * (1.0 - 1.0 / self.scale)
        self._vb = 0.5 * math.log(self.scale)
        self.reset()

    def reset(self) -> None:
        self._n = 0
        self._seen = 0  # values (missing ones included) since the reference froze
        self._sum = 0.0
        self._sumsq = 0.0
        self._missing = 0
        self._mu = 0.0
        self._sd = 1.0
        self._slack = 0.0
        self._m0 = 0.0  # missing-rate LLR increments for missing / present values
        self._m1 = 0.0
        self._s = [0.0] * (2 * len(self.shifts) + 2)

    def _freeze(self) -> None:
        n = self._n - self._missing
        if n >= 2:
            self._mu = self._sum / n
            var = max(self._sumsq / n - self._mu * self._mu, 0.0) * n / (n - 1)
            # One standard error of slack on both estimates: a reference that is slightly off
            # must not make an unchanged stream drift towards the threshold.
            self._sd = (math.sqrt(var) if var > 0 else 1e-12) * (1.0 + 1.0 / math.sqrt(2.0 * n))
            self._slack = 1.0 / math.sqrt(n)
        p0 = (self._missing + 1.0) / (self._n + 2.0)
        p1 = min(max(2.0 * p0, p0 + 0.01), 0.999)
        self._m0 = math.log(p1 / p0)
        self._m1 = math.log((1.0 - p1) / (1.0 - p0))

    def update(self, x: Any) -> bool:
        v = _number(x)
        if self._n < self.warmup:
            self._n += 1
            if v is None:
                self._missing += 1
            else:
                self._sum += v
                self._sumsq += v * v
            if self._n == self.warmup:
                self._freeze()
            return False
        self._seen += 1
        s = self._s
        if v is None:
            s[-1] = max(0.0, s[-1] + self._m0)
            return s[-1] >= self.threshold
        s[-1] = max(0.0, s[-1] + self._m1)
        z = (v - self._mu) / self._sd
        k = len(self.shifts)
        for i, d in enumerate(self.shifts):
            half = d * (0.5 * d + self._slack)
            s[i] = max(0.0, s[i] + d * z - half)
            s[k + i] = max(0.0, s[k + i] - d * z - half)
        s[-2] = max(0.0, s[-2] + self._va * z * z - self._vb)
        return max(s) >= self.threshold

    @property
    def statistic(self) -> float:
        return max(self._s)

    @property
    def threshold(self) -> float:
        return math.log(self.arl)

    @property
    def n(self) -> int:
        return self._n + self._seen

    def details(self) -> dict[str, Any]:
        s = self._s
        return {
            "change": self.names[s.index(max(s))],
            "statistics": dict(zip(self.names, s, strict=True)),
            "reference_mean": self._mu,
            "reference_sd": self._sd,
            "reference_missing": self._missing,
            "reference_n": min(self._n, self.warmup),
            "current_n": self._seen,
            "shifts_sd": list(self.shifts),
            "variance_ratio": self.scale,
        }

    def state(self) -> dict[str, Any]:
        """Parameters and state by name (format 2; format 1 was two positional lists)."""
        return {
            "kind": self.kind,
            "format": SHIFT_FORMAT,
            "params": {
                "warmup": self.warmup,
                "shifts": list(self.shifts),
                "scale": self.scale,
                "arl": self.arl,
            },
            "s": {
                "n": self._n,
                "seen": self._seen,
                "sum": self._sum,
                "sumsq": self._sumsq,
                "missing": self._missing,
                "mean": self._mu,
                "sd": self._sd,
                "missing_llr": self._m0,
                "present_llr": self._m1,
                "slack": self._slack,
            },
            "cusums": dict(zip(self.names, self._s, strict=True)),
        }

    @classmethod
    def from_state(cls, st: dict[str, Any]) -> MeanVarianceCusum:
        """Rebuild from :meth:`state`, or from a format 1 state (positional, no ``format``)."""
        if "format" in st:
            check_format(cls.kind, st, SHIFT_FORMAT)
        p = named_fields(cls.kind, _PARAMS, st["params"])
        d = cls(warmup=p["warmup"], shifts=tuple(p["shifts"]), scale=p["scale"], arl=p["arl"])
        if "format" in st:
            f = named_fields(cls.kind, _FIELDS, st["s"])
            cusums = st["cusums"]
            d._s = [cusums[name] for name in d.names]
        else:  # format 1: the fields, then one statistic per name
            f = named_fields(cls.kind, _FIELDS, st["s"][: len(_FIELDS)])
            d._s = list(st["s"][len(_FIELDS) :])
            if len(d._s) != len(d.names):
                raise ValueError(
                    f"{cls.kind} state holds {len(d._s)} statistics for {len(d.names)} CUSUMs; "
                    "reset the worker's state (new application id) to start from fresh detectors."
                )
        d._n, d._seen, d._sum, d._sumsq = f["n"], f["seen"], f["sum"], f["sumsq"]
        d._missing, d._mu, d._sd = f["missing"], f["mean"], f["sd"]
        d._m0, d._m1, d._slack = f["missing_llr"], f["present_llr"], f["slack"]
        return d
