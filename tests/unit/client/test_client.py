"""Client SDK without Kafka: validation, the bounded buffer when the broker is unreachable, and
the DeploymentWatcher's swap logic fed deployment events directly."""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc.client import (
    AsyncPredictionLogger,
    DeploymentWatcher,
    LabelLogger,
    MetricLogger,
    PredictionLogger,
    Served,
)
from streamproc.core.events import DeploymentEvent, encode
from streamproc.core.example import Example
from streamproc.core.registry import FileRegistry
from streamproc.core.training import TrainedModel, train
from streamproc.devkit.harness import free_port

MODEL = "fraud-eu"


@pytest.fixture
def closed() -> str:
    """Bootstrap address of a port nothing listens on: every connection is refused at once."""
    return f"127.0.0.1:{free_port()}"


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"features": {"x": float("nan")}}, "'features.x' is not finite"),
        ({"features": {"x": float("inf")}}, "'features.x' is not finite"),
        ({"features": {"x": [1, 2]}}, "'features.x' must be a number, string, boolean or null"),
        ({"features": {"x": object()}}, "cannot be sent as JSON"),
        ({"score": 1.5}, "'score' is 1.5, outside [0, 1]"),
        ({"score": float("nan")}, "'score' is not finite"),
        ({"model_id": ""}, "'model_id' is empty"),
        ({"model_version": 3}, "'model_version' must be a string"),
        ({"ts": -1.0}, "'ts' is negative"),
        ({"prediction": None}, "'prediction' is missing"),
        ({"prediction": float("nan")}, "'prediction' is not finite"),
        ({"extra": {"model_id": "other"}}, "would replace the event's own fields"),
        ({"extra": {"debug": {"y": float("nan")}}}, "'debug.y' is not finite"),
    ],
)
def test_bad_prediction_raises_value_error_before_it_is_buffered(
    closed: str, kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {
        "model_id": MODEL,
        "model_version": "v1",
        "features": {"x": 1.0, "colour": "red", "flag": True, "missing": None},
        "prediction": True,
    }
    args.update(kwargs)
    logger = PredictionLogger(closed)
    try:
        with pytest.raises(ValueError) as exc:
            logger.log(**args)
        assert message in str(exc.value)
        assert logger.buffered == 0 and logger.dropped == 0
    finally:
        logger.close(timeout=1)


def test_bad_label_and_metric_raise_value_error(closed: str) -> None:
    labels, metrics = LabelLogger(closed), MetricLogger(closed)
    try:
        with pytest.raises(ValueError, match="'label' is missing"):
            labels.log(MODEL, "e1", None)
        with pytest.raises(ValueError, match="'event_id' is empty"):
            labels.log(MODEL, "", True)
        with pytest.raises(ValueError, match="'value' is not finite"):
            metrics.log(MODEL, "drift", float("nan"))
        with pytest.raises(ValueError, match="'value' must be a number"):
            metrics.log(MODEL, "drift", "high")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="'name' is empty"):
            metrics.log(MODEL, "", 0.5)
        assert labels.buffered == metrics.buffered == 0
    finally:
        labels.close(timeout=1)
        metrics.close(timeout=1)


def test_valid_events_are_buffered_as_contract_json_keyed_by_model(closed: str) -> None:
    preds = PredictionLogger(closed, "p-", buffer_size=10)
    try:
        eid = preds.log(MODEL, "v1", {"x": 0.5}, False, score=0.8, extra={"region": "eu"})
        mine = preds.log(MODEL, "v1", {"x": 0.5}, 1.5, event_id="e-42", ts=12.0)
        assert len(eid) == 32 and int(eid, 16) >= 0  # uuid4 hex
        assert mine == "e-42"
        assert preds.topic == "p-predictions"
        (key1, raw1), (key2, raw2) = list(preds._buf)
        assert key1 == key2 == MODEL.encode()
        first, second = orjson.loads(raw1), orjson.loads(raw2)
        assert first["event_id"] == eid and first["region"] == "eu" and first["score"] == 0.8
        assert abs(first["ts"] - time.time()) < 5
        assert second == {
            "event_id": "e-42",
            "model_id": MODEL,
            "model_version": "v1",
            "ts": 12.0,
            "features": {"x": 0.5},
            "prediction": 1.5,
        }
    finally:
        preds.close(timeout=1)


# --------------------------------------------------------------------------- bounded buffer


def test_unreachable_kafka_never_blocks_logging_and_drops_oldest_counted(
    closed: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="streamproc.client")
    preds = PredictionLogger(closed, buffer_size=100, warn_every_s=60)
    slowest = 0.0
    for i in range(350):
        t = time.perf_counter()
        preds.log(MODEL, "v1", {"i": i}, True, event_id=f"e{i}")
        slowest = max(slowest, time.perf_counter() - t)
    assert slowest < 0.05, slowest
    assert preds.buffered == 100
    assert preds.dropped == 250
    # The oldest went first: what is left is the newest 100.
    left = [orjson.loads(v)["event_id"] for _, v in preds._buf]
    assert left == [f"e{i}" for i in range(250, 350)]
    full = [r for r in caplog.records if "buffer full" in r.getMessage()]
    assert len(full) == 1  # rate-limited: one warning, not 250

    assert preds.flush(timeout=0.3) is False
    t = time.monotonic()
    preds.close(timeout=1.0)
    assert time.monotonic() - t < 1.5
    assert preds.dropped == 350  # the 100 left in the buffer at close are lost too
    assert preds.sent == 0
    preds.log(MODEL, "v1", {}, True)  # after close: counted, never raised
    assert preds.dropped == 351


def test_close_returns_within_its_timeout_while_connect_keeps_failing(closed: str) -> None:
    labels = LabelLogger(closed, buffer_size=5)
    for i in range(20):
        labels.log(MODEL, f"e{i}", i % 2 == 0)
    time.sleep(0.8)  # let a few connection attempts fail and back off
    t = time.monotonic()
    labels.close(timeout=0.5)
    assert time.monotonic() - t < 1.0
    assert labels.dropped == 20


def test_async_logger_buffers_and_drops_on_its_loop(closed: str) -> None:
    async def run() -> tuple[int, int, float, float]:
        preds = AsyncPredictionLogger(closed, buffer_size=10)
        await preds.start()
        t = time.perf_counter()
        for i in range(30):
            preds.log(MODEL, "v1", {"i": i}, i)
        log_s = time.perf_counter() - t
        dropped, buffered = preds.dropped, preds.buffered
        assert await preds.flush(timeout=0.2) is False
        t = time.monotonic()
        await preds.close(timeout=0.5)
        return dropped, buffered, log_s, time.monotonic() - t

    dropped, buffered, log_s, close_s = asyncio.run(run())
    assert (dropped, buffered) == (20, 10)
    assert log_s < 0.1 and close_s < 1.0


def test_bad_producer_config_is_logged_once_and_events_are_dropped_not_raised(
    closed: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="streamproc.client")
    metrics = MetricLogger(closed, buffer_size=3, producer_config={"no_such_option": 1})
    for i in range(5):
        metrics.log(MODEL, "latency_ms", float(i))
    assert metrics.dropped == 2
    t = time.monotonic()
    metrics.close(timeout=1.0)
    assert time.monotonic() - t < 1.5 and metrics.dropped == 5
    assert [r for r in caplog.records if "fix producer_config" in r.getMessage()]


def test_buffer_and_batch_sizes_must_be_positive(closed: str) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AsyncPredictionLogger(closed, buffer_size=0)


# --------------------------------------------------------------------------- deployment watcher


def concept_model(concept: str) -> TrainedModel:
    """A small real artifact: the built-in trainer fit on concept A (x1 > x2) or B."""
    examples = []
    for i in range(400):
        x1, x2 = (i * 37 % 101) / 100, (i * 61 % 103) / 102
        y = x1 > x2 if concept == "A" else x1 + x2 > 1.0
        examples.append(Example({"x1": x1, "x2": x2}, y, None, "v0", float(i)))
    return train(examples, task="classification", epochs=5)


@pytest.fixture(scope="module")
def models() -> dict[str, TrainedModel]:
    return {"A": concept_model("A"), "B": concept_model("B")}


@pytest.fixture
def registry(tmp_path: Path, models: dict[str, TrainedModel]) -> FileRegistry:
    reg = FileRegistry(tmp_path / "registry")
    reg.register(MODEL, "v-a", pickle.dumps(models["A"]), created_ts=1.0)
    reg.register(MODEL, "v-b", pickle.dumps(models["B"]), created_ts=2.0, parent_version="v-a")
    return reg


def deployment(version: str, dep_id: str | None = None, **kw: Any) -> DeploymentEvent:
    model_id = kw.pop("model_id", MODEL)
    args: dict[str, Any] = {"action": "promote", "ts": 100.0, **kw}
    return DeploymentEvent(dep_id or f"dep-{version}", model_id, version, **args)


# x1 > x2 is True, x1 + x2 > 1 is False: the two concepts disagree here.
TELLS_APART = {"x1": 0.45, "x2": 0.1}


def watcher_for(registry: FileRegistry, **kw: Any) -> DeploymentWatcher:
    return DeploymentWatcher(f"127.0.0.1:{free_port()}", "t-", [MODEL], registry.root, **kw)


def test_promote_loads_verified_artifact_and_swaps(registry: FileRegistry) -> None:
    swapped: list[tuple[str, Any]] = []
    w = watcher_for(registry, on_swap=lambda ev, m: swapped.append((ev.version, m)))
    assert w.current(MODEL) is None
    with pytest.raises(LookupError):
        w.predict(MODEL, TELLS_APART)
    w.serve(MODEL, "v1", concept_model("A"))
    assert w.handle(deployment("v-b", previous_version="v1")) is True
    served = w.current(MODEL)
    assert isinstance(served, Served) and served.version == "v-b"
    version, model = served  # a plain (version, model) pair too
    assert version == "v-b"
    assert isinstance(model, TrainedModel)
    assert w.predict(MODEL, TELLS_APART) is False  # concept B's answer
    assert w.wait_for_version(MODEL, "v-b", timeout=0.1) is True
    assert w.wait_for_version(MODEL, "v-other", timeout=0.1) is False
    assert [v for v, _ in swapped] == ["v-b"] and swapped[0][1] is model
    assert (w.swaps, w.failures) == (1, 0)


def test_checksum_failure_keeps_the_old_model(registry: FileRegistry) -> None:
    w = watcher_for(registry)
    assert w.handle(deployment("v-a"))
    before = w.current(MODEL)
    artifact = registry.root / MODEL / "v-b" / "artifact.bin"
    artifact.write_bytes(artifact.read_bytes()[:-10] + b"0123456789")  # tampered, same size
    assert w.handle(deployment("v-b")) is False
    assert w.current(MODEL) is before  # the very same pair: nothing half-swapped
    assert w.predict(MODEL, TELLS_APART) is True  # still concept A
    assert (w.swaps, w.failures) == (1, 1)
    # A missing version fails the same way.
    assert w.handle(deployment("v-missing")) is False
    assert w.current(MODEL) is before and w.failures == 2


def test_artifact_that_is_not_a_model_is_not_served(registry: FileRegistry) -> None:
    registry.register(MODEL, "v-dict", pickle.dumps({"weights": [1, 2]}), created_ts=3.0)
    w = watcher_for(registry)
    assert w.handle(deployment("v-a"))
    assert w.handle(deployment("v-dict")) is False
    assert w.current(MODEL) is not None and w.current(MODEL).version == "v-a"  # type: ignore[union-attr]
    assert w.failures == 1


def test_custom_loader_replaces_the_registry(models: dict[str, TrainedModel]) -> None:
    calls: list[DeploymentEvent] = []

    def loader(event: DeploymentEvent) -> Any:
        calls.append(event)
        if event.version == "v-broken":
            raise ConnectionError("s3 unreachable")
        return models["B"]

    w = DeploymentWatcher("127.0.0.1:1", "", MODEL, loader=loader)  # a str model id works too
    ev = deployment("v7", artifact_uri="s3://bucket/fraud-eu/v7.pkl")
    assert w.handle(ev) is True
    assert calls == [ev] and w.current(MODEL) == ("v7", models["B"])
    assert w.handle(deployment("v-broken")) is False
    assert w.current(MODEL) == ("v7", models["B"]) and w.failures == 1


def test_repeated_deployment_id_and_other_models_are_ignored(registry: FileRegistry) -> None:
    loads: list[str] = []
    reg_loader = DeploymentWatcher._load_from_registry

    def counting(self: DeploymentWatcher, event: DeploymentEvent) -> Any:
        loads.append(event.deployment_id)
        return reg_loader(self, event)

    w = watcher_for(registry)
    w._loader = lambda ev: counting(w, ev)
    first = deployment("v-b", "dep-1")
    assert w.handle(first) is True
    w.serve(MODEL, "v-a", concept_model("A"))  # someone swapped in between
    assert w.handle(first) is False  # the same deployment again: not re-applied
    assert w.current(MODEL) is not None and w.current(MODEL).version == "v-a"  # type: ignore[union-attr]
    assert w.handle(deployment("v-b", "dep-1", model_id="other-model")) is False
    assert loads == ["dep-1"]


def test_failed_deployment_may_be_retried_when_redelivered(registry: FileRegistry) -> None:
    w = watcher_for(registry)
    ev = deployment("v-late", "dep-late")
    assert w.handle(ev) is False and w.failures == 1
    registry.register(MODEL, "v-late", pickle.dumps(concept_model("B")), created_ts=4.0)
    assert w.handle(ev) is True and w.current(MODEL).version == "v-late"  # type: ignore[union-attr]


def test_rollback_to_the_replaced_version_reuses_it_without_loading(
    registry: FileRegistry,
) -> None:
    initial = concept_model("A")
    w = watcher_for(registry)
    w.serve(MODEL, "v1", initial)  # the boot model, never registered
    assert w.handle(deployment("v-b", previous_version="v1"))
    rollback = deployment("v1", "rb-1", action="rollback", previous_version="v-b")
    assert w.handle(rollback) is True
    assert w.current(MODEL) == ("v1", initial) and w.failures == 0


def test_invalid_records_on_the_topic_are_skipped(registry: FileRegistry) -> None:
    w = watcher_for(registry)
    w._on_record(MODEL.encode(), b'{"deployment_id": "d", "model_id": "fraud-eu"')
    w._on_record(MODEL.encode(), orjson.dumps({"deployment_id": "d", "model_id": MODEL}))
    w._on_record(b"other", encode(deployment("v-a", model_id="other")))
    assert w.current(MODEL) is None and w.failures == 0
    w._on_record(MODEL.encode(), encode(deployment("v-a")))
    assert w.current(MODEL) is not None and w.current(MODEL).version == "v-a"  # type: ignore[union-attr]


def test_watcher_needs_a_registry_or_a_loader() -> None:
    with pytest.raises(ValueError, match="registry_root or a loader"):
        DeploymentWatcher("127.0.0.1:1", "", [MODEL])


def test_watcher_thread_survives_unreachable_kafka_and_stops_promptly(
    registry: FileRegistry,
) -> None:
    w = watcher_for(registry).start()
    assert w.wait_ready(timeout=0.5) is False
    t = time.monotonic()
    w.stop(timeout=5)
    assert time.monotonic() - t < 2.0
    assert w._thread is not None and not w._thread.is_alive()
