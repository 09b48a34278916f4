"""The faust app: topics and changelog-backed tables, configured from :class:`Settings`."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any

import faust

from streamproc.config import Settings
from streamproc.core.topics import (
    DEAD_LETTERS,
    DEPLOYMENTS,
    MONITORED_TOPICS,
    RETRAIN_REQUESTS,
    RETRAIN_RESULTS,
)
from streamproc.service.faust_compat import at_partition, no_current_event, without_builtin_views

MAX_STATE_BYTES = 8 * 1024 * 1024
# Most bytes the broker returns per partition and fetch (faust's default: 1 MiB, i.e. about one
# batched record). Measured for issue 13 (shared/notes/faust.md): on batched records of 1,000
# events, a decode-only faust agent reaches 0.75-0.87 of raw aiokafka + orjson only once this
# is 8 MiB or more. It must also hold the largest changelog snapshot (MAX_STATE_BYTES). Per
# partition: 8 MiB x the partitions a worker holds bounds what one fetch can buffer.
CONSUMER_FETCH_BYTES = max(8 * 1024 * 1024, MAX_STATE_BYTES)
# Most records one fetch loop pass hands to faust (its default: all that were fetched). An
# 8 MiB fetch holds some 60,000 single-event records; a partition paused for record-time
# alignment (service/alignment.py) stops only at the next pass, so without this bound one
# pass of labels ran past the 20,000 records allowed to wait and went out of order
# (bench/catch_up.py --single). aiokafka keeps the rest of a fetch for the next pass (a
# partition faust leaves out of its fetches keeps it too, until faust fetches it again); it
# serves one partition's fetch before the next one's, so while a worker catches up on small
# records a partition may wait its turn (service/alignment.py does not take that for a stall).
MAX_POLL_RECORDS = 1000
# Most bytes the producer batches per partition (faust's default: 16 KiB, under one snapshot:
# a fleet model's is about 19 KB, a busy model's hundreds of KB). With one snapshot per batch a
# checkpoint's writes went out a few per request, and its wait for their acks took 1-2.8 s of
# every 4-5 s with 10,000 models; with 1 MiB, 0.3-0.8 s (bench/throughput.py's fleet: 1.4x
# events/s). aiokafka puts one batch of each partition a broker leads into one request, with no
# cap on the total, and a broker drops a request over its socket.request.max.bytes (100 MiB by
# default): so the batch shrinks with the partitions, to faust's default at 4,096 and more.
PRODUCER_BATCH_BYTES = 1024 * 1024
REQUEST_BUDGET_BYTES = 64 * 1024 * 1024


def producer_batch_bytes(partitions: int) -> int:
    """The producer's batch size for ``partitions`` partitions per topic (see above)."""
    return max(16 * 1024, min(PRODUCER_BATCH_BYTES, REQUEST_BUDGET_BYTES // max(partitions, 1)))


RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


class ModelTable(faust.Table):
    """A table of per-model bytes whose changelog partition is the model's source partition.

    faust writes a table key to the partition of the event being processed; the drift agent
    writes at checkpoints, after the events, so it says which partition each model's events came
    from. (Producers must still all use murmur2 for ``model_id`` keys: streamproc's own requests,
    results and deployments are keyed that way, and go where murmur2 sends them.)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The partition of each key's events (the drift agent sets it as it applies them; a
        # write sets it too): where the key's changelog record goes.
        self.partition_of: dict[str, int] = {}
        self.pending: list[Any] = []

    def on_key_set(self, key: Any, value: Any) -> None:
        # As faust's, but the send's future is kept: a checkpoint must know its writes landed.
        self.pending.append(self.send_changelog(self.partition_for_key(key), key, value))
        self.app.sensors.on_table_set(self, key, value)  # what faust's own on_key_set reports

    async def written(self, timeout: float = 60.0) -> None:
        """Wait until every write so far is acked by the broker; raise if one failed."""
        pending, self.pending = self.pending, []
        if pending:
            await asyncio.wait_for(asyncio.gather(*(f for f in pending)), timeout)

    def partition_for_key(self, key: Any) -> int | None:
        return self.partition_of[key]

    # faust's RocksDB store picks the partition's database from the event being processed,
    # which batched writes after the events do not have (and a stale one would be wrong): a
    # write names its partition, a read looks in every partition this worker holds.

    def put(self, key: str, value: bytes, partition: int) -> None:
        self.partition_of[key] = partition
        with at_partition(partition):
            self[key] = value

    def load(self, key: str) -> bytes | None:
        with no_current_event():
            return self.get(key)


async def send_acked(topic: Any, key: str | bytes | None, value: bytes) -> None:
    """Send and wait for the broker's ack: rare, decisive records must not sit in a buffer."""
    k = key.encode() if isinstance(key, str) else key
    fut = await topic.send(key=k, value=value)
    await fut


def advertised_host(bind: str) -> str:
    """The name faust advertises for a bind address: the host's name for a wildcard (which
    is no address a client can use), else the address itself."""
    return socket.gethostname() if bind in ("0.0.0.0", "::", "") else bind


@dataclass
class Wiring:
    """Everything the agents need, built once per app."""

    app: faust.App
    settings: Settings
    monitored: faust.TopicT
    requests: faust.TopicT
    results: faust.TopicT
    deployments: faust.TopicT
    dead_letters: faust.TopicT
    monitors: ModelTable
    retrains: ModelTable


def create_app(settings: Settings, bootstrap: str) -> Wiring:
    """Build the app; tables live in ``settings.store``: ``rocksdb`` (rocksdict) or ``memory``."""
    datadir = settings.data_dir / "worker" / f"web-{settings.web_port}"
    datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        # The prefix isolates changelog topics and the consumer group as it isolates topics.
        settings.topic_prefix + settings.app_id,
        broker=f"kafka://{bootstrap}",
        # TLS / SASL from STREAMPROC_SECURITY_PROTOCOL etc.; None (plaintext) is faust's default.
        broker_credentials=settings.security.faust_credentials(),
        store=f"{settings.store}://",
        # One directory per worker: two workers on one host must not share RocksDB files.
        datadir=str(datadir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        consumer_auto_offset_reset="earliest",
        # faust binds ``web_bind`` (its default: every interface); ``web_host`` is only the
        # name it advertises. STREAMPROC_WEB_HOST is the address to bind (127.0.0.1 default).
        web_bind=settings.web_host,
        web_host=advertised_host(settings.web_host),
        web_port=settings.web_port,
        # faust's own views serve table contents (/table/: every monitor snapshot, raw feature
        # values included), the cluster map (/router/), sensor statistics and the service
        # graph, to anyone, with no token. streamproc serves none of them (issue 16).
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        web_in_thread=False,
        stream_wait_empty=False,
        broker_commit_every=1000,
        # Fail over to a surviving worker in seconds, not the default minute.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        # A revocation checkpoints first (state before offsets); give it time to flush.
        broker_rebalance_timeout=60.0,
        broker_commit_interval=1.0,
        # A busy model's snapshot (label-join buffer, training window) can pass Kafka's 1 MB
        # default; its changelog topic and our producer allow up to MAX_STATE_BYTES.
        producer_max_request_size=MAX_STATE_BYTES,
        producer_max_batch_size=producer_batch_bytes(settings.partitions),
        # Batched records: see CONSUMER_FETCH_BYTES (8 MiB or more is what made them fast).
        consumer_max_fetch_size=CONSUMER_FETCH_BYTES,
        broker_max_poll_records=MAX_POLL_RECORDS,
        table_cleanup_interval=3600.0,
    )
    without_builtin_views(app)
    t = settings.topic

    def table(name: str) -> ModelTable:
        tbl = ModelTable(
            app,
            name=name,
            default=None,
            beacon=app.tables.beacon,
            partitions=settings.partitions,
            # faust derives the changelog codecs from these types: JSON keys, raw bytes values.
            key_type=str,
            value_type=bytes,
            extra_topic_configs={"max.message.bytes": str(MAX_STATE_BYTES)},
        )
        return app.tables.add(tbl)  # type: ignore[return-value]

    return Wiring(
        app=app,
        settings=settings,
        monitored=app.topic(*(t(n) for n in MONITORED_TOPICS), **RAW),
        requests=app.topic(t(RETRAIN_REQUESTS), **RAW),
        results=app.topic(t(RETRAIN_RESULTS), **RAW),
        deployments=app.topic(t(DEPLOYMENTS), **RAW),
        dead_letters=app.topic(t(DEAD_LETTERS), **RAW),
        monitors=table("monitors"),
        retrains=table("retrains"),
    )
