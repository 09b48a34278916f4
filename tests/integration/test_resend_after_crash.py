"""A worker that died between a model's snapshot and its retrain request's ack: the next one
sends the request again (the monitor's outbox), on a real broker and a real worker."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streamproc.core.events import SourceRef
from streamproc.core.router import Monitors, route

pytestmark = pytest.mark.integration

METRIC = orjson.dumps({"model_id": "m", "ts": 1_790_000_000.0, "name": "drift", "value": 0.9})


async def _write(bootstrap: str, records: list[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send_and_wait(topic, value, key=key, partition=0)
    finally:
        await producer.stop()


def test_a_request_saved_but_never_sent_is_sent_by_the_next_worker(stack: Any) -> None:
    first = stack.start_worker()  # creates the topics and the changelog, then dies
    first.kill()
    # What the dead worker left: the metric (offset 0 of metrics[0]) applied, the model's
    # snapshot saved with the request it made, and the request itself never acked.
    dead = Monitors()
    (req,) = route(dead, "metrics", METRIC, SourceRef("metrics", 0, 0), 0.0).requests
    changelog = f"{stack.group_id}-monitors-changelog"
    asyncio.run(_write(stack.bootstrap, [
        (stack.topic("metrics"), b"m", METRIC),
        (changelog, orjson.dumps("m"), dead.snapshot("m")),  # faust's JSON key
    ]))  # fmt: skip
    reader = stack.reader("retrain-requests", "retrain-results")
    worker = stack.start_worker()
    reader.wait_for(lambda r: r.of(stack.topic("retrain-requests")), 90, "the request again")
    stack.wait_processed("metrics")
    reader.settle(quiet_s=2.0)
    sent = [r.json() for r in reader.of(stack.topic("retrain-requests"))]
    assert [s["request_id"] for s in sent] == [req.request_id]  # once, with the same id
    assert sent[0]["reasons"][0]["signal"] == "metric:drift"
    results = [r.json() for r in reader.of(stack.topic("retrain-results"))]
    assert [r["request_id"] for r in results] == [req.request_id]  # and the retrainer took it
    assert "sending it again" in worker.tail(400)
