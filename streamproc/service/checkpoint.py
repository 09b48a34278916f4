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
from streamproc.service.commits import CommitGap

log = logging.getLogger(__name__)

__all__ = ["Checkpointer"]

MAX_HELD = 50_000  # events; checkpoint sooner rather than hold unbounded memory


class Checkpointer:
    """Held events, the partition of each touched model, and the lock a checkpoint takes."""

    def __init__(
        self, w: Wiring, monitors: Monitors, every_s: float, commits: CommitGap | None = None
    ) -> None:
        self.w = w
        self.commits = commits
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

    async def checkpoint(self) -> None:
        """Snapshots of changed models -> changelog (flushed) -> release the held events.

        The caller holds :attr:`lock`, so no batch is half-applied.
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
        released = self.release()
        log.debug("checkpoint: %d models, %d of %d events released", len(dirty), released,
                  len(self.held))  # fmt: skip
        self.held.clear()
        self.last = time.monotonic()

    def release(self) -> int:
        """Ack the held events: their state is written.

        A revocation checkpoint acks too, after faust has cleared its commit bookkeeping for
        every revoked partition (kept ones included, eager rebalancing): its acks start the
        next generation's lists. For a kept partition the same offsets, fetched again from the
        last commit, are then not listed twice (faust's ack index already has them); for a
        partition that moved, faust discards the commit ("Discarded commit for revoked
        partitions"). The duplicates of issue 17 came from faust's gap tracking during its
        seek after an assignment (:mod:`streamproc.service.faust_compat`), not from here.
        """
        consumer, sensors = self.w.app.consumer, self.w.app.sensors
        released = 0
        for event in self.held:
            msg = event.message
            released += 1
            if msg.ack(consumer):
                sensors.on_message_out(msg.tp, msg.offset, msg)
        return released
