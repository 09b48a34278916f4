"""``streamproc demo``: the whole loop, live, on a local broker.

1. The seed scenario: metric ``drift`` = 0.02, 0.05, 0.12, 0.03, 0.15 against 0.1; a retrain and
   a deployment follow steps 3 and 5 only.
2. An inference server (here, in this process) serves a model while the world changes under it
   at a known moment; the error detector catches it, the retrainer trains and gates a candidate,
   the server hot-swaps to the deployed version, and accuracy recovers.

Everything it starts (broker if none was running, worker) it stops again.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamproc.config import Settings
from streamproc.core.registry import FileRegistry
from streamproc.scenarios import SEED_STEPS, T0, interactions, rule_model, seed_metrics
from streamproc.testing import TopicReader, WorkerProcess, as_json, free_port, produce

SEED_MODEL = "seed-model"
LIVE_MODEL = "shop-ranker"
CHANGE_AT = 1500
TOTAL = 4500
CHUNK = 100


def say(msg: str) -> None:
    print(msg, flush=True)


@dataclass
class Served:
    """The inference server's current model, swapped atomically on a deployment."""

    version: str
    predict: Any
    swaps: list[tuple[int, str]] = field(default_factory=list)


def run_demo(settings: Settings) -> int:
    started_broker = False
    worker: WorkerProcess | None = None
    reader: TopicReader | None = None
    try:
        bootstrap, started_broker = _broker(settings)
        run_id = f"demo{os.getpid()}-"
        data = Path(tempfile.mkdtemp(prefix="streamproc-demo-"))
        s = settings.with_(topic_prefix=run_id, data_dir=data, web_port=free_port(), partitions=2)
        say(f"== worker: topics prefixed {run_id!r}, state and model registry in {data}")
        worker = WorkerProcess(s, bootstrap, data / "worker.log").start()
        worker.wait_assigned(90)
        reader = TopicReader(
            bootstrap,
            [
                s.topic("retrain-requests"),
                s.topic("retrain-results"),
                s.topic("deployments"),
                s.topic("dead-letters"),
            ],
        )
        t_start = time.monotonic()
        seed_rows = _seed(s, bootstrap, reader)
        live = _concept_change(s, bootstrap, reader, FileRegistry(s.registry_dir))
        _summary(seed_rows, live, time.monotonic() - t_start)
        ok = [r["deployed"] is not None for r in seed_rows] == [v > 0.1 for v in SEED_STEPS]
        return 0 if ok and live.detected_at is not None else 1
    finally:
        if reader:
            reader.close()
        if worker:
            worker.stop()
        if started_broker:
            from streamproc.localkafka import stop_broker

            stop_broker(settings.data_dir / "kafka")
            say("== stopped the local broker")


def _broker(settings: Settings) -> tuple[str, bool]:
    if settings.broker:
        return settings.broker, False
    from streamproc.localkafka import broker_status, start_broker

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
    warm = list(interactions(SEED_MODEL, lambda i: "A", lambda i: initial, 0, 300))
    produce(
        bootstrap,
        [(s.topic("predictions"), SEED_MODEL, as_json(x.prediction)) for x in warm]
        + [(s.topic("labels"), SEED_MODEL, as_json(x.label)) for x in warm],
    )
    rows = []
    for step, metric in enumerate(seed_metrics(SEED_MODEL), start=1):
        before = len(_records_for(s, "deployments", SEED_MODEL, reader))
        produce(bootstrap, [(s.topic("metrics"), SEED_MODEL, as_json(metric))])
        row: dict[str, Any] = {"step": step, "drift": metric["value"], "deployed": None}
        if metric["value"] > 0.1:
            reader.wait_for(
                lambda r, b=before: len(_records_for(s, "deployments", SEED_MODEL, r)) > b,
                timeout=60,
                what=f"deployment after step {step}",
            )
            dep = _records_for(s, "deployments", SEED_MODEL, reader)[-1]
            row["deployed"] = dep["version"]
            say(
                f"step {step}: drift={metric['value']:.2f} > 0.1 -> retrain {dep['request_id']} "
                f"-> deployed {dep['version']} (replacing {dep.get('previous_version')})"
            )
        else:
            reader.settle(quiet_s=1.5, timeout=10)
            say(f"step {step}: drift={metric['value']:.2f} <= 0.1 -> no action")
        rows.append(row)
    requests = _records_for(s, "retrain-requests", SEED_MODEL, reader)
    say(
        f"seed loop: {len(requests)} retrain requests, "
        f"{len(_records_for(s, 'deployments', SEED_MODEL, reader))} deployments"
    )
    return rows


def _concept_change(
    s: Settings, bootstrap: str, reader: TopicReader, registry: FileRegistry
) -> LiveRun:
    say(f"\n== part 2: {LIVE_MODEL} serves concept A; at event {CHANGE_AT} the world becomes B")
    run = LiveRun(Served("v1", rule_model("A", flip=0.05)))
    for start in range(0, TOTAL, CHUNK):
        right = _serve_chunk(s, bootstrap, run.served, start)
        run.score(start, right)
        say(
            f"events {start:5d}-{start + CHUNK - 1:5d}  served {run.served.version:<14} "
            f"accuracy {right / CHUNK:6.1%}"
        )
        reader.poll(0.2)
        _react(s, reader, registry, run, start + CHUNK)
    return run


@dataclass
class LiveRun:
    """What part 2 saw: accuracy per phase, when the change was detected, what was deployed."""

    served: Served
    detected_at: int | None = None
    deployments_seen: int = 0
    failures_seen: set[str] = field(default_factory=set)
    accuracy: dict[str, list[int]] = field(
        default_factory=lambda: {
            "before": [0, 0],
            "after, old model": [0, 0],
            "after, retrained": [0, 0],
        }
    )

    def score(self, start: int, right: int) -> None:
        if start < CHANGE_AT:
            phase = "before"
        else:
            phase = "after, retrained" if self.served.swaps else "after, old model"
        self.accuracy[phase][0] += right
        self.accuracy[phase][1] += CHUNK


def _serve_chunk(s: Settings, bootstrap: str, served: Served, start: int) -> int:
    """Predict CHUNK events with the served model, send them with their labels; count hits."""
    current = (served.version, served.predict)
    batch = list(
        interactions(
            LIVE_MODEL,
            lambda i: "A" if i < CHANGE_AT else "B",
            lambda i: current,
            start,
            CHUNK,
            seed=3,
        )
    )
    produce(
        bootstrap,
        [(s.topic("predictions"), LIVE_MODEL, as_json(x.prediction)) for x in batch]
        + [(s.topic("labels"), LIVE_MODEL, as_json(x.label)) for x in batch],
    )
    return sum(x.prediction["prediction"] == x.label["label"] for x in batch)


def _react(
    s: Settings, reader: TopicReader, registry: FileRegistry, run: LiveRun, next_event: int
) -> None:
    """Show new requests and results; hot-swap to each new deployment, as a server would."""
    reqs = _records_for(s, "retrain-requests", LIVE_MODEL, reader)
    if reqs and run.detected_at is None:
        r = reqs[0]["reasons"][0]
        run.detected_at = int(reqs[0]["ts"] - T0)
        say(
            f"  !! retrain requested at event {run.detected_at}: {r['signal']} {r['detector']} "
            f"statistic {r['value']:.1f} >= {r['threshold']:.1f} after {r['n']} labelled events"
        )
    for res in _records_for(s, "retrain-results", LIVE_MODEL, reader):
        if res["status"] != "succeeded" and res["request_id"] not in run.failures_seen:
            run.failures_seen.add(res["request_id"])
            why = res.get("error") or res.get("metrics", {}).get("gate")
            say(f"  xx retrain {res['request_id']} {res['status']}: {why}")
    deps = _records_for(s, "deployments", LIVE_MODEL, reader)
    for dep in deps[run.deployments_seen :]:
        model = pickle.loads(registry.load(LIVE_MODEL, dep["version"]))  # checksum verified
        run.served.version, run.served.predict = dep["version"], model.predict
        run.served.swaps.append((next_event, dep["version"]))
        m = dep.get("metrics", {})
        cur = m.get("current_error")
        say(
            f"  >> deployed {dep['version']}: holdout error {m.get('candidate_error', 0):.3f} vs "
            f"{'n/a' if cur is None else f'{cur:.3f}'} for the old model; the server swapped to it"
        )
    run.deployments_seen = len(deps)


def _summary(seed_rows: list[dict[str, Any]], live: LiveRun, seconds: float) -> None:
    say("\n== summary")
    say("seed loop   step  drift  action")
    for r in seed_rows:
        action = f"retrained, deployed {r['deployed']}" if r["deployed"] else "-"
        say(f"            {r['step']:>4}  {r['drift']:.2f}   {action}")
    det = live.detected_at
    found = f"detected at event {det}, {det - CHANGE_AT} events later" if det else "NOT detected"
    say(f"concept change at event {CHANGE_AT}: {found}")
    for when, version in live.served.swaps:
        say(f"  deployed {version}, served from event {when}")
    for phase, (right, n) in live.accuracy.items():
        if n:
            say(f"  accuracy {phase:<18} {right / n:6.1%} over {n} events")
    say(f"the demo took {seconds:.0f} s after the worker was ready")
