"""A stalled worker says so: records wait on its partitions, and its commits do not move.

faust-streaming has open reports of workers that, after a rebalance, stop fetching some
partitions with nothing logged (faust issues #175, #629); a crashed agent already stops the
worker, but a stall would sit on its partitions for ever. Every ``every_s`` the watchdog asks the
broker for the end offsets and the group's committed offsets of the source partitions this
worker is assigned. When some of them have records waiting and the commits have not moved for
``stall_s``, it logs an error with every task's stack, and ``/health`` answers 503, so a
liveness probe (deploy/kubernetes) restarts the worker, which resumes from its last checkpoint.
The same looks feed :class:`~streamproc.service.commits.CommitGap`: commits that move, but trail
what the worker applied (issue 17), are reported there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streamproc.core.topics import SOURCE_TOPICS
from streamproc.service.app import Wiring
from streamproc.service.commitguard import CommitGuard
from streamproc.service.commits import CommitGap
from streamproc.service.faust_compat import (
    acked_offsets,
    active_partitions,
    buffered_partitions,
    committed_offsets,
    paused_partitions,
    read_offsets,
    rewind,
)

log = logging.getLogger(__name__)

__all__ = ["Watchdog"]


class Watchdog:
    """Progress of this worker's source partitions; ``stalled`` says since when it has none."""

    def __init__(
        self,
        stall_s: float,
        dump: Callable[[], None] = lambda: None,
        commits: CommitGap | None = None,
        guard: CommitGuard | None = None,
    ) -> None:
        self.stall_s = stall_s
        self.dump = dump
        self.commits = commits  # applied vs committed offsets, judged on the same looks
        self.guard = guard  # partitions whose commits it holds are fetched again from a look
        self.committed: dict[Any, int] = {}
        self.moved = time.monotonic()
        self.stalled: dict[str, Any] | None = None

    def observe(self, waiting: dict[Any, int], committed: dict[Any, int], now: float) -> None:
        """One look: ``waiting`` records and ``committed`` offsets per assigned partition."""
        if not any(waiting.values()) or committed != self.committed:
            self.moved = now
            if self.stalled:
                log.warning("worker progresses again after a stall")
            self.stalled = None
        self.committed = committed
        if self.stalled is None and now - self.moved >= self.stall_s:
            self.stalled = {
                "for_s": round(now - self.moved, 1),
                "waiting": {f"{tp.topic}[{tp.partition}]": n for tp, n in waiting.items() if n},
            }
            log.error(
                "worker stalled: %s records wait on its partitions and nothing was committed "
                "for %.0f s; /health now fails so the worker gets restarted (task stacks follow)",
                sum(waiting.values()),
                now - self.moved,
            )
            self.dump()


async def look(
    bootstrap: str, group: str, tps: list[TopicPartition], security: dict[str, Any]
) -> tuple[dict[Any, int], dict[Any, int]]:
    """Records waiting (end minus committed offset) and committed offsets of ``tps``."""
    if not tps:
        return {}, {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, **security)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security)
    await consumer.start()
    await admin.start()
    try:
        ends = await consumer.end_offsets(tps)
        meta = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
        await consumer.stop()
    committed = {tp: (meta[tp].offset if tp in meta and meta[tp].offset >= 0 else 0) for tp in tps}
    return {tp: max(ends[tp] - committed[tp], 0) for tp in tps}, committed


def install_watchdog(w: Wiring, dog: Watchdog, bootstrap: str, every_s: float = 30.0) -> None:
    sources = {w.settings.topic(t) for t in SOURCE_TOPICS}
    group = w.settings.topic_prefix + w.settings.app_id
    security = w.settings.security.aiokafka_kwargs()

    orphans_seen: set[Any] = set()

    @w.app.timer(interval=every_s)
    async def watch() -> None:
        consumer = w.app.consumer
        assigned = {tp for tp in consumer.assignment() if tp.topic in sources}
        refetch_orphans(consumer, assigned, orphans_seen)
        if dog.guard is not None:
            rewind(consumer, dog.guard.look(w.app.consumer_generation_id))
        dups = ack_duplicates(consumer, assigned)
        if dups:
            log.warning(
                "faust's commit bookkeeping holds offsets acked twice (%s): each holds the "
                "commit back one commit interval (issue 17); please report it with this log",
                ", ".join(f"{tp.topic}[{tp.partition}]: {n}" for tp, n in sorted(dups.items())),
            )
        tps = [TopicPartition(tp.topic, tp.partition) for tp in assigned]
        try:
            waiting, committed = await asyncio.wait_for(
                look(bootstrap, group, tps, security), every_s
            )
        except Exception as exc:
            log.warning("watchdog could not read offsets from the broker: %r", exc)
            return
        now = time.monotonic()
        if any(waiting.values()) and committed == dog.committed:
            log.info(
                "no commit for %.0f s with %d records waiting (rebalancing=%s, %s)",
                now - dog.moved,
                sum(waiting.values()),
                w.app.rebalancing,
                fetch_state(consumer, assigned),
            )
        dog.observe(waiting, committed, now)
        if dog.commits is not None:
            dog.commits.observe(committed, now)


def fetch_state(consumer: Any, assigned: set[Any]) -> str:
    """Which assigned partitions faust fetches, has paused, or holds back for a full buffer."""
    active = set(active_partitions(consumer) or ())
    paused = paused_partitions(consumer)
    buffered = buffered_partitions(consumer)
    return (
        f"{len(assigned & active)} fetched, {len(assigned & paused)} paused, "
        f"{len(assigned & buffered)} held for a full buffer, "
        f"{len(assigned - active - paused - buffered)} in none of these"
    )


def consumer_state(consumer: Any) -> str:
    """Per assigned partition, what faust's consumer knows: one line each, for a stall's dump.

    Whether faust fetches it (active, paused, held for a full buffer), the offset it last read
    (records below it are dropped as already read), the offset it last committed, and its
    acked list (length, lowest offset). Read only, from faust 0.15's private attributes; an
    attribute another version lacks shows as ``?``.
    """
    active = active_partitions(consumer) or set()
    paused = paused_partitions(consumer)
    buffered = buffered_partitions(consumer)
    read = read_offsets(consumer)
    committed = committed_offsets(consumer)
    acked = acked_offsets(consumer)
    lines = []
    try:
        assigned = sorted(consumer.assignment())
    except Exception as exc:  # not started, or stopped: say so rather than fail the dump
        return f"no assignment to show: {exc!r}"
    for tp in assigned:
        where = [n for n, s in (("active", active), ("paused", paused), ("buffered", buffered))
                 if tp in s] or ["none"]  # fmt: skip
        ack = acked.get(tp) or []
        lines.append(
            f"{tp.topic}[{tp.partition}]: {'+'.join(where)}, read {read.get(tp, '?')}, "
            f"committed {committed.get(tp, '?')}, acked {len(ack)} from {min(ack, default='-')}"
        )
    return "\n".join(lines)


def ack_duplicates(consumer: Any, assigned: set[Any]) -> dict[Any, int]:
    """Offsets faust holds twice in its list of acked offsets, per assigned partition.

    faust commits up to the end of the first run of consecutive acked offsets, so every
    duplicate costs one commit interval; they appeared after every assignment through faust's
    gap tracking (issue 17, fixed in :mod:`streamproc.service.faust_compat`). Read only, from
    faust 0.15's ``_acked``.
    """
    acked = acked_offsets(consumer)
    out = {}
    for tp in assigned:
        offsets = acked.get(tp)
        if offsets and len(offsets) != len(set(offsets)):
            out[tp] = len(offsets) - len(set(offsets))
    return out


def refetch_orphans(consumer: Any, assigned: set[Any], seen: set[Any]) -> None:
    """Put back partitions faust neither fetches, nor paused, nor holds for a full buffer.

    Such a partition is never fetched again (the symptom of faust issue #629). One seen on two
    looks in a row is added back to faust's fetch set.
    """
    active = active_partitions(consumer)
    if active is None:
        seen.clear()
        return
    paused = paused_partitions(consumer)
    buffered = buffered_partitions(consumer)
    orphans = assigned - set(active) - paused - buffered
    again = orphans & seen
    if again:
        log.warning("faust stopped fetching %s; fetching them again", sorted(map(str, again)))
        active.update(again)
    seen.clear()
    seen.update(orphans - again)
