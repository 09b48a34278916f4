"""``streamproc demo``: the whole loop, live, on a local broker.

1. The seed scenario: metric ``drift`` = 0.02, 0.05, 0.12, 0.03, 0.15 against 0.1; a retrain and
   a deployment follow steps 3 and 5 only.
2. ``streamproc simulate``: an inference server built on the client SDK serves a model on a
   drifting world (STAGGER, concept changes at events 10000 and 20000). The detectors catch
   each change, the retrainer trains and gates a candidate, the server hot-swaps to the
   deployed version, and accuracy recovers.

Part 1's events are stamped with the current time (as a live model's would be), so its plots
and the retrains' wall-clock results share one time axis. Part 2 ends with each decision the
worker made for the simulated model: what fired (statistic against threshold), what the gate
measured, what was deployed.

Everything it starts (broker if none was running, worker) it stops again, and it removes its
temporary folder (worker state, model registry, worker log).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from streamproc.config import Settings
from streamproc.core.topics import (
    DEAD_LETTERS,
    DEPLOYMENTS,
    LABELS,
    METRICS,
    PREDICTIONS,
    RETRAIN_REQUESTS,
    RETRAIN_RESULTS,
)
from streamproc.devkit.harness import TopicReader, WorkerProcess, as_json, free_port, produce
from streamproc.sim.live import LiveRun, simulate, summary_lines
from streamproc.sim.loop import SCHEDULES
from streamproc.sim.scenarios import SEED_STEPS, interactions, rule_model, seed_metrics

SEED_MODEL = "seed-model"
LIVE_MODEL = "sim"
LIVE_STREAM = "stagger"
LIVE_EVENTS = 25_000


def say(msg: str) -> None:
    print(msg, flush=True)


def run_demo(settings: Settings, linger_s: float = 0.0) -> int:
    started_broker = False
    worker: WorkerProcess | None = None
    reader: TopicReader | None = None
    data: Path | None = None
    try:
        bootstrap, started_broker = _broker(settings)
        run_id = f"demo{os.getpid()}-"
        data = Path(tempfile.mkdtemp(prefix="streamproc-demo-"))
        s = settings.with_(topic_prefix=run_id, data_dir=data, web_port=free_port(), partitions=2)
        say(f"== worker: topics prefixed {run_id!r}, state and model registry in {data}")
        worker = WorkerProcess(s, bootstrap, data / "worker.log").start()
        worker.wait_assigned(90)
        say(f"== dashboard: http://127.0.0.1:{s.web_port}/dashboard (model 'sim' in part 2)")
        reader = TopicReader(
            bootstrap,
            [
                s.topic(RETRAIN_REQUESTS),
                s.topic(RETRAIN_RESULTS),
                s.topic(DEPLOYMENTS),
                s.topic(DEAD_LETTERS),
            ],
        )
        t_start = time.monotonic()
        seed_rows = _seed(s, bootstrap, reader)
        say(
            f"\n== part 2: an inference server on the '{LIVE_STREAM}' world: its concept changes "
            "at events 10000 and 20000; labels arrive 50 events late"
        )
        live = simulate(
            s, bootstrap, LIVE_STREAM, events=LIVE_EVENTS, rate=1000.0, say=say, model_id=LIVE_MODEL
        )
        _decisions(s, reader)
        _summary(seed_rows, live, time.monotonic() - t_start)
        if linger_s > 0:
            say(f"\n== the worker and its dashboard stay up for {linger_s:.0f} s (Ctrl-C ends it)")
            time.sleep(linger_s)
        else:
            say(
                "\n== the worker and its dashboard stop now; `streamproc demo --linger 600` keeps "
                "them up 10 minutes after the run, to look at the plots and audit trails"
            )
        ok = [r["deployed"] is not None for r in seed_rows] == [v > 0.1 for v in SEED_STEPS]
        return 0 if ok and live.onset_delays else 1
    finally:
        if reader:
            reader.close()
        if worker:
            worker.stop()
        if started_broker:
            from streamproc.devkit.localkafka import stop_broker

            stop_broker(settings.data_dir / "kafka")
            say("== stopped the local broker")
        if data is not None:
            shutil.rmtree(data, ignore_errors=True)


def _broker(settings: Settings) -> tuple[str, bool]:
    if settings.broker:
        return settings.broker, False
    from streamproc.devkit.localkafka import broker_status, start_broker

    kafka_dir = settings.data_dir / "kafka"
    status = broker_status(kafka_dir)
    if status and status.get("ready"):
        say(f"== using the local broker already running at {status['bootstrap']}")
        return str(status["bootstrap"]), False
    say("== starting a local Apache Kafka broker (first run downloads it from Maven Central)")
    bootstrap = start_broker(data_dir=kafka_dir)
    say(f"== broker ready at {bootstrap}")
    return bootstrap, True


def _records_for(s: Settings, topic: str, model_id: str, reader: TopicReader) -> list[Any]:
    return [r.json() for r in reader.of(s.topic(topic)) if r.key == model_id.encode()]


def _seed(s: Settings, bootstrap: str, reader: TopicReader) -> list[dict[str, Any]]:
    say("\n== part 1: the seed loop (metric 'drift' against threshold 0.1)")
    # Labelled traffic first, so the retrainer has examples to learn from.
    initial = ("v1", rule_model("A", flip=0.2))
    # Now's time: 300 labelled events a second apart, then the five metrics a minute apart,
    # the last one now (the retrains' results and deployments carry the wall clock's time).
    now = time.time()
    warm = list(interactions(SEED_MODEL, lambda i: "A", lambda i: initial, 0, 300, t0=now - 600.0))
    produce(
        bootstrap,
        [(s.topic(PREDICTIONS), SEED_MODEL, as_json(x.prediction)) for x in warm]
        + [(s.topic(LABELS), SEED_MODEL, as_json(x.label)) for x in warm],
    )
    rows = []
    metrics = seed_metrics(SEED_MODEL, t0=now - 60.0 * len(SEED_STEPS))
    for step, metric in enumerate(metrics, start=1):
        before = len(_records_for(s, DEPLOYMENTS, SEED_MODEL, reader))
        produce(bootstrap, [(s.topic(METRICS), SEED_MODEL, as_json(metric))])
        row: dict[str, Any] = {"step": step, "drift": metric["value"], "deployed": None}
        if metric["value"] > 0.1:

            def deployed(r: TopicReader, b: int = before) -> bool:
                return len(_records_for(s, DEPLOYMENTS, SEED_MODEL, r)) > b

            reader.wait_for(
                deployed,
                timeout=60,
                what=f"deployment after step {step}",
            )
            dep = _records_for(s, DEPLOYMENTS, SEED_MODEL, reader)[-1]
            row["deployed"] = dep["version"]
            say(
                f"step {step}: drift={metric['value']:.2f} > 0.1 -> retrain {dep['request_id']} "
                f"-> deployed {dep['version']} (replacing {dep.get('previous_version')})"
            )
        else:
            reader.settle(quiet_s=1.5, timeout=10)
            say(f"step {step}: drift={metric['value']:.2f} <= 0.1 -> no action")
        rows.append(row)
    requests = _records_for(s, RETRAIN_REQUESTS, SEED_MODEL, reader)
    say(
        f"seed loop: {len(requests)} retrain requests, "
        f"{len(_records_for(s, DEPLOYMENTS, SEED_MODEL, reader))} deployments"
    )
    return rows


REFIT_NOTE = (
    "a refit: a model retrained right after an alarm learned from the few examples since the "
    "change; once the new version has answered {n} labels of its own, it is retrained on them"
)


def _decisions(s: Settings, reader: TopicReader) -> None:
    """Each request for the live model: what fired, what the gate measured, what was deployed."""
    reader.settle(quiet_s=2.0, timeout=30)
    results = {r["request_id"]: r for r in _records_for(s, RETRAIN_RESULTS, LIVE_MODEL, reader)}
    deployed = {d.get("request_id"): d for d in _records_for(s, DEPLOYMENTS, LIVE_MODEL, reader)}
    requests = _records_for(s, RETRAIN_REQUESTS, LIVE_MODEL, reader)
    say(f"\n== the worker's decisions for '{LIVE_MODEL}' ({len(requests)} retrain requests)")
    say(
        "(a detector fires when its statistic reaches its threshold; the gate deploys a "
        "candidate only if its error on held-out recent examples is not worse than the "
        "deployed model's)"
    )
    for req in requests:
        why = []
        for r in req["reasons"]:
            if r["signal"] == "refit":
                why.append(REFIT_NOTE.format(n=int(r["threshold"])))
            else:
                why.append(
                    f"{r['signal']} ({r['detector']}): statistic {r['value']:.4g} reached its "
                    f"threshold {r['threshold']:.4g} after {r['n']} samples"
                )
        say(f"request {req['request_id']} against {req['model_version']}: " + "; ".join(why))
        res = results.get(req["request_id"])
        if res is None:
            say("  no result yet (coalesced into a retrain in flight, or still training)")
            continue
        m = res.get("metrics") or {}
        gate = (
            f"gate: holdout error of the candidate {_num(m.get('candidate_error'))} vs the "
            f"deployed model {_num(m.get('current_error'))} on {m.get('holdout', '?')} "
            f"held-out examples ({m.get('gate', 'no verdict recorded')})"
        )
        err = f" ({res['error']})" if res.get("error") else ""
        say(f"  {res['status']}{err}; {gate}")
        dep = deployed.get(req["request_id"])
        if dep is not None:
            say(f"  deployed {dep['version']} (replacing {dep.get('previous_version')})")


def _num(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, int | float) else "not measured"


def _summary(seed_rows: list[dict[str, Any]], live: LiveRun, seconds: float) -> None:
    say("\n== summary")
    say("seed loop   step  drift  action")
    for r in seed_rows:
        action = f"retrained, deployed {r['deployed']}" if r["deployed"] else "-"
        say(f"            {r['step']:>4}  {r['drift']:.2f}   {action}")
    say(
        f"\nsimulated inference server ({live.stream}, concept changes at "
        f"{', '.join(str(d) for d in SCHEDULES[live.stream].drifts if d < LIVE_EVENTS)}):"
    )
    for line in summary_lines(live):
        say("  " + line)
    say(f"\nthe demo took {seconds:.0f} s after the worker was ready")
