"""How far the group's committed offsets trail what this worker applied, per source partition.

The replay bound of a crash (README, "Delivery and state") is the distance from the committed
offset to the last record applied. After a rebalance faust's commit bookkeeping once left it at
thousands of records for minutes while the worker idled (issue 17), and nothing said so: the
stall watchdog only sees commits that do not move at all. So every applied record's offset is
noted here, and at each watchdog look (which reads the committed offsets from the broker) two
gauges are set per assigned source partition:

- ``streamproc_uncommitted_records``: next offset after the last record applied, minus the
  committed offset;
- ``streamproc_uncommitted_age_seconds``: how long ago the oldest applied but uncommitted
  record was applied (0 when everything applied is committed).

When the age stays above ``bound_s`` (``STREAMPROC_COMMIT_GAP_S``) a warning is logged, once per
episode, with the partition, the offsets and the gap; another line says when it is over. Labels
are bounded: the source topics times their partitions.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from typing import Any, NamedTuple

from prometheus_client import CollectorRegistry, Gauge

log = logging.getLogger(__name__)

__all__ = ["CommitGap", "PartitionGap"]

MAX_SAMPLES = 4096  # per partition; at one sample per checkpoint that is hours of them


class PartitionGap(NamedTuple):
    """One partition at one look: offsets, the gap in records and its age in seconds."""

    applied: int  # next offset after the last record applied
    committed: int
    records: int
    age_s: float


class CommitGap:
    """Applied offsets per partition (:meth:`note`), compared with commits (:meth:`observe`).

    ``note`` runs on every applied record and costs a dict write; samples (time, next offset)
    are kept at most once per ``sample_s`` per partition, so the age is known to ``sample_s``.

    >>> gap = CommitGap(bound_s=30.0, registry=CollectorRegistry())
    >>> for offset in range(100):
    ...     gap.note(("predictions", 0), offset, now=10.0)
    >>> gap.observe({("predictions", 0): 40}, now=25.0)[("predictions", 0)]
    PartitionGap(applied=100, committed=40, records=60, age_s=15.0)
    >>> gap.observe({("predictions", 0): 100}, now=26.0)[("predictions", 0)].records
    0
    """

    def __init__(
        self, bound_s: float, registry: CollectorRegistry | None = None, sample_s: float = 0.5
    ) -> None:
        self.bound_s = bound_s
        self.sample_s = sample_s
        self.next_offset: dict[Any, int] = {}
        self.samples: dict[Any, deque[tuple[float, int]]] = {}
        self.warned: set[Any] = set()
        self.records = Gauge(
            "streamproc_uncommitted_records",
            "Records this worker applied that the group has not committed, by source partition.",
            ["topic", "partition"], registry=registry,
        )  # fmt: skip
        self.age = Gauge(
            "streamproc_uncommitted_age_seconds",
            "Seconds since the oldest applied but uncommitted record was applied, by partition.",
            ["topic", "partition"], registry=registry,
        )  # fmt: skip

    def note(self, tp: Any, offset: int, now: float) -> None:
        """Record ``offset`` of partition ``tp`` (a ``(topic, partition)`` tuple) as applied."""
        nxt = offset + 1
        if nxt <= self.next_offset.get(tp, -1):
            return  # a redelivered record: applied before
        self.next_offset[tp] = nxt
        samples = self.samples.get(tp)
        if samples is None:
            samples = self.samples[tp] = deque(maxlen=MAX_SAMPLES)
        if samples and now - samples[-1][0] < self.sample_s:
            samples[-1] = (samples[-1][0], nxt)
        else:
            samples.append((now, nxt))

    def forget(self, tps: Any) -> None:
        """Partitions that left this worker: another one reports them now."""
        for tp in tps:
            key = (tp[0], tp[1])
            self.next_offset.pop(key, None)
            self.samples.pop(key, None)
            self.warned.discard(key)
            for gauge in (self.records, self.age):
                with contextlib.suppress(KeyError):  # never set: nothing applied here
                    gauge.remove(key[0], str(key[1]))

    def observe(self, committed: dict[Any, int], now: float) -> dict[Any, PartitionGap]:
        """Compare the group's ``committed`` offsets with what was applied; set gauges, warn."""
        out: dict[Any, PartitionGap] = {}
        for tp, done in committed.items():
            key = (tp[0], tp[1])
            applied = self.next_offset.get(key)
            if applied is None:
                continue  # nothing applied here since this worker got the partition
            samples = self.samples[key]
            while len(samples) > 1 and samples[0][1] <= done:
                samples.popleft()  # fully committed
            records = max(applied - done, 0)
            age = now - samples[0][0] if records and samples else 0.0
            gap = out[key] = PartitionGap(applied, done, records, max(age, 0.0))
            self.records.labels(key[0], str(key[1])).set(gap.records)
            self.age.labels(key[0], str(key[1])).set(gap.age_s)
            self._warn(key, gap)
        return out

    def _warn(self, key: Any, gap: PartitionGap) -> None:
        if gap.age_s > self.bound_s:
            if key not in self.warned:
                self.warned.add(key)
                log.warning(
                    "%s[%d]: committed offset %d trails the applied %d by %d records for %.0f s "
                    "(bound STREAMPROC_COMMIT_GAP_S=%.0f s): a crash now would replay them all; "
                    "if it persists, restart the worker (README, 'Delivery and state')",
                    key[0], key[1], gap.committed, gap.applied, gap.records, gap.age_s,
                    self.bound_s,
                )  # fmt: skip
        elif key in self.warned:
            self.warned.discard(key)
            log.warning(
                "%s[%d]: commits caught up again (%d records uncommitted, %.0f s)",
                key[0], key[1], gap.records, gap.age_s,
            )  # fmt: skip
