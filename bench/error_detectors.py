"""False alarms and delays of the default policy's error detectors (issue 11, item 3).

Run: ``python bench/error_detectors.py [--runs 20] [--length 50000] [--json FILE]``.

- 0/1 errors (classification): the policy's error detector (``DEFAULT_POLICY.error`` for the
  task ``classification``: the Bernoulli CUSUM) on stationary streams at base error rates 0%,
  1%, 10%, 50%, 90%, 95%, 97% and 100%. Each rate runs ``runs`` streams of ``length`` labels
  with independent seeds, so the reference error rate is estimated ``runs`` times; the detector
  restarts (a new warm-up) after each alarm, as in the monitor. Figures are alarms per 1M.
- Regression errors: the detector the policy makes for the task ``regression`` (the policy's
  numeric drift detector, rises only), on stationary absolute errors of heavy-tailed,
  skewed and discrete residuals, and on a constant error.
- Delay for a rise of the error rate from 10% to 20% after 3000 labels, against the lower
  bound ln(ARL) / KL(0.2 || 0.1) (about 311 labels at ARL 1e6).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamproc.core.detect import Detector
from streamproc.core.policy import DEFAULT_POLICY

RATES = (0.0, 0.01, 0.1, 0.5, 0.9, 0.95, 0.97, 1.0)


def classification_detector() -> Detector:
    assert DEFAULT_POLICY.error is not None
    return DEFAULT_POLICY.error.make("classification")


def regression_detector() -> Detector:
    assert DEFAULT_POLICY.error is not None and DEFAULT_POLICY.drift is not None
    return DEFAULT_POLICY.error.make("regression", DEFAULT_POLICY.drift.numeric)


def alarms(make: Callable[[], Detector], draw: Callable[[random.Random], float], runs: int,
           length: int, seed: int) -> int:  # fmt: skip
    total = 0
    for r in range(runs):
        rng = random.Random(seed * 1_000_003 + r)
        det = make()
        for _ in range(length):
            if det.update(draw(rng)):
                total += 1
                det.reset()
    return total


def residual_shapes() -> dict[str, Callable[[random.Random], float]]:
    """Absolute errors |y - y_hat| of regressions with these residual shapes."""
    return {
        "abs(N(0,1))": lambda r: abs(r.gauss(0.0, 1.0)),
        "abs(t(2)), infinite variance": lambda r: abs(r.gauss(0.0, 1.0) / math.sqrt(
            r.gammavariate(1.0, 2.0) / 2.0)),
        "lognormal(0, 1.5)": lambda r: r.lognormvariate(0.0, 1.5),
        "Pareto(1.5) x 1000": lambda r: 1000.0 * r.paretovariate(1.5),
        "abs(Poisson(3) - 3), integers": lambda r: float(abs(_poisson(r, 3.0) - 3)),
        "constant 1000 (whole-unit prices)": lambda r: 1000.0,
    }  # fmt: skip


def _poisson(r: random.Random, lam: float) -> int:
    k, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= r.random()
        if p <= limit:
            return k
        k += 1


def delays(runs: int, change_at: int = 3000, horizon: int = 20000) -> dict[str, float]:
    found, early = [], 0
    for r in range(runs):
        rng = random.Random(77 + r)
        det = classification_detector()
        for i in range(change_at + horizon):
            p = 0.1 if i < change_at else 0.2
            if det.update(1.0 if rng.random() < p else 0.0):
                if i < change_at:
                    early += 1
                    det.reset()
                    continue
                found.append(i - change_at + 1)
                break
    kl = 0.2 * math.log(0.2 / 0.1) + 0.8 * math.log(0.8 / 0.9)
    bound = math.log(1e6) / kl
    found.sort()
    return {
        "runs": runs,
        "detected": len(found) / runs,
        "mean_delay": statistics.fmean(found),
        "p90_delay": found[int(0.9 * (len(found) - 1))],
        "bound": bound,
        "ratio": statistics.fmean(found) / bound,
        "false_alarms_before_change": early,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="independent streams per row")
    ap.add_argument("--length", type=int, default=50_000, help="labels per stream")
    ap.add_argument("--delay-runs", type=int, default=200)
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = ap.parse_args()
    per = args.runs * args.length
    rows: list[dict[str, object]] = []
    started = time.perf_counter()
    print(f"stationary streams: {args.runs} x {args.length} labels per row; alarms per 1M")
    print(f"{'0/1 errors, base rate':<40} {'alarms':>7} {'per 1M':>8}")
    for p in RATES:
        n = alarms(classification_detector, lambda r, p=p: 1.0 if r.random() < p else 0.0,
                   args.runs, args.length, seed=int(p * 1000))  # fmt: skip
        rows.append({"signal": "0/1 error", "base": p, "alarms": n, "per_1M": n * 1e6 / per})
        print(f"{p:<40.0%} {n:>7} {n * 1e6 / per:>8.2f}", flush=True)
    kind = dict(DEFAULT_POLICY.drift.numeric)["detector"] if DEFAULT_POLICY.drift else "?"
    print(f"{'regression |error| (' + kind + ')':<40} {'alarms':>7} {'per 1M':>8}")
    for name, draw in residual_shapes().items():
        n = alarms(regression_detector, draw, args.runs, args.length, seed=len(name))
        rows.append({"signal": f"regression {kind}", "base": name, "alarms": n,
                     "per_1M": n * 1e6 / per})  # fmt: skip
        print(f"{name:<40} {n:>7} {n * 1e6 / per:>8.2f}", flush=True)
    d = delays(args.delay_runs)
    rows.append({"signal": "0/1 error, 10% -> 20% after 3000", **d})
    print(
        f"10% -> 20%: detected {d['detected']:.0%} of {d['runs']}, mean delay "
        f"{d['mean_delay']:.0f} (p90 {d['p90_delay']:.0f}) labels, bound ln(1e6)/KL = "
        f"{d['bound']:.0f}, ratio {d['ratio']:.2f}; alarms before the change: "
        f"{d['false_alarms_before_change']}"
    )
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
