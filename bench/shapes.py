"""False alarms of the default policy on real-shaped stationary data, delays, and cost.

Run ``python bench/shapes.py [--events N] [--runs R] [--only NAME,...] [--json FILE]``.

Three parts, all through the real core path (``ModelMonitor.on_prediction`` with the default
policy, the prediction a stationary "a"/"b" class, one second of event time per event):

1. **False alarms per 1M events per model**: each stationary shape below feeds a model with 10
   watched features (10 independent streams of that shape), ``--events`` events (1M by
   default). After each retrain request the model is "redeployed" (fresh detectors), as the
   loop would, and counting goes on. Shapes: ``gaussian``, ``lognormal`` (mu 3, sigma 1.5),
   ``student_t3``, ``pareto`` (alpha 1.5), ``poisson`` (0.2), ``rare_spike`` (0, or 1000 with
   probability 1e-3), ``integer`` (hours 0..23), ``few_values`` (3 values), ``alternating``
   (1e8 + i % 2), ``offset_1e9`` (1e9 + N(0, 1)), ``magnitude_1e200`` (1e200 * lognormal),
   ``constant`` (42.0), ``missing_keys`` (a Gaussian feature whose key is left out of 10% of
   records), and categorical ``categorical`` ([0.5, 0.3, 0.2]) and ``categorical_zipf``
   (200 categories, Zipf weights: beyond the 64-cell cap).
2. **Delays** (``--runs`` runs, one watched feature, change after 3000 events): Gaussian mean
   +0.5 and +1 sd, variance x4 (sd 1 -> 2), categorical [0.5, 0.3, 0.2] -> [0.35, 0.3, 0.35],
   lognormal scale x3, Poisson 0.2 -> 0.5, +3 on the 1e9 offset. The ratio is the mean delay
   over ``ln(1e6) / KL(p1 || p0)`` (the bound at one false alarm per 1M values; for the
   non-Gaussian shifts KL is not computed and the ratio is left out).
3. **Cost**: microseconds per event for 10 Gaussian features, the default policy against the
   same policy with the previous numeric default (``mean_variance_cusum``), interleaved in one
   run so machine load hits both alike.

4. ``--only replica``: part 1 for the numeric shapes, computed with numpy instead of the
   monitor (the same reference, randomized ranks, splitmix64 draws, increment tables and
   CUSUMs as ``RankCusum``, with the monitor's ``ln(arl * 10)`` threshold and a fresh reference
   for every feature after each alarm): identical alarms, minutes instead of hours.

Everything is seeded (numpy ``default_rng``); timings aside, a run is reproducible.
``python bench/shapes.py`` runs parts 1-3 (about 1 h on a quiet 2-core machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamproc.core.events import DeploymentEvent, PredictionEvent, RetrainRequest
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import DEFAULT_POLICY, DriftRule, Policy

MODEL = "m"
FEATURES = 10
SEED = 20261130
PRE = 3000
HORIZON = 5000
CAT0 = [0.5, 0.3, 0.2]
CAT1 = [0.35, 0.3, 0.35]

Gen = Callable[[np.random.Generator, int], np.ndarray]


def _zipf_cats(rng: np.random.Generator, n: int) -> np.ndarray:
    w = 1.0 / np.arange(1, 201)
    idx = rng.choice(200, size=n, p=w / w.sum())
    return np.array([f"c{i}" for i in range(200)], dtype=object)[idx]


SHAPES: dict[str, Gen] = {
    "gaussian": lambda r, n: r.standard_normal(n),
    "lognormal": lambda r, n: r.lognormal(3.0, 1.5, n),
    "student_t3": lambda r, n: r.standard_t(3, n),
    "pareto": lambda r, n: r.pareto(1.5, n) + 1.0,
    "poisson": lambda r, n: r.poisson(0.2, n).astype(np.int64),
    "rare_spike": lambda r, n: np.where(r.random(n) < 1e-3, 1000.0, 0.0),
    "integer": lambda r, n: r.integers(0, 24, n),
    "few_values": lambda r, n: r.choice([1.5, 2.5, 7.0], size=n, p=[0.7, 0.2, 0.1]),
    "alternating": lambda r, n: 1e8 + (np.arange(n) % 2),
    "offset_1e9": lambda r, n: 1e9 + r.standard_normal(n),
    "magnitude_1e200": lambda r, n: 1e200 * r.lognormal(0.0, 1.0, n),
    "constant": lambda r, n: np.full(n, 42.0),
    "missing_keys": lambda r, n: np.where(r.random(n) < 0.1, np.nan, r.standard_normal(n)),
    "categorical": lambda r, n: np.array(["a", "b", "c"], dtype=object)[
        r.choice(3, size=n, p=CAT0)
    ],
    "categorical_zipf": _zipf_cats,
}


def _records(shape: str, n: int, chunk: int = 50_000) -> Iterator[list[dict[str, Any]]]:
    """Feature dicts in chunks; ``missing_keys`` leaves the key out where the value is NaN."""
    rng = np.random.default_rng([SEED, list(SHAPES).index(shape)])
    gen = SHAPES[shape]
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        cols = [gen(rng, m).tolist() for _ in range(FEATURES)]
        if shape == "alternating":  # i % 2 must continue across chunks
            cols = [[1e8 + ((start + i) % 2) for i in range(m)] for _ in range(FEATURES)]
        names = [f"x{j}" for j in range(FEATURES)]
        if shape == "missing_keys":
            yield [
                {k: v for k, v in zip(names, row, strict=True) if v == v}
                for row in zip(*cols, strict=True)
            ]
        else:
            yield [dict(zip(names, row, strict=True)) for row in zip(*cols, strict=True)]


def _preds(n: int, tag: int) -> list[str]:
    rng = np.random.default_rng([SEED, 99, tag])
    return np.where(rng.random(n) < 0.5, "a", "b").tolist()


class Runner:
    """A monitor on the default (or given) policy, redeployed after each request."""

    def __init__(self, policy: Policy = DEFAULT_POLICY) -> None:
        self.mon = ModelMonitor(MODEL, policy)
        self.version = 1
        self.mon.on_deployment(DeploymentEvent("dep-1", MODEL, "v1", "promote", 0.0))
        self.requests: list[RetrainRequest] = []
        self.i = 0

    def feed(self, feats: dict[str, Any], pred: str) -> RetrainRequest | None:
        self.i += 1
        ts = float(self.i)
        ev = PredictionEvent(f"e{self.i}", MODEL, f"v{self.version}", ts, pred, feats)
        out = self.mon.on_prediction(ev, None)
        if not isinstance(out, RetrainRequest):
            return None
        self.requests.append(out)
        self.version += 1
        dep = DeploymentEvent(
            f"dep-{self.version}", MODEL, f"v{self.version}", "promote", ts, out.request_id
        )
        self.mon.on_deployment(dep)
        return out


def false_alarms(shape: str, n: int) -> dict[str, Any]:
    run = Runner()
    preds = _preds(n, 1)
    t0 = time.perf_counter()
    k = 0
    for chunk in _records(shape, n):
        for feats in chunk:
            run.feed(feats, preds[k])
            k += 1
    secs = time.perf_counter() - t0
    fired = sorted(
        {f"{r.signal}/{r.details.get('change', '')}" for q in run.requests for r in q.reasons}
    )
    return {
        "shape": shape,
        "events": n,
        "requests": len(run.requests),
        "false_alarms_per_million": round(len(run.requests) * 1e6 / n, 3),
        "fired": fired,
        "missing_keys": run.mon.counts.get("missing_keys", 0),
        "seconds": round(secs, 1),
    }


# --------------------------------------------------------------------------- numpy replica
# The same computation as RankCusum (reference, randomized ranks with splitmix64 on uint64
# arrays, the module's increment tables, CUSUM by the closed form), vectorized: a check that a
# batch path can reproduce the detector, and a way to measure 10 features x 1M values per shape
# in seconds. An alarm on any feature redeploys the model: every feature takes a new reference.

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix_unit(seed: int, counter: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = counter.astype(np.uint64) + np.uint64(
            (seed * 0xD1B54A32D192ED03 + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        )
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def replica_first_alarm(values: np.ndarray, h: float, det: Any) -> int | None:
    """Index (after the warm-up) of the first alarm of a RankCusum fed ``values``, or None."""
    from streamproc.core.detect.ranks import _llr

    w = det.warmup
    ref = np.sort(values[:w])
    x = values[w:]
    lo = np.searchsorted(ref, x, side="left")
    ties = np.searchsorted(ref, x, side="right") - lo
    u = _splitmix_unit(det.seed, np.arange(len(x)))
    t = np.minimum((u * (ties + 1)).astype(np.int64), ties)
    r = np.where(ties > 0, lo + t, lo)
    k = det.slack / math.sqrt(w)
    tables = [(_llr(w, d, 1.0), d * k * max(1.0, 2.0 * d)) for d in det.shifts]
    tables += [(_llr(w, -d, 1.0), d * k * max(1.0, 2.0 * d)) for d in det.shifts]
    tables.append((_llr(w, 0.0, math.sqrt(det.scale)), det.variance_slack))
    first = None
    for table, slack in tables:
        c = np.cumsum(np.asarray(table)[r] - slack)
        s = c - np.minimum(np.minimum.accumulate(c), 0.0)
        hit = np.flatnonzero(s >= h)
        if len(hit) and (first is None or hit[0] < first):
            first = int(hit[0])
    return first


def replica_false_alarms(shape: str, n: int) -> dict[str, Any]:
    from streamproc.core.detect.ranks import RankCusum

    spec = dict(DEFAULT_POLICY.drift.numeric if DEFAULT_POLICY.drift else ())
    spec.pop("detector", None)
    det = RankCusum(**spec)
    h = math.log(det.arl * FEATURES)  # the monitor's Bonferroni threshold for 10 features
    rng = np.random.default_rng([SEED, 50, list(SHAPES).index(shape)])
    cols = [np.asarray(SHAPES[shape](rng, n), dtype=np.float64) for _ in range(FEATURES)]
    if shape == "alternating":
        cols = [1e8 + (np.arange(n) % 2.0) for _ in range(FEATURES)]
    alarms = 0
    start = 0
    while start + det.warmup < n:
        hits = [replica_first_alarm(c[start:], h, det) for c in cols]
        found = [a for a in hits if a is not None]
        if not found:
            break
        alarms += 1
        start += det.warmup + min(found) + 1
    return {
        "shape": shape,
        "events": n,
        "features": FEATURES,
        "requests": alarms,
        "false_alarms_per_million": round(alarms * 1e6 / n, 3),
        "path": "numpy replica",
    }


@dataclass(frozen=True)
class Change:
    name: str
    pre: Gen
    post: Gen
    kl: float | None


def _gauss(mu: float, sd: float) -> Gen:
    return lambda r, n: r.normal(mu, sd, n)


def _cats(p: list[float]) -> Gen:
    return lambda r, n: np.array(["a", "b", "c"], dtype=object)[r.choice(3, size=n, p=p)]


CHANGES = [
    Change("mean_+0.5sd", _gauss(0, 1), _gauss(0.5, 1), 0.125),
    Change("mean_+1sd", _gauss(0, 1), _gauss(1, 1), 0.5),
    Change("variance_x4", _gauss(0, 1), _gauss(0, 2), math.log(0.5) + 2.0 - 0.5),
    Change(
        "categorical_shift",
        _cats(CAT0),
        _cats(CAT1),
        sum(p * math.log(p / q) for p, q in zip(CAT1, CAT0, strict=True)),
    ),
    Change(
        "lognormal_scale_x3",
        lambda r, n: r.lognormal(3, 1.5, n),
        lambda r, n: 3 * r.lognormal(3, 1.5, n),
        (math.log(3) / 1.5) ** 2 / 2,
    ),
    Change(
        "poisson_0.2_to_0.5",
        lambda r, n: r.poisson(0.2, n).astype(np.int64),
        lambda r, n: r.poisson(0.5, n).astype(np.int64),
        0.5 * math.log(0.5 / 0.2) - 0.5 + 0.2,
    ),
    Change(
        "offset_1e9_plus_3",
        lambda r, n: 1e9 + r.standard_normal(n),
        lambda r, n: 1e9 + 3 + r.standard_normal(n),
        4.5,
    ),
]


def delays(ch: Change, runs: int) -> dict[str, Any]:
    found: list[int] = []
    early = 0
    for k in range(runs):
        rng = np.random.default_rng([SEED, 7, k, CHANGES.index(ch)])
        values = ch.pre(rng, PRE).tolist() + ch.post(rng, HORIZON).tolist()
        preds = _preds(len(values), 100 + k)
        run = Runner()
        for i, v in enumerate(values):
            if run.feed({"x": v}, preds[i]) is not None:
                if i < PRE:
                    early += 1
                else:
                    found.append(i - PRE + 1)
                break
    mean = sum(found) / len(found) if found else None
    bound = math.log(1e6) / ch.kl if ch.kl else None
    return {
        "change": ch.name,
        "runs": runs,
        "detected": len(found),
        "alarms_before_change": early,
        "mean_delay": round(mean, 1) if mean is not None else None,
        "p90_delay": int(np.percentile(found, 90)) if found else None,
        "bound": round(bound, 1) if bound else None,
        "ratio": round(mean / bound, 2) if mean and bound else None,
    }


def cost(n: int, rounds: int = 5) -> dict[str, float]:
    """us/event for 10 Gaussian features: new default against the previous numeric default."""
    old_rule = dataclasses.replace(
        DriftRule(), numeric=(("arl", 1e6), ("detector", "mean_variance_cusum"), ("warmup", 1000))
    )
    policies = {"default": DEFAULT_POLICY, "previous": Policy(drift=old_rule)}
    rng = np.random.default_rng([SEED, 5])
    values = rng.standard_normal((n, FEATURES)).tolist()
    events = [
        PredictionEvent(f"f{i}", MODEL, "v1", float(i), "a", {f"x{j}": v[j] for j in range(10)})
        for i, v in enumerate(values)
    ]
    warm = 2000  # past every warm-up: the steady state is what runs for months
    best = {k: math.inf for k in policies}
    for _ in range(rounds):
        for name, pol in policies.items():
            mon = ModelMonitor(MODEL, pol)
            for ev in events[:warm]:
                mon.on_prediction(ev, None)
            t0 = time.perf_counter()
            for ev in events[warm:]:
                mon.on_prediction(ev, None)
            best[name] = min(best[name], (time.perf_counter() - t0) / (n - warm) * 1e6)
    return {
        "us_per_event_default": round(best["default"], 2),
        "us_per_event_previous": round(best["previous"], 2),
        "ratio": round(best["default"] / best["previous"], 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--cost-events", type=int, default=20_000)
    ap.add_argument("--only", default="", help="comma-separated parts: alarms,delays,cost,replica")
    ap.add_argument("--shapes", default="", help="comma-separated shapes (default: all)")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    parts = set(args.only.split(",")) if args.only else {"alarms", "delays", "cost"}
    out: dict[str, Any] = {}
    if "replica" in parts:
        out["replica"] = []
        numeric = [
            k for k in SHAPES if k not in ("missing_keys", "categorical", "categorical_zipf")
        ]
        for sname in args.shapes.split(",") if args.shapes else numeric:
            row = replica_false_alarms(sname, args.events)
            out["replica"].append(row)
            print(json.dumps(row), flush=True)
    if "alarms" in parts:
        shapes = args.shapes.split(",") if args.shapes else list(SHAPES)
        out["false_alarms"] = []
        for s in shapes:
            row = false_alarms(s, args.events)
            out["false_alarms"].append(row)
            print(json.dumps(row), flush=True)
    if "delays" in parts:
        out["delays"] = []
        for ch in CHANGES:
            row = delays(ch, args.runs)
            out["delays"].append(row)
            print(json.dumps(row), flush=True)
    if "cost" in parts:
        out["cost"] = cost(args.cost_events)
        print(json.dumps(out["cost"]), flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
