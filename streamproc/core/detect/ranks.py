"""Distribution-free shift detection for one numeric value: CUSUMs on normal scores of ranks.

Why ranks. A CUSUM tuned to Gaussian increments is calibrated only for Gaussian data: on
lognormal, Student-t or Poisson values its false-alarm rate depends on the tails (the notes
measured 16-58 alarms per 200k values on Laplace, t(5) and lognormal data, and a request after
about 1,000 values on lognormal(3, 1.5)). Here every value is first mapped to its *randomized
rank* against a frozen reference sample, and the rank to a normal score; under no change the
scores are N(0, 1)-like whatever the data's shape, discrete, constant or huge, so the same
CUSUMs hold their false-alarm rate on every stream.

Method
------
1. Reference: the first ``warmup`` present values after a (re)start, sorted (``W`` of them).
2. Randomized rank (the randomized probability integral transform of Brockwell 2007; Czado,
   Gneiting & Held 2009, applied to the reference's empirical CDF): with ``lo`` the reference
   values below ``x`` and ``hi`` those at most ``x``,

   ``R = lo + floor(V * (hi - lo + 1))``,   ``V = splitmix64(seed, counter) / 2**64``,

   where ``counter`` counts values since the reference froze. If ``x`` and the reference are
   exchangeable (no change), ``R`` is uniform on {0, ..., W} exactly, for continuous data, ties,
   few distinct values and constants alike. ``V`` comes from a counter-based generator
   (Steele, Lea & Flood 2014, splitmix64), so a live run, a replay and a vectorized batch path
   draw the same ``V`` for the same value.
3. Rank likelihood ratios. The ranks' bins are the normal quantile bins
   ``[q_R, q_{R+1})``, ``q_r = Phi^{-1}(r / (W + 1))``: under no change each has probability
   ``1/(W+1)``. Each alternative is a Gaussian change of the normal scores, ``N(mu, sd)``
   instead of ``N(0, 1)``, and its increment is the exact log-likelihood ratio of the rank,
   ``inc(R) = ln((W + 1) * P_{N(mu, sd)}(q_R <= Z < q_{R+1}))``, from a table built once per
   (W, mu, sd). Because ``sum_R P_0(R) exp(inc(R)) = 1`` exactly, exp(CUSUM) is a likelihood
   ratio under no change whatever the data's shape, and the ``ln(arl)`` threshold holds
   (Lorden 1971). On Gaussian data the rank keeps nearly all the information of the value:
   a mean change is caught as fast as by the Gaussian CUSUM; the values beyond the
   reference's extremes lose their magnitude, which costs some speed on a variance change
   (rank-space KL of a 4x variance is 0.65 nats against 0.81 for the raw values, W = 1000).
   The variance CUSUM is tuned to a 4x variance.
4. CUSUMs (Page 1954): mean up and down by each ``d`` in ``shifts`` (``N(+-d, 1)``, minus a
   slack, below), variance up by ``scale`` (``N(0, sqrt(scale))``), and the missing rate
   up (Bernoulli). Recursion, for each statistic ``S_t = max(0, S_{t-1} + inc(R_t))``:
   per-event increments and one recursion, so a batch path can compute ``R`` (numpy
   ``searchsorted`` and splitmix64 on uint64 arrays), the increments (table lookups) and the
   CUSUM by the closed form of /work/shared/notes/detectors.md.

Reference error. Given a finite reference, ``R`` is uniform only on average over references:
the bins' true probabilities are the spacings of ``W`` uniform order statistics, so the mean
normal score is off by about ``1/sqrt(W)``, which adds a drift to the mean CUSUMs. The slack
``k = slack / sqrt(W)`` (``slack = 1.5`` by default, doubled at ``d = 1``) absorbs it. The
largest errors are in the extreme bins (their probabilities are single spacings), which the
1 sd and variance tables weigh most; ``variance_slack`` covers the variance CUSUM. Measured on
100 references x 1M uniform values (the same for every continuous shape) at ``ln(1e6)``, false
alarms per 1M values: mean 0.5 sd up/down 0.01 each, 1 sd up/down about 0.02 each, variance
0.12. A model with 10 features runs each at the monitor's ``ln(arl * 10)``; per-model figures
per shape are in the README (``bench/shapes.py``).

Limits. Only the first ``warmup`` present values form the reference (``W`` floats; the tables
are shared by all detectors with the same parameters); a change inside the warm-up is not
seen. Ranks ignore how far beyond the reference's extremes a value lies, so a variance change
costs more than with the Gaussian CUSUM (see 3.). Values are compared, never summed, so
magnitude and offset do not matter; +-inf, NaN, None and non-numbers count as missing.

Examples
--------
>>> import random
>>> rng = random.Random(3)
>>> det = RankCusum(warmup=500, arl=1e6)
>>> any(det.update(rng.lognormvariate(3.0, 1.5)) for _ in range(20000))
False
>>> delay = next(i for i in range(5000) if det.update(3.0 * rng.lognormvariate(3.0, 1.5)))
>>> delay < 150, det.details()["change"].startswith("mean_up")
(True, True)
>>> const = RankCusum(warmup=100)
>>> any(const.update(1e200) for _ in range(5000))  # a constant is no change
False
>>> RankCusum.from_state(det.state()).state() == det.state()
True
"""

from __future__ import annotations

import bisect
import functools
import math
from array import array
from statistics import NormalDist
from typing import Any, ClassVar

from streamproc.core.stateformat import check_format

__all__ = ["RANKS_FORMAT", "RankCusum", "splitmix64_unit"]

RANKS_FORMAT = 1
_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_SEED_MIX = 0xD1B54A32D192ED03
_INV_CDF = NormalDist().inv_cdf


def splitmix64_unit(seed: int, counter: int) -> float:
    """A uniform number in (0, 1) from ``(seed, counter)``: splitmix64, counter-based.

    ``key = counter + seed * 0xD1B54A32D192ED03 (mod 2**64)``, then splitmix64's finalizer
    (Steele, Lea & Flood 2014) of ``key + 0x9E3779B97F4A7C15``; the top 53 bits, centred.
    The same (seed, counter) always gives the same number, on any path.

    >>> splitmix64_unit(0, 0) == splitmix64_unit(0, 0), 0.0 < splitmix64_unit(7, 12) < 1.0
    (True, True)
    """
    z = (counter + seed * _SEED_MIX + _GOLDEN) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    z ^= z >> 31
    return ((z >> 11) + 0.5) * (1.0 / 9007199254740992.0)


def _number(x: object) -> float | None:
    if x is None or isinstance(x, bool | str):
        return None
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return v if math.isfinite(v) else None


_CDF = NormalDist().cdf


def _mass(a: float, b: float, mu: float, sd: float) -> float:
    """P(a <= X < b) for X ~ N(mu, sd), without cancellation in the upper tail."""
    lo, hi = (a - mu) / sd, (b - mu) / sd
    if lo > 0.0:
        return _CDF(-lo) - _CDF(-hi)
    return _CDF(hi) - _CDF(lo)


@functools.lru_cache(maxsize=8)
def _edges(w: int) -> tuple[float, ...]:
    """The W + 2 edges of the normal quantile bins of the ranks 0..W."""
    inner = [_INV_CDF(r / (w + 1)) for r in range(1, w + 1)]
    return (-math.inf, *inner, math.inf)


@functools.lru_cache(maxsize=64)
def _llr(w: int, mu: float, sd: float) -> tuple[float, ...]:
    """``ln((W + 1) P_{N(mu, sd)}(bin R))`` for R = 0..W: the rank's exact log-likelihood ratio."""
    e = _edges(w)
    return tuple(
        math.log(max(_mass(e[r], e[r + 1], mu, sd), 1e-300) * (w + 1)) for r in range(w + 1)
    )


@functools.lru_cache(maxsize=8)
def _scores(w: int) -> tuple[float, ...]:
    """Normal score of each rank: ``E[Z | Z in bin R]`` (evidence only)."""
    e = _edges(w)
    pdf = NormalDist().pdf
    dens = [0.0, *(pdf(q) for q in e[1:-1]), 0.0]
    return tuple((dens[r] - dens[r + 1]) * (w + 1) for r in range(w + 1))


@functools.lru_cache(maxsize=64)
def _increments(
    tables: tuple[tuple[float, ...], ...], slacks: tuple[float, ...]
) -> tuple[tuple[float, ...], ...]:
    """Each table minus its slack; one object for all detectors with the same parameters."""
    return tuple(
        tuple(v - slack for v in table) for table, slack in zip(tables, slacks, strict=True)
    )


class RankCusum:
    """Mean, variance and missing-rate CUSUMs on normal scores of randomized ranks.

    Parameters
    ----------
    warmup
        Present values that form the reference sample (``W``); missing ones during the
        warm-up are counted for the missing-rate reference.
    shifts
        Mean shifts of the normal scores (in sd) the two-sided mean CUSUMs are tuned to.
    scale
        Variance ratio of the normal scores the variance CUSUM is tuned to.
    arl
        Average run length between false alarms, per statistic, in values.
    slack
        Reference-error slack of the mean CUSUMs, in units of ``1/sqrt(W)``: a CUSUM tuned
        to ``d`` pays ``d * max(1, 2 d) * slack / sqrt(W)`` per value.
    seed
        Key of the counter-based tie-breaking generator.
    direction
        ``"both"``: mean shifts up and down and the variance up; ``"up"``: only the mean-up
        CUSUMs (and the missing rate), e.g. for a regression error, where a fall is no reason
        to retrain (a fall spreads the ranks, which the variance CUSUM would take as a change).
    variance_slack
        Subtracted from each variance increment (nats): the variance CUSUM's likelihood ratio
        is steep in the tail bins, whose true probability in a finite reference varies most.
        0.03 halves its false alarms (measured) for ~5% more delay on a 4x variance; a larger
        slack or a milder ``scale`` (3, 0.05: a third of the false alarms) costs the 4x
        variance more than the 1.5x-the-bound target allows.

    Raises
    ------
    ValueError
        On a warm-up below 10, non-finite or non-positive shifts, ``scale <= 1``, ``arl <= 1``.
    """

    kind: ClassVar[str] = "rank_cusum"

    def __init__(
        self,
        warmup: int = 1000,
        shifts: tuple[float, ...] | list[float] = (0.5, 1.0),
        scale: float = 4.0,
        arl: float = 1e6,
        slack: float = 1.5,
        seed: int = 0,
        variance_slack: float = 0.03,
        direction: str = "both",
    ) -> None:
        if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 10:
            raise ValueError(f"{self.kind}: warmup must be a whole number >= 10, got {warmup!r}.")
        shifts = tuple(float(d) for d in shifts)
        ok = all(math.isfinite(v) for v in (*shifts, scale, arl, slack, variance_slack))
        if not (ok and len(shifts) >= 1 and min(shifts) > 0 and scale > 1 and arl > 1):
            raise ValueError(
                f"{self.kind} needs finite shifts > 0, scale > 1, arl > 1 and a finite slack."
            )
        if direction not in ("both", "up"):
            raise ValueError(f"{self.kind}: direction must be 'both' or 'up', got {direction!r}.")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"{self.kind}: seed must be a whole number, got {seed!r}.")
        self.warmup = warmup
        self.shifts = shifts
        self.scale = float(scale)
        self.arl = float(arl)
        self.slack = float(slack)
        self.variance_slack = float(variance_slack)
        self.direction = direction
        self.seed = seed
        self.names = (
            *(f"mean_up_{d:g}sd" for d in shifts),
            *(f"mean_down_{d:g}sd" for d in shifts if direction == "both"),
            *(("variance_up",) if direction == "both" else ()),
            "missing_up",
        )
        self._h = math.log(self.arl)
        self.reset()

    def reset(self) -> None:
        self._n = 0  # values seen during the warm-up, missing ones included
        self._missing = 0
        # The reference: a list while it fills, then sorted into a compact array of doubles
        # (a quarter of a list's memory; numpy reads it without a copy).
        self._ref: list[float] | array[float] = []
        # Increment tables, one per CUSUM but missing (mean ups, mean downs, variance), set
        # when the reference freezes; empty before.
        self._tables: list[tuple[float, ...]] = []
        self._slacks: list[float] = []
        # Each table minus its slack: the increment a rank adds, one addition per update (the
        # batch path, streamproc.core.detect.rankbatch, adds the same numbers in the same order).
        self._incs: tuple[tuple[float, ...], ...] = ()
        self._seen = 0  # values since the reference froze: the generator's counter
        self._cur_missing = 0  # missing values since the reference froze
        self._m0 = 0.0
        self._m1 = 0.0
        self._s = [0.0] * len(self.names)
        self._last_rank = -1

    # ------------------------------------------------------------------ reference

    def _freeze(self) -> None:
        self._ref = array("d", sorted(self._ref))
        w = len(self._ref)
        k = self.slack / math.sqrt(w)
        ups = [_llr(w, d, 1.0) for d in self.shifts]
        downs = [_llr(w, -d, 1.0) for d in self.shifts] if self.direction == "both" else []
        var = [_llr(w, 0.0, math.sqrt(self.scale))] if self.direction == "both" else []
        self._tables = [*ups, *downs, *var]
        # A larger shift's table weighs the extreme bins more, and their probabilities vary
        # most between references: its slack grows with d (measured: at d = 1, twice the
        # slack cut its false alarms six-fold).
        sides = 2 if self.direction == "both" else 1
        self._slacks = [d * k * max(1.0, 2.0 * d) for d in self.shifts] * sides + [
            self.variance_slack
        ] * (sides - 1)
        self._incs = _increments(tuple(self._tables), tuple(self._slacks))
        p0 = (self._missing + 1.0) / (self._n + 2.0)
        p1 = min(max(2.0 * p0, p0 + 0.01), 0.999)
        self._m0 = math.log(p1 / p0)
        self._m1 = math.log((1.0 - p1) / (1.0 - p0))

    @property
    def ready(self) -> bool:
        """True once the reference has frozen."""
        return bool(self._tables)

    def rank(self, v: float) -> int:
        """The randomized rank (0..W) of a present value in the reference (counter += 1).

        Raises
        ------
        RuntimeError
            Before the reference has frozen.
        """
        if not self._tables:
            raise RuntimeError(f"{self.kind}: no reference yet; feed {self.warmup} values first.")
        ref = self._ref
        lo = bisect.bisect_left(ref, v)
        counter = self._seen
        self._seen = counter + 1
        if lo < len(ref) and ref[lo] == v:  # ties: a uniform position among them
            ties = bisect.bisect_right(ref, v, lo) - lo
            t = int(splitmix64_unit(self.seed, counter) * (ties + 1))
            return lo + (t if t <= ties else ties)
        return lo

    def score(self, v: float) -> float:
        """The normal score of a present value, ``E[Z | Z in its rank's bin]`` (counter += 1)."""
        return _scores(len(self._ref))[self.rank(v)]

    # ------------------------------------------------------------------ updates

    def update(self, x: Any) -> bool:
        v = _number(x)
        s = self._s
        if not self._tables:
            self._n += 1
            if v is None:
                self._missing += 1
            else:
                self._ref.append(v)
                if len(self._ref) >= self.warmup:
                    self._freeze()
            return False
        if v is None:
            self._seen += 1
            self._cur_missing += 1
            m = s[-1] + self._m0
            s[-1] = m if m > 0.0 else 0.0
            return m >= self._h
        r = self.rank(v)
        self._last_rank = r
        m = s[-1] + self._m1
        s[-1] = m if m > 0.0 else 0.0
        fired = False
        h = self._h
        for i, inc in enumerate(self._incs):
            c = s[i] + inc[r]
            if c > 0.0:
                s[i] = c
                if c >= h:
                    fired = True
            else:
                s[i] = 0.0
        return fired

    # ------------------------------------------------------------------ evidence

    @property
    def statistic(self) -> float:
        return max(self._s)

    @property
    def threshold(self) -> float:
        return self._h

    @property
    def n(self) -> int:
        return self._n + self._seen

    def _last_score(self) -> float | None:
        if self._last_rank < 0:
            return None
        return _scores(len(self._ref))[self._last_rank]

    def details(self) -> dict[str, Any]:
        s = self._s
        ref = self._ref
        d: dict[str, Any] = {
            "change": self.names[s.index(max(s))],
            "statistics": dict(zip(self.names, s, strict=True)),
            "reference_n": len(ref),
            "reference_missing": self._missing,
            "current_n": self._seen,
            "current_missing": self._cur_missing,
            "last_score": self._last_score(),
            "shifts_sd": list(self.shifts),
            "variance_ratio": self.scale,
        }
        if self._tables and ref:
            w = len(ref)
            d["reference_quantiles"] = {
                q: ref[min(int(p * w), w - 1)]
                for q, p in (("p01", 0.01), ("p50", 0.5), ("p99", 0.99))
            }
        return d

    # ------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "format": RANKS_FORMAT,
            "params": {
                "warmup": self.warmup,
                "shifts": list(self.shifts),
                "scale": self.scale,
                "arl": self.arl,
                "slack": self.slack,
                "seed": self.seed,
                "direction": self.direction,
                "variance_slack": self.variance_slack,
            },
            "n": self._n,
            "missing": self._missing,
            "seen": self._seen,
            "current_missing": self._cur_missing,
            "frozen": bool(self._tables),
            "reference": list(self._ref),
            "cusums": list(self._s),
            "last_rank": self._last_rank,
        }

    @classmethod
    def from_state(cls, st: dict[str, Any]) -> RankCusum:
        check_format(cls.kind, st, RANKS_FORMAT)
        d = cls(**st["params"])
        d._n, d._missing, d._seen = st["n"], st["missing"], st["seen"]
        d._cur_missing = st["current_missing"]
        d._ref = [float(v) for v in st["reference"]]
        if st["frozen"]:
            d._freeze()
        d._s = [float(v) for v in st["cusums"]]
        d._last_rank = int(st["last_rank"])
        return d
