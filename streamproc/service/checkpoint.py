"""Checkpoints: monitor state to the changelog first, then the offsets of the events it applied.

Writing every touched model's snapshot after every batch made the state writes, not the
detectors, the worker's cost (a busy model's snapshot is ~340 KB; see bench/throughput.py).
Instead the drift agent holds on to its events (an extra reference on each message, so faust
does not mark it committable) and checkpoints every ``every_s`` seconds: the snapshots of the
models changed since the last checkpoint go to the table, the producer is flushed, and only
then are the held events released for commit.

The rule that keeps this correct: *state may run ahead of committed offsets, never behind*.
After a crash the new owner restores the last checkpoint and is re-sent every event after the
last commit; events the checkpoint already applied are recognised by their offsets
(:meth:`ModelMonitor.accept`) and skipped. A rebalance checkpoints first (faust awaits the
revocation handler before the group moves on), so a partition never changes hands with
unflushed state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from streamproc.core.router import Monitors
from streamproc.service.app import Wiring
from streamproc.service.commitguard import CommitGuard
from streamproc.service.commits import CommitGap

log = logging.getLogger(__name__)

__all__ = ["Checkpointer"]

MAX_HELD = 50_000  # events; checkpoint sooner rather than hold unbounded memory


class Checkpointer:
    """Held events, the partition of each touched model, and the lock a checkpoint takes."""

    def __init__(
        self,
        w: Wiring,
        monitors: Monitors,
        every_s: float,
        commits: CommitGap | None = None,
        guard: CommitGuard | None = None,
    ) -> None:
        self.w = w
        self.commits = commits
        self.guard = guard
        self.monitors = monitors
        self.every_s = every_s
        self.held: list[Any] = []
        self.lock = asyncio.Lock()
        self.last = time.monotonic()

    @property
    def partition_of(self) -> dict[str, int]:
        """The source partition of each model's events, where its state is written: the
        ``monitors`` table's own map (one map, set by the drift agent as it applies events)."""
        return self.w.monitors.partition_of

    def hold(self, event: Any) -> None:
        """Keep ``event`` uncommitted until the next checkpoint."""
        msg = event.message
        msg.incref()
        self.held.append(event)
        if self.commits is not None:
            self.commits.note((msg.topic, msg.partition), msg.offset, time.monotonic())

    def due(self) -> bool:
        return bool(self.held) and (
            time.monotonic() - self.last >= self.every_s or len(self.held) >= MAX_HELD
        )

    def save_model(self, model_id: str) -> None:
        """Write one model's state now (before a request that the retrainer will act on)."""
        if model_id in self.monitors.live and model_id in self.partition_of:
            snapshot = self.monitors.snapshot(model_id)  # within the changelog's record limit
            if snapshot is not None:
                self.w.monitors.put(model_id, snapshot, self.partition_of[model_id])

    async def checkpoint(self, ack: bool = True) -> None:
        """Snapshots of changed models -> changelog (flushed) -> release the held events.

        The caller holds :attr:`lock`, so no batch is half-applied. ``ack=False`` (at a
        revocation) writes the state but does not ack: see :meth:`release`.
        """
        dirty = self.monitors.drain_dirty()
        for model_id, snapshot in dirty.items():
            partition = self.partition_of.get(model_id)
            if partition is None:  # its first record failed inside the core: nothing to save
                log.error("model %s: no partition known; its state was not saved", model_id)
                continue
            self.w.monitors.put(model_id, snapshot, partition)
        await self.w.app.producer.flush()
        # flush() may return with writes still queued; the acks are what count.
        await self.w.monitors.written()
        released = self.release() if ack else 0
        log.debug("checkpoint: %d models, %d of %d events released", len(dirty), released,
                  len(self.held))  # fmt: skip
        self.held.clear()
        self.last = time.monotonic()

    def release(self) -> int:
        """Ack the held events: their state is written; tell the commit guard.

        A revocation checkpoint does not ack: faust has cleared its commit bookkeeping for
        every revoked partition by then (kept ones included, eager rebalancing), so acks
        would start the next generation's lists with records of the last one; faust fetches
        every partition again from its committed offset, and the records applied already are
        recognised by their offsets and acked then. (For a partition that moved, faust
        discarded such a commit anyway: "Discarded commit for revoked partitions".)
        """
        consumer, sensors, guard = self.w.app.consumer, self.w.app.sensors, self.guard
        released = 0
        for event in self.held:
            msg = event.message
            released += 1
            if msg.ack(consumer):
                sensors.on_message_out(msg.tp, msg.offset, msg)
            if guard is not None and msg.generation_id is not None:
                guard.released((msg.topic, msg.partition), msg.offset, msg.generation_id)
        return released
