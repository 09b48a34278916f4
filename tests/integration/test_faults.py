"""Crashed workers and a restarted broker: no lost event, no lost state, no double retrain."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc.config import Settings
from streamproc.devkit.harness import (
    TopicReader,
    WorkerProcess,
    as_json,
    free_port,
    produce,
    wait_caught_up,
)

pytestmark = pytest.mark.integration

MODELS = [f"model-{i}" for i in range(8)]


def traffic(prefix: str) -> list[list[tuple[str, str, bytes]]]:
    """Four rounds: labelled examples for every model, then metrics that trigger retrains."""
    rng = random.Random(11)
    rounds: list[list[tuple[str, str, bytes]]] = [[], [], [], []]
    for r in range(4):
        for m in MODELS:
            for i in range(100):
                n = r * 100 + i
                x1, x2 = rng.random(), rng.random()
                pred = {"event_id": f"{m}-{n}", "model_id": m, "model_version": "v1",
                        "ts": 1e9 + n, "features": {"x1": x1, "x2": x2},
                        "prediction": (x1 > x2) != (rng.random() < 0.2)}  # fmt: skip
                label = {"event_id": f"{m}-{n}", "model_id": m, "ts": 1e9 + n, "label": x1 > x2}
                rounds[r].append((f"{prefix}predictions", m, as_json(pred)))
                rounds[r].append((f"{prefix}labels", m, as_json(label)))
            # Rounds 2 and 3 end with a drift metric over the threshold: a retrain each.
            if r >= 2:
                metric = {"model_id": m, "ts": 1e9 + r * 100 + 99, "name": "drift", "value": 0.5}
                rounds[r].append((f"{prefix}metrics", m, as_json(metric)))
    return rounds


class Supervisor:
    """Plays the process manager (the Kubernetes liveness probe on /health): a live worker that
    reports itself stalled (503), or does not answer for 30 s, is restarted. Each restart is
    recorded; the test allows at most one (see README, "A hang seen twice")."""

    def __init__(self, workers: list[WorkerProcess]) -> None:
        self.workers = workers
        self.restarts: list[str] = []
        self.silent_since: dict[int, float] = {}

    def __call__(self) -> None:
        for k, w in enumerate(self.workers):
            if w.proc is None or w.proc.poll() is not None:
                continue  # killed on purpose
            health = w.healthy()
            if health is None:
                self.silent_since.setdefault(k, time.monotonic())
            else:
                self.silent_since.pop(k, None)
            silent = time.monotonic() - self.silent_since.get(k, time.monotonic())
            if health is False or silent > 30:
                why = "stalled (503)" if health is False else "not answering for 30 s"
                self.restarts.append(f"worker {k}: {why}\n{w.dump_tasks()}")
                w.restart().wait_assigned(90)
                self.silent_since.pop(k, None)


def run_stack(kafka: str, tmp: Path, prefix: str, kill_after_round: int | None) -> dict[str, Any]:
    settings = Settings(broker=kafka, topic_prefix=prefix, partitions=4, data_dir=tmp, app_id="sp")
    group = prefix + "sp"
    workers = []
    n_workers = 2 if kill_after_round is not None else 1
    for k in range(n_workers):
        s = settings.with_(web_port=free_port())
        env = {"STREAMPROC_STALL_S": "30"}
        workers.append(WorkerProcess(s, kafka, tmp / f"w{k}.log", extra_env=env).start())
    for w in workers:
        w.wait_assigned(90)
    supervise = Supervisor(workers)
    inputs = [f"{prefix}{t}" for t in ("predictions", "labels", "metrics")]
    reader = TopicReader(kafka, [f"{prefix}retrain-requests", f"{prefix}deployments"])
    sent = 0
    try:
        for r, records in enumerate(traffic(prefix)):
            labelled = [rec for rec in records if not rec[0].endswith("metrics")]
            metrics = [rec for rec in records if rec[0].endswith("metrics")]
            produce(kafka, labelled)
            if metrics:
                # Topics are read in no fixed order: let the model's predictions (and so its
                # version) be seen before the version-less metric that asks for a retrain.
                wait_caught_up(kafka, group, inputs, timeout=150, on_poll=supervise)
                produce(kafka, metrics)
            sent += len(records)
            if r == kill_after_round:
                time.sleep(0.3)  # mid-stream: the worker is busy with this round
                workers[0].kill()
            if r == 2:  # as in the seed loop, the next step comes after the retrain ended
                # The process manager watches here too: a worker that reports a stall (its
                # producer's acks stopped, seen once in CI) is restarted as a probe would.
                reader.wait_for(lambda rd: len(rd.of(f"{prefix}deployments")) >= len(MODELS),
                                240, "the first deployments", on_poll=supervise)  # fmt: skip
                # ...and after the monitors applied it (it comes back on another topic).
                wait_caught_up(kafka, group, [f"{prefix}deployments"], timeout=60,
                               on_poll=supervise)  # fmt: skip
        wait_caught_up(kafka, group, inputs, timeout=150, on_poll=supervise)
        reader.wait_for(
            lambda rd: len(rd.of(f"{prefix}deployments")) >= 2 * len(MODELS),
            120,
            "deployments",
            on_poll=supervise,
        )
        reader.settle(quiet_s=2.0)
        requests = {r.json()["request_id"] for r in reader.of(f"{prefix}retrain-requests")}
        deployments = [r.json() for r in reader.of(f"{prefix}deployments")]
        snaps = TopicReader(kafka, [f"{group}-monitors-changelog"])
        snaps.read_to_end()
        latest = {r.key: orjson.loads(r.value) for r in snaps.records}
        snaps.close()
    except TimeoutError as exc:
        # Say where each live worker waits: a hang in CI is otherwise a bare number.
        stacks = "\n\n".join(f"--- worker {k}:\n{w.dump_tasks()}" for k, w in enumerate(workers))
        raise TimeoutError(f"{exc}\n{stacks}") from None
    finally:
        reader.close()
        for w in workers:
            w.stop()
    applied = {t: sum(s["counts"].get(t, 0) for s in latest.values())
               for t in ("predictions", "labels", "metrics")}  # fmt: skip
    if supervise.restarts:
        print("\n\n".join(supervise.restarts))  # shown with the test's output
    return {"requests": requests, "deployments": deployments, "applied": applied, "sent": sent,
            "restarts": len(supervise.restarts)}  # fmt: skip


def test_killing_one_of_two_workers_changes_nothing(kafka: str, tmp_path: Path) -> None:
    calm = run_stack(kafka, tmp_path / "calm", "calm-", kill_after_round=None)
    crash = run_stack(kafka, tmp_path / "crash", "crash-", kill_after_round=1)
    # Same decisions as the uninterrupted single worker (ids carry no offsets or prefixes).
    assert crash["requests"] == calm["requests"]
    assert len(crash["requests"]) == 2 * len(MODELS)
    # No version deployed twice, and every model's two retrains deployed.
    versions = [d["version"] for d in crash["deployments"]]
    assert len(versions) == len(set(versions)) == 2 * len(MODELS)
    # Every input record accounted for: applied exactly once to its model's state.
    per_topic = 4 * len(MODELS) * 100
    expected = {"predictions": per_topic, "labels": per_topic, "metrics": 2 * len(MODELS)}
    assert crash["applied"] == expected == calm["applied"]
    # A stalled survivor restarted by the supervisor still gives the same results; more than
    # one stall, or any in the calm run, is a failure of its own.
    assert calm["restarts"] == 0 and crash["restarts"] <= 1


def restart_on_same_port(broker: Any, port: int, data_dir: Path) -> str:
    """Start the broker again where it was; the old socket may linger for a moment."""
    from streamproc.devkit.localkafka import BrokerError

    deadline = time.monotonic() + 60
    while True:
        try:
            return str(broker.start(port=port, data_dir=data_dir))
        except BrokerError as exc:
            if "already in use" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def test_workers_ride_out_a_broker_restart(tmp_path: Path) -> None:
    from streamproc.devkit.localkafka import LocalKafka

    broker = LocalKafka()
    kafka = broker.start(data_dir=tmp_path / "kafka")
    port = int(kafka.rsplit(":", 1)[1])
    settings = Settings(broker=kafka, topic_prefix="br-", partitions=2, data_dir=tmp_path,
                        app_id="sp", web_port=free_port())  # fmt: skip
    worker = WorkerProcess(settings, kafka, tmp_path / "w.log").start()
    try:
        worker.wait_assigned(90)
        rounds = traffic("br-")
        produce(kafka, rounds[0] + rounds[1])
        broker.stop()
        kafka = restart_on_same_port(broker, port, tmp_path / "kafka")
        inputs = [f"br-{t}" for t in ("predictions", "labels", "metrics")]
        produce(kafka, [rec for rec in rounds[2] if not rec[0].endswith("metrics")])
        wait_caught_up(kafka, "br-sp", inputs, timeout=180)
        produce(kafka, [rec for rec in rounds[2] if rec[0].endswith("metrics")])
        reader = TopicReader(kafka, ["br-deployments"])
        reader.wait_for(lambda r: len(r.records) >= len(MODELS), 150, "the first deployments")
        wait_caught_up(kafka, "br-sp", ["br-deployments"], timeout=60)
        produce(kafka, [rec for rec in rounds[3] if not rec[0].endswith("metrics")])
        wait_caught_up(kafka, "br-sp", inputs, timeout=180)
        produce(kafka, [rec for rec in rounds[3] if rec[0].endswith("metrics")])
        wait_caught_up(kafka, "br-sp", inputs, timeout=180)
        reader.wait_for(lambda r: len(r.records) >= 2 * len(MODELS), 120, "deployments")
        reader.close()
        assert worker.proc is not None and worker.proc.poll() is None, worker.tail()
    finally:
        worker.stop()
        broker.stop()
