"""``streamproc record``: capture live topics into replay's INPUT format.

Reads ``predictions``, ``labels`` and ``metrics`` from the beginning (or from now) and writes
one ``{"topic", "value", "kafka_ts"}`` line per record (``kafka_ts``: when the broker received
it), in the order they were consumed. Each partition's order is kept, and so each model's, as
topics are keyed by model_id; the interleaving of different partitions is the consumer's. A
value that is not JSON is kept as a string under ``"raw"``, so the replay dead-letters it as
the live worker did.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import BinaryIO

import orjson
from aiokafka import AIOKafkaConsumer

from streamproc.config import Settings

log = logging.getLogger(__name__)

RECORDED = ("predictions", "labels", "metrics")


async def record(
    settings: Settings,
    bootstrap: str,
    out: BinaryIO,
    from_beginning: bool = True,
    idle_s: float = 5.0,
    max_records: int | None = None,
) -> int:
    """Write records until none arrived for ``idle_s`` seconds (or ``max_records``); the count."""
    logical = {settings.topic(t): t for t in RECORDED}
    consumer = AIOKafkaConsumer(
        *logical,
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        **settings.security.aiokafka_kwargs(),
    )
    await consumer.start()
    written = 0
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle_s:
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, messages in sorted(
                batches.items(), key=lambda kv: (kv[0].topic, kv[0].partition)
            ):
                for m in messages:
                    out.write(_line(logical[tp.topic], m.value, m.timestamp / 1000.0) + b"\n")
                    written += 1
                    if max_records is not None and written >= max_records:
                        return written
            if batches:
                last = time.monotonic()
    finally:
        await consumer.stop()
    return written


def _line(topic: str, value: bytes | None, kafka_ts: float) -> bytes:
    try:
        obj = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        obj = None
    if obj is None:
        text = (value or b"").decode("utf-8", errors="backslashreplace")
        return orjson.dumps({"topic": topic, "raw": text, "kafka_ts": kafka_ts})
    return orjson.dumps({"topic": topic, "value": obj, "kafka_ts": kafka_ts})


def record_to_file(settings: Settings, bootstrap: str, path: str | Path, **kw: object) -> int:
    with open(path, "wb") as out:
        return asyncio.run(record(settings, bootstrap, out, **kw))  # type: ignore[arg-type]
