"""A wide model's state: snapshot size and evictions under the policy's byte bounds (offline).

    python bench/state_size.py [--features 300] [--predictions 2000] [--labels] [--watch GLOB]

One :class:`~streamproc.core.monitor.ModelMonitor` with the default policy (or drift watching
only ``--watch``) gets N predictions of F Gaussian numeric features (``feature_00000`` ...), then,
with ``--labels``, a label for each. It prints the time taken, the snapshot's size, what waits
in the label join, the training window, the evictions for bytes, and the size of the snapshot
:func:`~streamproc.core.statesize.fit_snapshot` would write under the worker's limit.
"""

from __future__ import annotations

import argparse
import logging
import random
import time

from streamproc.core.events import LabelEvent, PredictionEvent
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import load_policy_text
from streamproc.core.statesize import fit_snapshot

LIMIT = 8 * 1024 * 1024 - 64 * 1024  # streamproc.service.agents.SNAPSHOT_LIMIT


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", type=int, default=300)
    ap.add_argument("--predictions", type=int, default=2000)
    ap.add_argument("--labels", action="store_true", help="then a label for every prediction")
    ap.add_argument("--watch", help='drift.features glob (default: every feature, "*")')
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    text = f'[default.drift]\nfeatures = ["{args.watch}"]\n' if args.watch else ""
    mon = ModelMonitor("wide", load_policy_text(text).default)
    rng = random.Random(1)
    names = [f"feature_{k:05d}" for k in range(args.features)]
    t0 = time.perf_counter()
    for i in range(args.predictions):
        row = {n: rng.gauss(0.0, 1.0) for n in names}
        mon.on_prediction(PredictionEvent(f"e{i}", "wide", "v1", float(i), 1, row), None)
    t1 = time.perf_counter()
    if args.labels:
        for i in range(args.predictions):
            mon.on_label(LabelEvent(f"e{i}", "wide", float(args.predictions + i), 1), None)
    t2 = time.perf_counter()
    size = len(mon.snapshot())
    join, window = mon.join, mon.examples
    print(
        f"{args.features} features x {args.predictions} predictions"
        f"{' + labels' if args.labels else ''}, drift on {args.watch or 'every feature'}"
    )
    print(f"  predictions {t1 - t0:.1f} s, labels {t2 - t1:.1f} s")
    print(f"  snapshot {size:,} bytes")
    print(
        f"  join: {join.pending} waiting, {join.nbytes:,} bytes, "
        f"evicted for bytes {join.counts['evicted_for_bytes']}, joined {join.counts['joined']}"
    )
    print(
        f"  training window: {len(window)} examples, {window.nbytes:,} bytes, "
        f"evicted for bytes {window.evicted_for_bytes}"
    )
    t3 = time.perf_counter()
    fitted = fit_snapshot(mon, LIMIT)
    print(
        f"  written under the {LIMIT:,} byte limit: "
        f"{'not written' if fitted is None else f'{len(fitted):,} bytes'} "
        f"({time.perf_counter() - t3:.2f} s)"
    )


if __name__ == "__main__":
    main()
