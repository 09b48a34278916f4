"""The client SDK on the real broker: an inference server built on the loggers and the watcher
drives a real worker through the whole loop and hot-swaps to the model it deploys."""

from __future__ import annotations

import asyncio
import pickle
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streamproc.client import (
    AsyncPredictionLogger,
    DeploymentWatcher,
    LabelLogger,
    MetricLogger,
    PredictionLogger,
)
from streamproc.core.batches import is_batch, split
from streamproc.core.events import DeploymentEvent, encode
from streamproc.core.registry import FileRegistry
from streamproc.core.training import train
from streamproc.devkit.harness import TopicReader, produce
from streamproc.service.topics import ensure_topics
from streamproc.sim.scenarios import CONCEPTS, T0, interactions, rule_model

pytestmark = pytest.mark.integration

MODEL = "shop-ranker"
CHANGE_AT = 1200
CHUNK = 100


class RuleServed:
    """The server's boot model: concept A's rule, wrong 20% of the time.

    At 20% the error CUSUM's estimate of where the change began is sharp (at a few % it drifts
    back to zero so slowly that the estimate lands well before the change, and the retrain
    learns concept A again); the jump to 50% at the change is still plain.
    """

    def __init__(self) -> None:
        self.predict = rule_model("A", flip=0.2, seed=5)


def of_model(reader: TopicReader, stack: Any, topic: str, model: str = MODEL) -> list[Any]:
    return [r.json() for r in reader.of(stack.topic(topic)) if r.key == model.encode()]


def accuracy_on(concept: str, model: Any, n: int = 1000, seed: int = 99) -> float:
    rng = random.Random(seed)
    right = 0
    for _ in range(n):
        x1, x2 = rng.random(), rng.random()
        right += model.predict({"x1": round(x1, 6), "x2": round(x2, 6)}) == CONCEPTS[concept](
            x1, x2
        )
    return right / n


def test_sdk_server_streams_a_concept_change_and_hot_swaps_to_the_deployed_model(
    stack: Any,
) -> None:
    stack.start_worker()
    s = stack.settings
    reader = stack.reader("retrain-requests", "deployments")
    watcher = DeploymentWatcher(
        stack.bootstrap, s.topic_prefix, [MODEL], registry_root=s.registry_dir
    ).start()
    preds = PredictionLogger(stack.bootstrap, s.topic_prefix)
    labels = LabelLogger(stack.bootstrap, s.topic_prefix)
    try:
        assert watcher.wait_ready(30)
        watcher.serve(MODEL, "v1", RuleServed())
        logged = 0
        for start in range(0, 5000, CHUNK):
            served = watcher.current(MODEL)
            assert served is not None
            batch = interactions(
                MODEL,
                lambda i: "A" if i < CHANGE_AT else "B",
                lambda i, sv=served: (sv.version, sv.model.predict),
                start,
                CHUNK,
                seed=5,
            )
            for x in batch:
                p, lab = x.prediction, x.label
                eid = preds.log(
                    MODEL,
                    p["model_version"],
                    p["features"],
                    p["prediction"],
                    event_id=p["event_id"],
                    ts=p["ts"],
                )
                labels.log(MODEL, eid, lab["label"], ts=lab["ts"])
                logged += 1
            assert preds.flush(30) and labels.flush(30)
            reader.poll(0.1)
            if of_model(reader, stack, "deployments"):
                break
        reader.wait_for(
            lambda r: bool(of_model(r, stack, "deployments")), timeout=60, what="a deployment"
        )
        deployment = of_model(reader, stack, "deployments")[0]
        assert deployment["action"] == "promote" and deployment["previous_version"] == "v1"
        assert watcher.wait_for_version(MODEL, deployment["version"], timeout=30), watcher.failures

        served = watcher.current(MODEL)
        assert served is not None
        assert served[0] == deployment["version"]
        assert watcher.failures == 0 and watcher.swaps == 1
        # The swapped-in model learned the new world; the boot model had not.
        assert accuracy_on("B", served.model) >= 0.85
        assert accuracy_on("B", RuleServed()) < 0.65
        assert watcher.predict(MODEL, {"x1": 0.45, "x2": 0.1}) is False  # B says x1 + x2 <= 1

        request = of_model(reader, stack, "retrain-requests")[0]
        assert request["reasons"][0]["signal"] == "error"
        assert CHANGE_AT <= request["ts"] - T0 < CHANGE_AT + 600
        assert (preds.sent, preds.dropped, preds.failed) == (logged, 0, 0)
        assert (labels.sent, labels.dropped, labels.failed) == (logged, 0, 0)
    finally:
        preds.close(10)
        labels.close(10)
        watcher.stop()


def test_metric_logger_drives_the_seed_rule(stack: Any) -> None:
    stack.start_worker()
    reader = stack.reader("retrain-requests")
    with MetricLogger(stack.bootstrap, stack.settings.topic_prefix) as metrics:
        metrics.log(MODEL, "drift", 0.05, ts=T0 + 60)  # below the default 0.1: nothing
        metrics.log(MODEL, "drift", 0.5, ts=T0 + 120)
        assert metrics.flush(30)
        assert metrics.sent == 2
    reader.wait_for(
        lambda r: bool(of_model(r, stack, "retrain-requests")), timeout=30, what="a request"
    )
    stack.wait_processed("metrics")
    reader.settle(quiet_s=1.0)
    requests = of_model(reader, stack, "retrain-requests")
    assert len(requests) == 1
    reason = requests[0]["reasons"][0]
    assert reason["signal"] == "metric:drift"
    assert reason["value"] == 0.5 and reason["threshold"] == 0.1


def test_async_logger_writes_contract_json_keyed_by_model(stack: Any) -> None:
    asyncio.run(ensure_topics(stack.settings, stack.bootstrap))

    async def serve() -> list[str]:
        async with AsyncPredictionLogger(stack.bootstrap, stack.settings.topic_prefix) as preds:
            ids = [
                preds.log(MODEL, "v1", {"x1": i / 10, "c": "red"}, i % 2 == 0) for i in range(10)
            ]
            assert await preds.flush(30)
            assert preds.sent == 10
        return ids

    ids = asyncio.run(serve())
    reader = stack.reader("predictions")

    def events(r: TopicReader) -> list[Any]:  # batched by default: one record, many events
        values = [rec.json() for rec in r.records]
        return [e for v in values for e in (split(v, "prediction") if is_batch(v) else [v])]

    reader.wait_for(lambda r: len(events(r)) >= 10, timeout=30, what="ten predictions")
    assert all(r.key == MODEL.encode() for r in reader.records)
    assert len(reader.records) < 10
    values = sorted(events(reader), key=lambda v: ids.index(v["event_id"]))
    assert [v["event_id"] for v in values] == ids
    assert values[3]["features"] == {"x1": 0.3, "c": "red"} and values[3]["prediction"] is False


def eventually(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_watcher_catches_up_on_the_latest_deployment_then_follows_live(
    stack: Any, tmp_path: Path
) -> None:
    asyncio.run(ensure_topics(stack.settings, stack.bootstrap))
    registry = FileRegistry(tmp_path / "registry")
    rng = random.Random(1)
    for version, concept in (("v-a", "A"), ("v-b", "B")):
        examples = []
        for _ in range(300):
            x1, x2 = rng.random(), rng.random()
            examples.append([{"x1": x1, "x2": x2}, CONCEPTS[concept](x1, x2)])
        registry.register(MODEL, version, pickle.dumps(train(examples)), created_ts=1.0)

    def dep(dep_id: str, version: str, action: str = "promote", model: str = MODEL) -> Any:
        ev = DeploymentEvent(dep_id, model, version, action, ts=1.0)
        return (stack.topic("deployments"), model, encode(ev))

    def counting_loader(calls: list[str]) -> Callable[[DeploymentEvent], Any]:
        def load(ev: DeploymentEvent) -> Any:
            calls.append(ev.deployment_id)
            return pickle.loads(registry.load(ev.model_id, ev.version))

        return load

    produce(stack.bootstrap, [dep("d1", "v-a"), dep("d2", "v-b"), dep("x1", "v-zz", model="x")])
    prefix = stack.settings.topic_prefix
    loaded: list[str] = []
    swaps: list[str] = []
    watcher = DeploymentWatcher(
        stack.bootstrap,
        prefix,
        [MODEL],
        loader=counting_loader(loaded),
        on_swap=lambda ev, m: swaps.append(ev.version),
    ).start()
    late_loaded: list[str] = []
    late = DeploymentWatcher(
        stack.bootstrap, prefix, [MODEL], loader=counting_loader(late_loaded), from_beginning=False
    ).start()
    try:
        assert watcher.wait_ready(30) and late.wait_ready(30)
        # Start-up: only the latest deployment is loaded; the superseded one is skipped.
        served = watcher.current(MODEL)
        assert served is not None and served.version == "v-b"
        assert loaded == ["d2"] and swaps == ["v-b"]
        assert late.current(MODEL) is None and late_loaded == []
        # Live: a superseded deployment redelivered (ignored), a broken one (old model kept),
        # a rollback, and the rollback again (ignored).
        produce(
            stack.bootstrap,
            [
                dep("d1", "v-a"),
                dep("d4", "v-missing"),
                dep("rb1", "v-a", "rollback"),
                dep("rb1", "v-a", "rollback"),
            ],
        )
        assert watcher.wait_for_version(MODEL, "v-a", 30)
        assert loaded == ["d2", "d4", "rb1"] and swaps == ["v-b", "v-a"]
        assert watcher.failures == 1 and watcher.swaps == 2
        # The late watcher saw only what came after its start: d1 is new to it.
        assert eventually(lambda: late.failures == 1)
        assert late_loaded == ["d1", "d4"]
        late_served = late.current(MODEL)
        assert late_served is not None and late_served.version == "v-a"
        assert watcher.predict(MODEL, {"x1": 0.45, "x2": 0.1}) is True  # concept A again
    finally:
        watcher.stop()
        late.stop()
