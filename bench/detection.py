"""Detection benchmark: how fast each method catches a known change, and how often it cries wolf.

Run ``python bench/detection.py [--json FILE] [--quick] [--runs N] [--stationary N]
[--only gaussian|shapes|tcpd]``. It prints a table and the parameters and notes behind it;
``--json FILE`` writes the same rows as a list of objects with exactly the keys ``method``,
``stream``, ``detection_rate``, ``mean_delay``, ``p90_delay``, ``false_alarms_per_million``,
``delay_ratio`` and ``us_per_event`` (null where a figure does not apply); the ``tcpd_*`` rows
have two more, ``f1`` and ``cover``. Everything is generated with numpy from fixed seeds, so a
run is reproducible (timings aside). Single process, wall time from ``time.perf_counter``.

Streams
-------
Each change stream has ``pre`` events (3000) drawn from p0, long enough for every warm-up and
reference window, then ``horizon`` events (20000; 5000 with ``--quick``) from p1:

- ``mean_abrupt_<d>``: numeric feature N(0, 1) -> N(d, 1), d = 0.25, 0.5, 1.0 (sd units);
- ``mean_gradual_<d>``: the same shift reached by a linear ramp over the first 1000 events;
- ``variance_1_to_2``: N(0, 1) -> N(0, 2^2);
- ``error_10_to_15`` / ``error_10_to_20``: labelled predictions whose 0/1 error is
  Bernoulli(0.10) -> Bernoulli(0.15 or 0.20);
- ``categorical_shift``: a categorical feature with frequencies [0.5, 0.3, 0.2] ->
  [0.35, 0.3, 0.35].

Stationary streams (no change at all) measure false alarms and cost: ``stationary_numeric``
(N(0, 1)), ``stationary_error`` (Bernoulli(0.1)) and ``stationary_categorical`` ([0.5, 0.3,
0.2]), 1,000,000 events each (50,000 with ``--quick``). After every alarm on a stationary
stream the method restarts as it would after a retrain, and counting goes on.

Real-shaped streams (default policy only, ``WIDE`` = 10 numeric features x0..x9 per event, all
watched, each drawn independently from the shape): ``stationary_lognormal`` (lognormal(3,
1.5)), ``stationary_student_t3``, ``stationary_pareto`` (Pareto I, shape 1.5: infinite
variance), ``stationary_poisson`` (Poisson(0.2) counts, Python ints), ``stationary_rare_spike``
(0, or 0.1% of the time lognormal(5, 1)), ``stationary_integer`` (0..23, ints),
``stationary_offset_1e9`` (1e9 + N(0, 1)) and ``stationary_constant`` (5.0), 1M events each
(50,000 with ``--quick``; ``--stationary N`` sets both); after each alarm an instant deployment
resumes monitoring. Shifts of feature x0 only (the other nine stay stationary), ``pre`` events
then ``horizon``: ``shift_lognormal_scale_x3`` (x0 * 3: a shift of ln 3 / 1.5 deviations of
log x), ``shift_poisson_0.2_to_0.5`` and ``shift_offset_1e9_plus_3`` (+3 sd), ``--runs`` runs
each, rows as for the change streams (delay ratio against the KL of x0's change).

TCPD series (``tcpd_<series>``, :mod:`tcpd`): the seven annotated change-point series river
bundles, preprocessed as TCPD does, scored with TCPD's F1 (margin 5, annotators combined) and
cover. Methods: ``default`` replays each column as a reported metric (``MetricEvent``, one point
per hour of event time) through a ``ModelMonitor`` with ``DEFAULT_POLICY``, whose
``metric_change`` detector (``rank_cp``) is on for every metric; after each request the gate
"rejects" the candidate (``RetrainResult`` status ``rejected``) so the same version goes on
being watched, as the recorded series goes on. ``river_adwin`` and ``river_page_hinkley``:
river's defaults, two-sided, one detector per column, reset after each alarm. ``never_alarm``:
no change point (TCPD's zero baseline). Multi-column series (Apple: close and volume; Occupancy:
4 sensors; RunLog: pace and distance) get one detector per column and the union of their
change points (TCPD runs its univariate methods only on univariate series; a monitor with
several metrics does this). The scored location of a detection is the change point the method
reports (``since_change`` in its evidence: the first changed point), else the alarm index; the
scores at the alarm index are printed in the notes. ``false_alarms_per_million`` of a TCPD row
is (reported points with no annotated change of any annotator, or the start, within 5) / (points
in the series) * 1e6; the notes print the largest count on one series.

Methods
-------
- ``default``: the project's default policy (``DEFAULT_POLICY``, whatever it is at run time)
  through the real core path: one ``ModelMonitor`` deployed as version v1, fed
  ``PredictionEvent`` objects (numeric stream: ``features={"x": value}``; categorical:
  ``features={"c": category}``; error stream: no features, and a ``LabelEvent`` right after
  each prediction whose label equals the prediction unless the event is an error). The
  prediction itself is a stationary random class ("a" or "b", 50/50, its own fixed seed), so
  the label-free prediction-drift signal runs too, on a distribution that never changes. Event
  time is one second per event. A detection is any ``RetrainRequest``; on a stationary stream
  each alarm is followed by the seed loop's instant deployment (``on_deployment`` with a new
  version) so monitoring resumes; a rollback ``DeploymentEvent`` the monitor emits is applied
  too (and counted, not as an alarm). Which signal fired is reported under the table.
- ``seed_threshold``: the seed's fixed rule "drift > 0.1" (the project's ``threshold``
  detector) applied to the naive drift metric a simple monitor would report every 100 events.
  The first 1000 events after a (re)start form the reference; then, for each non-overlapping
  batch of the last 100 events: numeric ``|mean(batch) - mean(reference)| / sd(reference)``;
  error ``error_rate(batch) - error_rate(reference)`` (signed: only a rise counts);
  categorical the total variation distance ``0.5 * sum |f_batch - f_reference|``. An alarm
  restarts the reference.
- ``river_<kind>``: each river detector registered in ``streamproc.core.detect`` with river's
  default parameters, fed the raw per-event value (x, or the 0/1 error) through
  ``make_detector(kind, direction=...)``. The direction reproduces river's own default:
  ADWIN, KSWIN and PageHinkley (``mode="both"``) fire on changes both ways; HDDM_A/HDDM_W
  (``two_sided_test=False``), DDM, EDDM and FHDDM on rises of the error rate. The binary
  detectors (DDM, EDDM, HDDM_A, HDDM_W, FHDDM) run on error streams only; ADWIN, PageHinkley
  and KSWIN on numeric and error streams; none on categorical streams (they take numbers): those
  combinations are skipped, no row. An alarm is followed by ``reset()``. KSWIN costs ~0.3 ms
  per update, so it runs on fewer events: the first 100,000 events of each stationary stream
  and at most 5 runs per change stream (5,000 and 1 run with ``--quick``).

Figures
-------
- ``detection_rate``: fraction of runs with an alarm after the change and within the horizon.
  An alarm before the change is a false alarm and the run counts as not detected (each run
  stops at its first alarm).
- ``mean_delay``, ``p90_delay``: events after the change up to and including the alarming one
  (for error streams, labelled events), over the detected runs.
- ``false_alarms_per_million``: alarms per 1M events of the matching stationary stream.
- ``delay_ratio``: ``mean_delay / (ln(ARL) / KL)`` with ``ARL = 1e6 / false_alarms_per_million``
  and ``KL = KL(p1 || p0)`` (Gaussian mean shift ``d^2 / 2``; variance change
  ``ln(s0 / s1) + s1^2 / (2 s0^2) - 1/2``; Bernoulli; categorical ``sum p1 ln(p1 / p0)``). No
  detector with that false-alarm rate can average much less than ``ln(ARL) / KL`` (CUSUM is
  optimal), so 1 is the floor. With no false alarm measured, ``ARL`` is the number of
  stationary events measured: the true ARL is larger, so the ratio is then conservative (too
  high). Gradual streams use the final distribution and count delay from the ramp's start, so
  their ratio is indicative only.
- ``us_per_event``: wall time per event on the stationary stream (for ``default`` it includes
  building the event objects; on error streams one event is a prediction plus its label).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from streamproc.core.detect import make_detector
from streamproc.core.detect.river_adapters import RIVER_KINDS
from streamproc.core.events import (
    DeploymentEvent,
    LabelEvent,
    MetricEvent,
    PredictionEvent,
    RetrainRequest,
    RetrainResult,
)
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import DEFAULT_POLICY

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tcpd

KEYS = (
    "method",
    "stream",
    "detection_rate",
    "mean_delay",
    "p90_delay",
    "false_alarms_per_million",
    "delay_ratio",
    "us_per_event",
)
SEED = 20240917
MODEL = "bench-model"
P_ERR0 = 0.10
P_CAT0 = (0.5, 0.3, 0.2)
P_CAT1 = (0.35, 0.3, 0.35)
CATEGORIES = ("red", "green", "blue")
RAMP = 1000  # events over which a gradual shift reaches its final size
SEED_REFERENCE, SEED_BATCH, SEED_LIMIT = 1000, 100, 0.1
# river's own default direction per kind (see the module docstring); others: rises only.
RIVER_BOTH_WAYS = {"adwin", "page_hinkley", "kswin"}
RIVER_BINARY = {"ddm", "eddm", "hddm_a", "hddm_w", "fhddm"}
SLOW_KINDS = {"kswin"}
TCPD_KEYS = (*KEYS, "f1", "cover")
WIDE = 10  # watched numeric features per event on the real-shaped streams
CHUNK = 50_000  # real-shaped streams are generated and fed in chunks of this many events
TCPD_METHODS = ("default", "river_adwin", "river_page_hinkley", "never_alarm")
METRIC_STEP_S = 3600.0  # event time between two points of a TCPD series replayed as metrics


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Config:
    quick: bool
    runs: int
    pre: int = 3000
    horizon: int = 20000
    stationary: int = 1_000_000
    slow_stationary: int = 100_000
    slow_runs: int = 5

    @classmethod
    def make(cls, quick: bool, runs: int | None, stationary: int | None = None) -> Config:
        if quick:
            r = runs if runs is not None else 3
            cfg = cls(True, r, horizon=5000, stationary=50_000, slow_stationary=5000, slow_runs=1)
        else:
            cfg = cls(False, runs if runs is not None else 40)
        if stationary is not None:
            cfg = replace(cfg, stationary=stationary, slow_stationary=min(stationary, 5000))
        return cfg


# --------------------------------------------------------------------------- streams


def kl_gauss_mean(d: float) -> float:
    return d * d / 2.0


def kl_gauss_sd(s0: float, s1: float) -> float:
    return math.log(s0 / s1) + s1 * s1 / (2.0 * s0 * s0) - 0.5


def kl_bernoulli(p1: float, p0: float) -> float:
    return p1 * math.log(p1 / p0) + (1.0 - p1) * math.log((1.0 - p1) / (1.0 - p0))


def kl_categorical(p1: Sequence[float], p0: Sequence[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p1, p0, strict=True) if a > 0)


Maker = Callable[[np.random.Generator, int, int], np.ndarray]


@dataclass(frozen=True)
class Stream:
    name: str
    kind: str  # "numeric", "error" or "categorical": which stationary stream matches it
    kl: float
    make: Maker
    gradual: bool = False


def _mean_shift(d: float, gradual: bool) -> Maker:
    def make(rng: np.random.Generator, pre: int, horizon: int) -> np.ndarray:
        x = rng.standard_normal(pre + horizon)
        if gradual:
            x[pre:] += d * np.minimum(1.0, np.arange(1, horizon + 1) / RAMP)
        else:
            x[pre:] += d
        return x

    return make


def _variance(s1: float) -> Maker:
    def make(rng: np.random.Generator, pre: int, horizon: int) -> np.ndarray:
        x = rng.standard_normal(pre + horizon)
        x[pre:] *= s1
        return x

    return make


def _errors(p1: float) -> Maker:
    def make(rng: np.random.Generator, pre: int, horizon: int) -> np.ndarray:
        p = np.full(pre + horizon, P_ERR0)
        p[pre:] = p1
        return (rng.random(pre + horizon) < p).astype(np.float64)

    return make


def _categories(p1: Sequence[float]) -> Maker:
    def make(rng: np.random.Generator, pre: int, horizon: int) -> np.ndarray:
        a = rng.choice(len(P_CAT0), size=pre, p=P_CAT0)
        b = rng.choice(len(p1), size=horizon, p=p1)
        return np.concatenate([a, b]).astype(np.int64)

    return make


def change_streams() -> list[Stream]:
    out = []
    for gradual in (False, True):
        for d in (0.25, 0.5, 1.0):
            name = f"mean_{'gradual' if gradual else 'abrupt'}_{d}"
            out.append(Stream(name, "numeric", kl_gauss_mean(d), _mean_shift(d, gradual), gradual))
    out.append(Stream("variance_1_to_2", "numeric", kl_gauss_sd(1.0, 2.0), _variance(2.0)))
    for p1 in (0.15, 0.20):
        name = f"error_10_to_{round(p1 * 100)}"
        out.append(Stream(name, "error", kl_bernoulli(p1, P_ERR0), _errors(p1)))
    out.append(
        Stream(
            "categorical_shift", "categorical", kl_categorical(P_CAT1, P_CAT0), _categories(P_CAT1)
        )
    )
    return out


def stationary(kind: str, n: int) -> np.ndarray:
    rng = np.random.default_rng([SEED, 1, ("numeric", "error", "categorical").index(kind)])
    if kind == "numeric":
        return rng.standard_normal(n)
    if kind == "error":
        return (rng.random(n) < P_ERR0).astype(np.float64)
    return rng.choice(len(P_CAT0), size=n, p=P_CAT0).astype(np.int64)


def predictions(n: int, tag: Sequence[int]) -> list[str]:
    """The model's (stationary) predicted classes for the default policy's runs."""
    rng = np.random.default_rng([SEED, 2, *tag])
    return np.where(rng.random(n) < 0.5, "a", "b").tolist()


# --------------------------------------------------------------------------- methods
# Each runner goes through a stream; ``stop_first`` ends it at the first alarm (change runs),
# otherwise it restarts after each alarm and counts (stationary runs). It returns the alarm
# indices, the seconds spent and, for the default policy, what fired.


@dataclass
class Outcome:
    alarms: list[int] = field(default_factory=list)
    seconds: float = 0.0
    fired: list[str] = field(default_factory=list)  # default policy: signal/detector per alarm
    rollbacks: int = 0


def run_river(kind: str, values: list[float], stop_first: bool) -> Outcome:
    direction = "both" if kind in RIVER_BOTH_WAYS else "up"
    det = make_detector(kind, direction=direction)
    update = det.update
    out = Outcome()
    t0 = time.perf_counter()
    for i, v in enumerate(values):
        if update(v):
            out.alarms.append(i)
            if stop_first:
                break
            det.reset()
    out.seconds = time.perf_counter() - t0
    return out


class SeedMetric:
    """The naive drift metric of a simple monitor, reported every ``SEED_BATCH`` events."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.restart()

    def restart(self) -> None:
        self.n = 0
        self.s = 0.0  # running sum (reference, then batch)
        self.sq = 0.0
        self.counts = [0] * len(P_CAT0)
        self.ref_mean = self.ref_sd = 0.0
        self.ref_freq: list[float] = []

    def update(self, v: float) -> float | None:
        """Take one value; the metric when a batch completes, else None."""
        self.n += 1
        n = self.n
        if self.kind == "categorical":
            self.counts[int(v)] += 1
        else:
            self.s += v
            self.sq += v * v
        if n <= SEED_REFERENCE:
            if n == SEED_REFERENCE:
                if self.kind == "categorical":
                    self.ref_freq = [c / n for c in self.counts]
                    self.counts = [0] * len(P_CAT0)
                else:
                    self.ref_mean = self.s / n
                    var = max(self.sq - n * self.ref_mean**2, 0.0) / (n - 1)
                    self.ref_sd = max(math.sqrt(var), 1e-12)
                    self.s = self.sq = 0.0
            return None
        if (n - SEED_REFERENCE) % SEED_BATCH:
            return None
        if self.kind == "categorical":
            tvd = 0.5 * sum(
                abs(c / SEED_BATCH - f) for c, f in zip(self.counts, self.ref_freq, strict=True)
            )
            self.counts = [0] * len(P_CAT0)
            return tvd
        mean = self.s / SEED_BATCH
        self.s = self.sq = 0.0
        if self.kind == "error":
            return mean - self.ref_mean
        return abs(mean - self.ref_mean) / self.ref_sd


def run_seed(kind: str, values: list[float], stop_first: bool) -> Outcome:
    metric = SeedMetric(kind)
    rule = make_detector("threshold", above=SEED_LIMIT)
    out = Outcome()
    t0 = time.perf_counter()
    for i, v in enumerate(values):
        m = metric.update(v)
        if m is not None and rule.update(m):
            out.alarms.append(i)
            if stop_first:
                break
            metric.restart()
            rule.reset()
    out.seconds = time.perf_counter() - t0
    return out


def run_default(kind: str, values: list[Any], preds: list[str], stop_first: bool) -> Outcome:
    mon = ModelMonitor(MODEL, DEFAULT_POLICY)
    deployed = 1
    version = "v1"
    mon.on_deployment(DeploymentEvent("dep-1", MODEL, version, "promote", 0.0))
    out = Outcome()
    other = {"a": "b", "b": "a"}
    t0 = time.perf_counter()
    for i, v in enumerate(values):
        ts = float(i + 1)
        eid = f"e{i}"
        pred = preds[i]
        if kind == "error":
            emitted = [
                mon.on_prediction(PredictionEvent(eid, MODEL, version, ts, pred), None),
                mon.on_label(LabelEvent(eid, MODEL, ts, other[pred] if v else pred), None),
            ]
        else:
            feats = {"x": v} if kind == "numeric" else {"c": CATEGORIES[v]}
            emitted = [
                mon.on_prediction(PredictionEvent(eid, MODEL, version, ts, pred, feats), None)
            ]
        alarm = None
        for e in emitted:
            if isinstance(e, RetrainRequest):
                alarm = alarm or e
            elif isinstance(e, DeploymentEvent):  # a rollback: apply it, as the loop would
                out.rollbacks += 1
                mon.on_deployment(e)
                version = e.version
        if alarm is None:
            continue
        out.alarms.append(i)
        out.fired.append("+".join(f"{r.signal}/{r.detector}" for r in alarm.reasons))
        if stop_first:
            break
        deployed += 1
        new = f"v{deployed}"
        mon.on_deployment(
            DeploymentEvent(
                f"dep-{deployed}",
                MODEL,
                new,
                "promote",
                ts,
                request_id=alarm.request_id,
                previous_version=version,
            )
        )
        version = new
    out.seconds = time.perf_counter() - t0
    return out


@dataclass(frozen=True)
class Method:
    name: str
    kinds: tuple[str, ...]  # stream kinds it applies to
    slow: bool = False


def methods() -> list[Method]:
    out = [
        Method("default", ("numeric", "error", "categorical")),
        Method("seed_threshold", ("numeric", "error", "categorical")),
    ]
    for kind in RIVER_KINDS:
        kinds = ("error",) if kind in RIVER_BINARY else ("numeric", "error")
        out.append(Method(f"river_{kind}", kinds, slow=kind in SLOW_KINDS))
    return out


def run(method: Method, kind: str, values: np.ndarray, tag: Sequence[int], stop_first: bool):
    if method.name == "default":
        return run_default(kind, values.tolist(), predictions(len(values), tag), stop_first)
    if method.name == "seed_threshold":
        return run_seed(kind, values.tolist(), stop_first)
    return run_river(method.name.removeprefix("river_"), values.tolist(), stop_first)


# --------------------------------------------------------------------------- the benchmark


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(float(x), digits)


@dataclass
class Stationary:
    events: int
    alarms: int
    us: float
    fired: Counter[str]
    rollbacks: int

    @property
    def per_million(self) -> float:
        return self.alarms / self.events * 1e6

    @property
    def arl(self) -> float:
        return self.events / self.alarms if self.alarms else float(self.events)


def measure(cfg: Config, log: Callable[[str], None]) -> tuple[list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    streams = change_streams()
    kinds = ("numeric", "error", "categorical")
    base: dict[str, np.ndarray] = {k: stationary(k, cfg.stationary) for k in kinds}
    fired_change: dict[str, Counter[str]] = {}
    stat: dict[tuple[str, str], Stationary] = {}

    for m in methods():
        quiet: list[str] = []  # stationary streams with no false alarm
        early_runs: list[str] = []  # change streams with runs that alarmed before the change
        missed_runs: list[str] = []  # change streams with runs that never alarmed
        for k_i, kind in enumerate(kinds):
            if kind not in m.kinds:
                continue
            n = cfg.slow_stationary if m.slow else cfg.stationary
            out = run(m, kind, base[kind][:n], (0, k_i), stop_first=False)
            st = Stationary(
                n, len(out.alarms), out.seconds / n * 1e6, Counter(out.fired), out.rollbacks
            )
            stat[m.name, kind] = st
            log(
                f"{m.name} stationary_{kind}: {st.alarms} alarms in {n} events, {out.seconds:.1f} s"
            )
            rows.append(
                {
                    "method": m.name,
                    "stream": f"stationary_{kind}",
                    "detection_rate": None,
                    "mean_delay": None,
                    "p90_delay": None,
                    "false_alarms_per_million": _round(st.per_million, 2),
                    "delay_ratio": None,
                    "us_per_event": _round(st.us, 3),
                }
            )
            if st.alarms == 0:
                quiet.append(f"stationary_{kind} ({n:,} events)")
            if st.rollbacks:
                notes.append(f"{m.name} stationary_{kind}: {st.rollbacks} rollbacks applied.")

        for s_i, s in enumerate(streams):
            if s.kind not in m.kinds:
                continue
            runs = min(cfg.runs, cfg.slow_runs) if m.slow else cfg.runs
            delays: list[int] = []
            early = missed = 0
            fired: Counter[str] = Counter()
            t0 = time.perf_counter()
            for r in range(runs):
                rng = np.random.default_rng([SEED, 3, s_i, r])
                values = s.make(rng, cfg.pre, cfg.horizon)
                out = run(m, s.kind, values, (1, s_i, r), stop_first=True)
                if not out.alarms:
                    missed += 1
                    continue
                at = out.alarms[0]
                if at < cfg.pre:
                    early += 1
                    continue
                delays.append(at - cfg.pre + 1)
                fired.update(out.fired)
            took = time.perf_counter() - t0
            log(f"{m.name} {s.name}: {len(delays)}/{runs} detected, {took:.1f} s")
            if early:
                early_runs.append(f"{s.name} {early}/{runs}")
            if missed:
                missed_runs.append(f"{s.name} {missed}/{runs}")
            if m.name == "default":
                fired_change[s.name] = fired
            st = stat[m.name, s.kind]
            mean = float(np.mean(delays)) if delays else None
            p90 = float(np.percentile(delays, 90)) if delays else None
            bound = math.log(st.arl) / s.kl if st.arl > 1.0 else None
            rows.append(
                {
                    "method": m.name,
                    "stream": s.name,
                    "detection_rate": _round(len(delays) / runs, 4),
                    "mean_delay": _round(mean, 1),
                    "p90_delay": _round(p90, 1),
                    "false_alarms_per_million": _round(st.per_million, 2),
                    "delay_ratio": _round(mean / bound, 3) if mean is not None and bound else None,
                    "us_per_event": _round(st.us, 3),
                }
            )
        if quiet:
            notes.append(
                f"{m.name}: no false alarm on {', '.join(quiet)}: ARL taken as the events "
                "measured, so its delay ratios there are conservative."
            )
        if early_runs:
            notes.append(
                f"{m.name}: runs that alarmed before the change (false alarms, counted as not "
                f"detected): {', '.join(early_runs)}."
            )
        if missed_runs:
            notes.append(
                f"{m.name}: runs with no alarm within the horizon: {', '.join(missed_runs)}."
            )

    notes.extend(_default_notes(fired_change, stat))
    return rows, notes


def _default_notes(
    fired_change: dict[str, Counter[str]], stat: dict[tuple[str, str], Stationary]
) -> list[str]:
    out = ["default policy, which signal/detector fired (detected runs; stationary alarms):"]
    for name, c in fired_change.items():
        out.append(f"  {name}: {dict(c) or 'nothing'}")
    for kind in ("numeric", "error", "categorical"):
        st = stat.get(("default", kind))
        if st is not None:
            out.append(f"  stationary_{kind}: {dict(st.fired) or 'nothing'}")
    return out


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "method",
        "stream",
        "det_rate",
        "mean_delay",
        "p90_delay",
        "FA/1M",
        "delay_ratio",
        "us/event",
    )
    cells = [head, *[tuple(_cell(r[k]) for k in KEYS) for r in rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = []
    for j, c in enumerate(cells):
        lines.append(
            "  ".join(
                x.ljust(w) if i < 2 else x.rjust(w)
                for i, (x, w) in enumerate(zip(c, widths, strict=True))
            )
        )
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------- real shapes
# The shapes real features have, WIDE features per event, all watched by the default policy.

Shape = Callable[[np.random.Generator, int], np.ndarray]  # (rng, events) -> (events, WIDE)


def _wide(draw: Callable[[np.random.Generator, tuple[int, int]], np.ndarray]) -> Shape:
    return lambda rng, n: draw(rng, (n, WIDE))


SHAPES: dict[str, Shape] = {
    "lognormal": _wide(lambda r, s: r.lognormal(3.0, 1.5, s)),
    "student_t3": _wide(lambda r, s: r.standard_t(3, s)),
    "pareto": _wide(lambda r, s: r.pareto(1.5, s) + 1.0),
    "poisson": _wide(lambda r, s: r.poisson(0.2, s)),
    "rare_spike": _wide(lambda r, s: np.where(r.random(s) < 1e-3, r.lognormal(5.0, 1.0, s), 0.0)),
    "integer": _wide(lambda r, s: r.integers(0, 24, s)),
    "offset_1e9": _wide(lambda r, s: 1e9 + r.standard_normal(s)),
    "constant": _wide(lambda r, s: np.full(s, 5.0)),
}


@dataclass(frozen=True)
class ShapeShift:
    name: str
    shape: str  # the stationary shape before the change
    kl: float  # KL(p1 || p0) of the changed feature
    # The changed values of feature x0 after the change, from its values and a generator.
    change: Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _poisson_to(lam1: float) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    return lambda col, rng: rng.poisson(lam1, col.size)


def _kl_poisson(l1: float, l0: float) -> float:
    return l1 * math.log(l1 / l0) - l1 + l0


SHAPE_SHIFTS = (
    # log x ~ N(3, 1.5^2): x 3 is a mean shift of ln 3 / 1.5 deviations of log x.
    ShapeShift(
        "shift_lognormal_scale_x3",
        "lognormal",
        kl_gauss_mean(math.log(3) / 1.5),
        lambda c, rng: c * 3.0,
    ),
    ShapeShift("shift_poisson_0.2_to_0.5", "poisson", _kl_poisson(0.5, 0.2), _poisson_to(0.5)),
    ShapeShift("shift_offset_1e9_plus_3", "offset_1e9", kl_gauss_mean(3.0), lambda c, rng: c + 3.0),
)


def _chunks(shape: str, n: int, tag: Sequence[int]) -> Iterable[np.ndarray]:
    rng = np.random.default_rng([SEED, 5, list(SHAPES).index(shape), *tag])
    done = 0
    while done < n:
        size = min(CHUNK, n - done)
        yield SHAPES[shape](rng, size)
        done += size


def run_default_wide(
    chunks: Iterable[np.ndarray], tag: Sequence[int], stop_first: bool, n: int
) -> Outcome:
    """The default policy on events with WIDE numeric features x0..x9 (see run_default)."""
    mon = ModelMonitor(MODEL, DEFAULT_POLICY)
    deployed, version = 1, "v1"
    mon.on_deployment(DeploymentEvent("dep-1", MODEL, version, "promote", 0.0))
    preds = predictions(n, tag)
    names = [f"x{j}" for j in range(WIDE)]
    out = Outcome()
    i = -1
    for block in chunks:
        rows = block.tolist()
        t0 = time.perf_counter()
        for row in rows:
            i += 1
            ts = float(i + 1)
            feats = dict(zip(names, row, strict=True))
            ev = PredictionEvent(f"e{i}", MODEL, version, ts, preds[i], feats)
            e = mon.on_prediction(ev, None)
            if isinstance(e, DeploymentEvent):  # a rollback: apply it, as the loop would
                out.rollbacks += 1
                mon.on_deployment(e)
                version = e.version
                continue
            if e is None:
                continue
            out.alarms.append(i)
            out.fired.append("+".join(f"{r.signal}/{r.detector}" for r in e.reasons))
            if stop_first:
                out.seconds += time.perf_counter() - t0
                return out
            deployed += 1
            new = f"v{deployed}"
            dep = DeploymentEvent(
                f"dep-{deployed}", MODEL, new, "promote", ts, e.request_id, version
            )
            mon.on_deployment(dep)
            version = new
        out.seconds += time.perf_counter() - t0
    return out


def _shifted(s: ShapeShift, pre: int, horizon: int, tag: Sequence[int]) -> Iterable[np.ndarray]:
    values = np.concatenate(list(_chunks(s.shape, pre + horizon, tag)))
    values[pre:, 0] = s.change(values[pre:, 0], np.random.default_rng([SEED, 8, *tag]))
    return [values]


def measure_shapes(
    cfg: Config, log: Callable[[str], None]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Default policy: false alarms on each real shape, then detection of the listed shifts."""
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    stat: dict[str, Stationary] = {}
    n = cfg.stationary
    for k, shape in enumerate(SHAPES):
        out = run_default_wide(_chunks(shape, n, (0, k)), (4, k), stop_first=False, n=n)
        st = Stationary(
            n, len(out.alarms), out.seconds / n * 1e6, Counter(out.fired), out.rollbacks
        )
        stat[shape] = st
        log(f"default stationary_{shape}: {st.alarms} alarms in {n} events, {out.seconds:.1f} s")
        rows.append(_row("default", f"stationary_{shape}", None, [], st, None))
        if st.alarms:
            notes.append(f"default stationary_{shape} ({WIDE} features): {dict(st.fired)}")
    for s_i, s in enumerate(SHAPE_SHIFTS):
        delays: list[int] = []
        early = 0
        for r in range(cfg.runs):
            tag = (1, s_i, r)
            out = run_default_wide(
                _shifted(s, cfg.pre, cfg.horizon, tag), (6, s_i, r), True, cfg.pre + cfg.horizon
            )
            if out.alarms and out.alarms[0] < cfg.pre:
                early += 1
            elif out.alarms:
                delays.append(out.alarms[0] - cfg.pre + 1)
        log(f"default {s.name}: {len(delays)}/{cfg.runs} detected")
        rows.append(_row("default", s.name, cfg.runs, delays, stat[s.shape], s.kl))
        if early:
            notes.append(f"default {s.name}: {early}/{cfg.runs} runs alarmed before the change.")
    return rows, notes


def _row(
    method: str,
    stream: str,
    runs: int | None,
    delays: list[int],
    st: Stationary,
    kl: float | None,
) -> dict[str, Any]:
    mean = float(np.mean(delays)) if delays else None
    bound = math.log(st.arl) / kl if kl and st.arl > 1.0 else None
    return {
        "method": method,
        "stream": stream,
        "detection_rate": None if runs is None else _round(len(delays) / runs, 4),
        "mean_delay": _round(mean, 1),
        "p90_delay": _round(float(np.percentile(delays, 90)), 1) if delays else None,
        "false_alarms_per_million": _round(st.per_million, 2),
        "delay_ratio": _round(mean / bound, 3) if mean is not None and bound else None,
        "us_per_event": _round(st.us, 3),
    }


# --------------------------------------------------------------------------- TCPD series


@dataclass
class Located:
    """Change points a method reports on one series: where it says the change is, and when."""

    located: set[int] = field(default_factory=set)
    alarms: set[int] = field(default_factory=set)
    seconds: float = 0.0


def _where(i: int, details: Any) -> int:
    """The change point a detection reports (its first changed point), else the alarm index."""
    since = details.get("since_change") if details else None
    return max(0, i - int(since) + 1) if since else i


def tcpd_default(series: tcpd.Series) -> Located:
    """Replay each column as a reported metric (one point per hour) through the monitor."""
    mon = ModelMonitor(MODEL, DEFAULT_POLICY)
    mon.on_deployment(DeploymentEvent("dep-1", MODEL, "v1", "promote", 0.0))
    out = Located()
    t0 = time.perf_counter()
    for i in range(series.n):
        ts = (i + 1) * METRIC_STEP_S
        for name, col in zip(series.columns, series.values, strict=True):
            req = mon.on_metric(MetricEvent(MODEL, ts, name, col[i]), None)
            if not isinstance(req, RetrainRequest):
                continue
            out.alarms.add(i)
            out.located.add(_where(i, req.reasons[0].details))
            # The gate turns the retrain down: the model stays, its metrics go on as recorded.
            mon.on_result(RetrainResult(req.request_id, MODEL, "rejected", ts))
    out.seconds = time.perf_counter() - t0
    return out


def tcpd_river(kind: str, series: tcpd.Series) -> Located:
    """river's defaults (two-sided), one detector per column; an alarm resets it."""
    out = Located()
    t0 = time.perf_counter()
    for col in series.values:
        det = make_detector(kind, direction="both")
        for i, v in enumerate(col):
            if det.update(v):
                out.alarms.add(i)
                out.located.add(_where(i, det.details()))
                det.reset()
    out.seconds = time.perf_counter() - t0
    return out


def tcpd_method(method: str, series: tcpd.Series) -> Located:
    if method == "default":
        return tcpd_default(series)
    if method == "never_alarm":
        return Located()
    return tcpd_river(method.removeprefix("river_"), series)


def false_alarms(points: set[int], series: tcpd.Series) -> int:
    """Reported points with no annotated change (of any annotator, or the start) within 5."""
    truth = {0}.union(*(set(v) for v in series.annotations.values()))
    return sum(1 for p in points if not any(abs(p - t) <= tcpd.MARGIN for t in truth))


def measure_tcpd(log: Callable[[str], None]) -> tuple[list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    at_alarm: dict[str, list[tuple[float, float]]] = {m: [] for m in TCPD_METHODS}
    worst: dict[str, tuple[int, str]] = {}
    for name in tcpd.SERIES:
        series = tcpd.load(name)
        for method in TCPD_METHODS:
            got = tcpd_method(method, series)
            fa = false_alarms(got.located, series)
            if fa > worst.get(method, (-1, ""))[0]:
                worst[method] = (fa, name)
            notes = series.annotations
            at_alarm[method].append(
                (tcpd.f1_score(notes, got.alarms), tcpd.cover_score(notes, got.alarms, series.n))
            )
            rows.append(
                {
                    "method": method,
                    "stream": f"tcpd_{name}",
                    "detection_rate": None,
                    "mean_delay": None,
                    "p90_delay": None,
                    "false_alarms_per_million": _round(fa / series.n * 1e6, 2),
                    "delay_ratio": None,
                    "us_per_event": _round(got.seconds / series.n * 1e6, 3),
                    "f1": _round(tcpd.f1_score(notes, got.located), 4),
                    "cover": _round(tcpd.cover_score(notes, got.located, series.n), 4),
                }
            )
        log(f"tcpd_{name}: {series.n} points x {len(series.columns)} columns scored")
    out = [
        "TCPD series, scored at the alarm index instead of the reported change point "
        "(mean F1 / mean cover):"
    ]
    for method, pairs in at_alarm.items():
        f1s, covers = zip(*pairs, strict=True)
        out.append(
            f"  {method}: {np.mean(f1s):.3f} / {np.mean(covers):.3f}; most false alarms on one "
            f"series: {worst[method][0]} ({worst[method][1]})"
        )
    return rows, out


def tcpd_table(rows: list[dict[str, Any]]) -> str:
    """F1 / cover per series (rows) and method (columns), means last."""
    cells = {(r["method"], r["stream"]): r for r in rows if r["stream"].startswith("tcpd_")}
    if not cells:
        return ""
    methods = [m for m in TCPD_METHODS if any(k[0] == m for k in cells)]
    streams = [f"tcpd_{n}" for n in tcpd.SERIES]
    head = ["series", *(f"{m} f1/cover" for m in methods)]
    body = []
    for s in streams:
        body.append(
            [s, *(f"{cells[m, s]['f1']:.3f} / {cells[m, s]['cover']:.3f}" for m in methods)]
        )
    body.append(
        [
            "mean",
            *(
                f"{np.mean([cells[m, s]['f1'] for s in streams]):.3f} / "
                f"{np.mean([cells[m, s]['cover'] for s in streams]):.3f}"
                for m in methods
            ),
        ]
    )
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def feature_updates_per_second(n: int) -> float:
    """Throughput of the label-free path: predictions with 10 numeric features."""
    rng = np.random.default_rng([SEED, 9])
    values = rng.normal(size=(n, 10)).tolist()
    events = [
        PredictionEvent(f"f{i}", MODEL, "v1", float(i), "a", {f"x{j}": v[j] for j in range(10)})
        for i, v in enumerate(values)
    ]
    mon = ModelMonitor(MODEL, DEFAULT_POLICY)
    t0 = time.perf_counter()
    for ev in events:
        mon.on_prediction(ev, None)
    return n * 10 / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the rows to this file as JSON")
    ap.add_argument("--quick", action="store_true", help="small streams (a smoke test)")
    ap.add_argument("--runs", type=int, help="runs per change stream (40; 3 with --quick)")
    ap.add_argument(
        "--stationary", type=int, help="events per stationary stream (1M; 50,000 with --quick)"
    )
    ap.add_argument(
        "--only",
        choices=("all", "gaussian", "shapes", "tcpd"),
        default="all",
        help="run one part: the Gaussian/error/categorical streams, the real-shaped streams "
        "(default policy, 10 features), or the TCPD series (default: all)",
    )
    args = ap.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        ap.error("--runs must be >= 1")
    if args.stationary is not None and args.stationary < 1000:
        ap.error("--stationary must be >= 1000")
    cfg = Config.make(args.quick, args.runs, args.stationary)
    started = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {msg}", file=sys.stderr, flush=True)

    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    parts = (
        ("gaussian", lambda: measure(cfg, log)),
        ("shapes", lambda: measure_shapes(cfg, log)),
        ("tcpd", lambda: measure_tcpd(log)),
    )
    for part, fn in parts:
        if args.only in ("all", part):
            more_rows, more_notes = fn()
            rows += more_rows
            notes += more_notes
    feature_rate = feature_updates_per_second(20_000 if cfg.quick else 100_000)
    elapsed = time.perf_counter() - started

    print(
        "Detection benchmark"
        + (" (QUICK mode: small streams, figures are rough)" if cfg.quick else "")
    )
    print(
        f"parameters: {cfg.runs} runs per change stream, change after {cfg.pre} events, horizon "
        f"{cfg.horizon} events after it, stationary streams of {cfg.stationary:,} events per "
        f"signal kind; KSWIN: {cfg.slow_stationary:,} stationary events and at most "
        f"{cfg.slow_runs} runs per change stream (~0.3 ms per update); seed {SEED}; "
        f"policy {DEFAULT_POLICY.name!r}."
    )
    print()
    print(table(rows))
    if any(r["stream"].startswith("tcpd_") for r in rows):
        print()
        print("TCPD change-point series (F1 / cover, margin 5, annotators combined as in TCPD):")
        print(tcpd_table(rows))
    print()
    print(
        f"data-drift path: {feature_rate:,.0f} feature-updates per second on one core "
        "(ModelMonitor.on_prediction, 10 numeric features with the default detectors; event "
        "objects built beforehand)"
    )
    print()
    print("Notes:")
    general = [
        "delays are in events after the change, the alarming one included (error streams: "
        "labelled events); '-' is null: the figure does not apply (no detection, or a "
        "stationary row).",
        "false alarms per 1M and us/event of a change-stream row come from the matching "
        "stationary stream (numeric, error or categorical) of the same method.",
        "delay_ratio = mean_delay / (ln(ARL)/KL), ARL = 1e6 / (false alarms per 1M); with no "
        "false alarm measured, ARL = stationary events measured, so the ratio is conservative. "
        "A ratio below 1 does not beat the bound: the bound is asymptotic (large ARL), and the "
        "mean is over detected runs only (runs that alarmed before the change are left out).",
        "gradual streams: KL of the final distribution, delay from the ramp's start: the ratio "
        "is indicative only.",
        "river_*: river's default parameters and default direction (ADWIN, KSWIN, PageHinkley "
        "two-sided; HDDM_A/HDDM_W, DDM, EDDM, FHDDM rises only), raw per-event values; binary "
        "detectors (ddm, eddm, hddm_a, hddm_w, fhddm) run on error streams only, none runs on "
        "categorical streams: those rows are skipped (absent), not null.",
        f"river_kswin runs on {cfg.slow_stationary:,} stationary events and "
        f"{min(cfg.runs, cfg.slow_runs)} runs per change stream because it costs ~0.3 ms per "
        "update.",
        "seed_threshold: 'drift > 0.1' on a naive metric every 100 events against a 1000-event "
        "reference (numeric |mean diff|/sd, error-rate rise, categorical total variation).",
        "default: the real ModelMonitor with DEFAULT_POLICY; predictions are a stationary "
        "random class (a/b), one event per second of event time; after a stationary alarm an "
        "instant deployment of a new version resumes monitoring. us/event includes building "
        "the event objects; on error streams an event is a prediction plus its label.",
        "us/event is wall time as measured in this single process (time.perf_counter).",
    ]
    if cfg.quick:
        general.insert(
            0,
            f"QUICK mode: stationary streams of {cfg.stationary:,} events (not 1M), horizon "
            f"{cfg.horizon}; false-alarm rates and ratios are rough.",
        )
    for n in [*general, *notes]:
        print(n if n.startswith("  ") else f"- {n}")
    print(f"\ntotal runtime: {elapsed:.1f} s")

    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        print(f"wrote {len(rows)} rows to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
