"""The garbage collector's young-generation threshold, measured on the core: default vs worker's.

A worker's core allocates many short-lived objects per event (parsed events, outcomes, lists)
while it holds a large, long-lived state (monitors, label-join buffers, training windows).
CPython collects its youngest generation every 700 net allocations by default, and each young
collection that fills generation 1 promotes and re-walks survivors. The worker raises the
threshold (``streamproc.service.worker.GC_THRESHOLD``); this benchmark is the measurement.

Each case runs ``route_record`` over the same batched records (the SDK's batcher, as in
``bench/throughput.py``), in a fresh subprocess per (case, setting), the settings interleaved
round by round so the machine's load falls on both alike; CPU time of the routing loop only.
Cases: ``fleet`` (10,000 models, 50 predictions each, labels for half: every monitor is in
its warm-up) and ``hundred`` (100 models, 5,000 predictions each).

Run: ``.venv/bin/python bench/gc_threshold.py [--rounds 2] [--events 500000]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))

from throughput import label, prediction  # the same events as the throughput bench

from streamproc.client.loggers import _Batcher
from streamproc.core.events import SourceRef
from streamproc.core.router import Monitors, route_record

CASES = {"fleet": 10_000, "hundred": 100}


def batched_records(n: int, models: int) -> list[tuple[str, bytes]]:
    rng = random.Random(7)
    t0 = 1.7e9
    cut = {
        "predictions": _Batcher("prediction", 1000, float("inf"), 1_000_000),
        "labels": _Batcher("label", 1000, float("inf"), 1_000_000),
    }
    out: list[tuple[str, bytes]] = []
    for i in range(n):
        key = f"m{i % models:03d}".encode()
        ts = t0 + i * 0.01
        raw = orjson.dumps(prediction(i, i % models, ts, rng))
        out += [("predictions", v) for _, v, _ in cut["predictions"].add(key, raw, 0.0)]
        if i % 2 == 0:
            raw = orjson.dumps(label(i, i % models, ts + 1.0, rng))
            out += [("labels", v) for _, v, _ in cut["labels"].add(key, raw, 0.0)]
    for topic, b in cut.items():
        for key in list(b._events):
            out += [(topic, v) for _, v, _ in b.cut(key)]
    return out


def one_run(case: str, threshold: int, n: int) -> dict[str, float]:
    """In this process: build the records, set the threshold, time the routing loop."""
    recs = batched_records(n, CASES[case])
    if threshold:
        gc.set_threshold(threshold, *gc.get_threshold()[1:])
    monitors = Monitors(load=lambda _: None, max_snapshot_bytes=900_000)
    events = 0
    start = time.process_time()
    for offset, (topic, raw) in enumerate(recs):
        events += len(route_record(monitors, topic, raw, SourceRef(topic, 0, offset), 0.0))
        if offset % 2000 == 0:
            monitors.drain_dirty()  # a checkpoint's snapshots, as the worker makes them
    monitors.drain_dirty()
    cpu = time.process_time() - start
    return {"events": events, "cpu_s": cpu, "events_per_s": events / cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--events", type=int, default=500_000, help="predictions per case")
    ap.add_argument("--child", nargs=2, metavar=("CASE", "THRESHOLD"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_run(args.child[0], int(args.child[1]), args.events)))
        return
    from streamproc.service.worker import GC_THRESHOLD

    settings = {"default (700)": 0, f"worker ({GC_THRESHOLD:,})": GC_THRESHOLD}
    rates: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for case in CASES:
            for name, threshold in settings.items():
                cmd = [sys.executable, __file__, "--events", str(args.events),
                       "--child", case, str(threshold)]  # fmt: skip
                got = json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)
                rates.setdefault((case, name), []).append(got["events_per_s"])
                rate, cpu = got["events_per_s"], got["cpu_s"]
                print(f"round {r + 1} {case:8s} {name:18s} {rate:>10,.0f} ev/s "
                      f"({got['events']:,} events, {cpu:.1f} s CPU)", flush=True)  # fmt: skip
    print("\ncase      setting             median ev/s (CPU)   vs default")
    for case in CASES:
        base = statistics.median(rates[(case, "default (700)")])
        for name in settings:
            med = statistics.median(rates[(case, name)])
            print(f"{case:9s} {name:18s} {med:>15,.0f}   {med / base:6.2f}x")


if __name__ == "__main__":
    main()
