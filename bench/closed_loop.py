"""Closed-loop benchmark: does the loop keep a model accurate while the world drifts?

    python bench/closed_loop.py [--json FILE] [--seeds N] [--quick] [--no-broker]

Offline, for speed, each world of ``streamproc.simulation`` (drift schedules documented there)
runs through the real core (``ModelMonitor``, ``retrain``: training, gate, registry) with each
strategy: ``never``, ``periodic`` (every 2000 events), ``seed_threshold``, ``default`` (the default
policy) and ``oracle`` (knows each true drift, retrains with the same machinery as soon as the
trainer has 50 post-drift labels: the ceiling for detection). Labels arrive 50 events late; one
event is one second of event time. Figures are means over seeds.

Then once through the real broker: a local Kafka, a real worker process, and
``streamproc simulate`` (the SDK-based inference server) on the ``stagger`` world, reporting the
same figures with the delay from each drift onset to the server's hot swap in events and in
wall-clock seconds.

The JSON is a list of rows with the keys ``strategy``, ``stream``, ``accuracy``, ``retrains``,
``mean_delay_events`` (null where no drift was followed by a deployment).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamproc.config import Settings
from streamproc.simulation import SCHEDULES, STRATEGIES, closed_loop

ABRUPT = ("sea", "stagger")


def offline(seeds: int, length: int | None) -> tuple[list[dict], dict]:
    rows, extra = [], {}
    for stream in SCHEDULES:
        for strategy in STRATEGIES:
            runs = [closed_loop(SCHEDULES[stream], strategy, seed=s, length=length)
                    for s in range(1, seeds + 1)]  # fmt: skip
            delays = [d for r in runs for d in r.onset_delays]
            stationary = sum(r.stationary_events for r in runs)
            false = sum(r.false_retrains for r in runs)
            rows.append({
                "strategy": strategy,
                "stream": stream,
                "accuracy": round(statistics.mean(r.accuracy for r in runs), 4),
                "retrains": round(statistics.mean(r.retrains for r in runs), 2),
                "mean_delay_events": round(statistics.mean(delays), 1) if delays else None,
            })  # fmt: skip
            extra[(strategy, stream)] = {
                "false_per_100k": (1e5 * false / stationary) if stationary else None,
                "deployments": statistics.mean(len(r.deployments) for r in runs),
            }
    return rows, extra


def live(events: int) -> dict:
    """One run of the stagger world through a real broker and worker."""
    from streamproc.localkafka import LocalKafka
    from streamproc.simulate import simulate
    from streamproc.testing import WorkerProcess, free_port

    work = Path(tempfile.mkdtemp(prefix="streamproc-bench-"))
    broker = LocalKafka()
    bootstrap = broker.start(data_dir=work / "kafka")
    settings = Settings(broker=bootstrap, topic_prefix="bench-", partitions=2, data_dir=work,
                        web_port=free_port())  # fmt: skip
    worker = WorkerProcess(settings, bootstrap, work / "worker.log").start()
    try:
        worker.wait_assigned(90)
        run = simulate(settings, bootstrap, "stagger", events=events, rate=1000.0)
    finally:
        worker.stop()
        broker.stop()
    return {
        "strategy": "default",
        "stream": "stagger (live broker)",
        "accuracy": round(run.accuracy, 4),
        "retrains": len(run.swaps),
        "mean_delay_events": round(statistics.mean(d for d, _ in run.onset_delays), 1)
        if run.onset_delays
        else None,
        "_delay_seconds": [round(s, 2) for _, s in run.onset_delays],
    }


def show(rows: list[dict], extra: dict) -> None:
    print(f"{'stream':<24} {'strategy':<15} {'accuracy':>8} {'retrains':>8} "
          f"{'delay(events)':>13} {'delay(s)':>9} {'false/100k':>10}")  # fmt: skip
    for r in rows:
        e = extra.get((r["strategy"], r["stream"]), {})
        delay = r["mean_delay_events"]
        secs = r.get("_delay_seconds")
        secs_s = (
            "/".join(f"{s:.1f}" for s in secs)
            if secs
            else ("-" if delay is None else f"{delay:.0f}")
        )
        fa = e.get("false_per_100k")
        print(f"{r['stream']:<24} {r['strategy']:<15} {r['accuracy']:8.4f} {r['retrains']:8} "
              f"{'-' if delay is None else f'{delay:.0f}':>13} {secs_s:>9} "
              f"{'-' if fa is None else f'{fa:.1f}':>10}")  # fmt: skip


def targets(rows: list[dict], extra: dict) -> None:
    by = {(r["strategy"], r["stream"]): r for r in rows}
    print("\ntargets (abrupt-drift worlds):")
    for stream in ABRUPT:
        d, o, p = by[("default", stream)], by[("oracle", stream)], by[("periodic", stream)]
        gap = 100 * (d["accuracy"] - o["accuracy"])
        print(f"  {stream}: default {d['accuracy']:.4f} vs oracle {o['accuracy']:.4f} "
              f"(default - oracle = {gap:+.2f} points; target >= -1)")  # fmt: skip
        print(
            f"  {stream}: default {d['accuracy']:.4f} with {d['retrains']} retrains vs periodic "
            f"{p['accuracy']:.4f} with {p['retrains']} (target: >= periodic, <= 1/3 retrains)"
        )
    fa = [v["false_per_100k"] for (s, _), v in extra.items()
          if s == "default" and v["false_per_100k"] is not None]  # fmt: skip
    print(
        f"  default retrains in stationary stretches: max {max(fa):.2f} per 100k events "
        "(target <= 1)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 seed, 12k events, short live run")
    ap.add_argument("--no-broker", action="store_true", help="skip the live broker run")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    t0 = time.perf_counter()
    seeds = 1 if args.quick else args.seeds
    length = 12_000 if args.quick else None
    print(f"offline: {seeds} seed(s), {length or 40000} events per world, label lag 50")
    rows, extra = offline(seeds, length)
    if not args.no_broker:
        rows.append(live(12_000 if args.quick else 25_000))
    show(rows, extra)
    if not args.quick:
        targets(rows, extra)
    print(f"\n{time.perf_counter() - t0:.0f} s")
    if args.json:
        clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
        Path(args.json).write_text(json.dumps(clean, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
