"""``streamproc record``: capture live topics into replay's INPUT format.

Reads ``predictions``, ``labels`` and ``metrics`` from the beginning (or from now) and writes
one ``{"topic", "value", "kafka_ts"}`` line per record (``kafka_ts``: the record's Kafka
timestamp), in broker-time order across topics: the partitions are merged by record timestamp,
ties broken by topic (predictions, labels, metrics), partition and offset. Each partition's own
order is kept as it is (and so each model's, as topics are keyed by model_id), even where its
timestamps go backwards. A consumer hands records over a partition at a time, so written in the
order consumed, a recording had all labels before all predictions, and its replay decided other
things than the live run. The records are held until the recording ends (memory about the size
of the file). A value that is not JSON is kept as a string under ``"raw"``, so the replay
dead-letters it as the live worker did.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import orjson
from aiokafka import AIOKafkaConsumer

from streamproc.config import Settings
from streamproc.core.topics import SOURCE_TOPICS

log = logging.getLogger(__name__)

RECORDED = SOURCE_TOPICS


class Recorded(NamedTuple):
    """One consumed record, as it will be written."""

    ts_ms: int  # Kafka timestamp
    topic_rank: int  # position of its topic in RECORDED: predictions first on a tie
    partition: int
    offset: int
    line: bytes


def broker_order(partitions: Iterable[list[Recorded]]) -> Iterator[Recorded]:
    """Merge each partition's records (in offset order) by timestamp, deterministically.

    >>> a = [Recorded(5, 1, 0, 0, b"label"), Recorded(9, 1, 0, 1, b"label2")]
    >>> b = [Recorded(5, 0, 0, 0, b"pred"), Recorded(7, 0, 0, 1, b"pred2")]
    >>> [r.line for r in broker_order([a, b])]
    [b'pred', b'label', b'pred2', b'label2']
    """
    return heapq.merge(*partitions, key=lambda r: (r.ts_ms, r.topic_rank, r.partition, r.offset))


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
    held: dict[tuple[str, int], list[Recorded]] = {}
    taken = 0
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle_s and (max_records is None or taken < max_records):
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            taken += _hold(held, batches, logical, max_records, taken)
            if batches:
                last = time.monotonic()
    finally:
        await consumer.stop()
    written = 0
    for rec in broker_order(held.values()):
        out.write(rec.line + b"\n")
        written += 1
    return written


def _hold(
    held: dict[tuple[str, int], list[Recorded]],
    batches: Mapping[Any, list[Any]],
    logical: Mapping[str, str],
    max_records: int | None,
    taken: int,
) -> int:
    """Keep the batches' records by partition; how many were kept (up to ``max_records``)."""
    kept = 0
    for tp, messages in sorted(batches.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
        topic = logical[tp.topic]
        rank = RECORDED.index(topic)
        for m in messages:
            if max_records is not None and taken + kept >= max_records:
                return kept
            line = _line(topic, m.value, m.timestamp / 1000.0)
            key = (topic, tp.partition)
            held.setdefault(key, []).append(
                Recorded(m.timestamp, rank, tp.partition, m.offset, line)
            )
            kept += 1
    return kept


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
