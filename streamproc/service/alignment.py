"""The predictions and labels topics applied in record-time order while a worker catches up.

The rule is the core's (:class:`~streamproc.core.alignment.RecordTimeAlignment`). This keeps,
per topic and partition, the fetched records that must wait (in order, each with a reference so
that faust does not commit it), hands out the records to apply in merged order, and pauses
fetching a topic partition while some of its records wait, through
:func:`~streamproc.service.faust_compat.hold`.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from faust.types import TP

from streamproc.core.alignment import SIDES, RecordTimeAlignment
from streamproc.service.faust_compat import committed_offsets, fetched_ahead, forget_holds, hold

log = logging.getLogger(__name__)

__all__ = ["MAX_WAITING", "MAX_WAIT_S", "TopicAlignment"]

# Bounds on what waits, whatever the record times say: a record waits at most this long (a
# record far in the future, from a producer's clock glitch, would otherwise hold its topic
# partition until the other topic caught up entirely), and past this many records waiting
# (one fetch of small records, fetched before a pause took effect), the oldest go.
MAX_WAIT_S = 60.0
MAX_WAITING = 20_000


class TopicAlignment:
    """Records of the two topics in, records to apply out, in record-time order per partition.

    Parameters
    ----------
    consumer : faust Consumer
        Read for highwaters; its partitions are paused through ``faust_compat.hold``.
    topics : dict
        The topic name on the cluster of each side (``"predictions"``, ``"labels"``).
    lead_s : float
        ``RecordTimeAlignment``'s lead (``STREAMPROC_LABEL_LEAD_S``).
    gauge : prometheus Gauge, optional
        Set to the number of partitions paused.
    """

    def __init__(
        self,
        consumer: Any,
        topics: dict[str, str],
        lead_s: float,
        gauge: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consumer = consumer
        self.topics = topics
        self.rule = RecordTimeAlignment(lead_s=lead_s)
        self.gauge = gauge
        self.clock = clock
        # (side, partition) -> (event, clock when it came), in order
        self.waiting: dict[tuple[str, int], deque[tuple[Any, float]]] = {}
        self.count = 0  # records waiting
        self.forced = 0  # records applied past MAX_WAIT_S or MAX_WAITING
        self._paused: frozenset[tuple[str, int]] = frozenset()
        self._enabled: bool | None = None  # whether this faust lets partitions be paused

    def offer(self, side: str, event: Any) -> Iterator[tuple[str, Any]]:
        """A fetched record (faust event) of ``side``; yields ``(side, event)`` of the records
        to apply now, in order: this one and others that waited, or none if it must wait.
        Each carries a reference the caller drops (:meth:`applied`) once it holds the event."""
        if self._enabled is None:
            self._enabled = hold(self.consumer, ())
        msg = event.message
        msg.incref()
        now = self.clock()
        self.waiting.setdefault((side, msg.partition), deque()).append((event, now))
        self.count += 1
        other = SIDES[1 - SIDES.index(side)]
        if not self.rule.knows(other, msg.partition):
            self.rule.expect(other, msg.partition, self._unread(other, msg.partition), now)
        return self._drain(msg.partition, now)

    def has_waiting(self) -> bool:
        return self.count > 0

    @staticmethod
    def applied(event: Any) -> None:
        """The caller holds ``event`` now: drop the reference :meth:`offer` took."""
        event.message.decref()

    def due(self) -> Iterator[tuple[str, Any]]:
        """Records whose wait ended (the other topic stalled, say), then pause exactly the
        topic partitions with records waiting."""
        now = self.clock()
        for partition in sorted({p for (_, p), q in self.waiting.items() if q}):
            yield from self._drain(partition, now)
        for key in [key for key, q in self.waiting.items() if not q]:
            del self.waiting[key]
        self._pause(set(self.waiting))

    def forget(self) -> None:
        """A rebalance: faust fetches every partition again from its last commit (the waiting
        records among them: this copy of each keeps its reference, so it is never committed)
        and resumes them all; start over."""
        self.rule.forget()
        self.waiting.clear()
        self.count = 0
        self._paused = frozenset()
        forget_holds(self.consumer)
        if self.gauge is not None:
            self.gauge.set(0)

    def _drain(self, partition: int, now: float) -> Iterator[tuple[str, Any]]:
        queues = [self.waiting.get((side, partition)) or deque() for side in SIDES]
        while True:
            for k, side in enumerate(SIDES):
                queue, other = queues[k], queues[1 - k]
                if not queue:
                    continue
                event, came = queue[0]
                msg = event.message
                other_ts = other[0][0].message.timestamp if other else None
                if self._goes(side, partition, msg.timestamp, other_ts, now, came):
                    queue.popleft()
                    self.count -= 1
                    self.rule.applied(side, partition, msg.timestamp, self._backlog(msg), now)
                    yield side, event
                    break
            else:
                return  # neither may go (at most one topic has records waiting)

    def _goes(
        self, side: str, partition: int, ts: float, other_ts: float | None, now: float, came: float
    ) -> bool:
        if not self._enabled:  # without pauses nothing would bound what waits: never wait
            return True
        other = SIDES[1 - SIDES.index(side)]
        fetched = other_ts is None and fetched_ahead(
            self.consumer, TP(self.topics[other], partition)
        )
        if self.rule.may_apply(side, partition, ts, other_ts, now, fetched):
            return True
        if now - came < MAX_WAIT_S and self.count <= MAX_WAITING:
            return False
        self.forced += 1
        if self.forced in (1, 10, 100, 1000) or self.forced % 10_000 == 0:
            log.warning(
                "%s[%d]: a record waited %.0f s with %d waiting; applied out of record-time "
                "order (%d so far): a producer clock far ahead of the other topic's? set "
                "STREAMPROC_LABEL_LEAD_S to the skew", self.topics[side], partition,
                now - came, self.count, self.forced,
            )  # fmt: skip
        return True

    def _pause(self, keys: set[tuple[str, int]]) -> None:
        if keys == self._paused or not self._enabled:
            return
        hold(self.consumer, {TP(self.topics[side], p) for side, p in keys})
        log.debug("partitions paused to align record times: %s", sorted(keys))
        self._paused = frozenset(keys)
        if self.gauge is not None:
            self.gauge.set(len(keys))

    def _unread(self, side: str, partition: int) -> int | None:
        """Records of a topic partition not yet seen after its last commit (None: unknown;
        aiokafka knows a partition's highwater from its first fetch on)."""
        tp = TP(self.topics[side], partition)
        try:
            if tp not in self.consumer.assignment():
                return 0  # another worker's (topics not co-assigned): nothing to wait for
            highwater = self.consumer.highwater(tp)
        except Exception:  # not started
            return None
        if highwater is None:
            return None
        return max(int(highwater) - (committed_offsets(self.consumer).get(tp) or 0), 0)

    def _backlog(self, msg: Any) -> int:
        """Records of the message's partition after it, as far as the consumer knows (0 when
        it does not know: nothing waits for an unknown backlog)."""
        try:
            highwater = self.consumer.highwater(msg.tp)
        except Exception:  # not assigned any more, or not fetched yet: unknown
            return 0
        return max(int(highwater or 0) - msg.offset - 1, 0)
