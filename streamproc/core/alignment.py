"""Record-time alignment of the predictions and labels topics, for a worker catching up.

A worker that catches up on a backlog reads the predictions and labels topics side by side, at
whatever pace their records allow, not in the order they were written. The join is bounded per
model (``join.max_pending`` predictions waiting for labels, ``join.max_early`` labels waiting for
predictions), so whichever topic ran ahead overflowed its side: in a live run (750k events of
both topics there before the worker started, batched records), models lost up to 40% of their
labels as early labels, or, with the labels read later, 40% of their predictions as pending.

The two topics are co-partitioned (keyed by model id): partition ``p`` of each holds the same
models. Kafka Streams processes, of a task's partitions, the buffered record with the lowest
timestamp first ("timestamp synchronization", KIP-353); this is the same rule per partition
number ``p``, over the records a worker has fetched of the two topics:

- a record goes when its time is at most the other topic's next fetched record's time (plus
  ``lead_s``);
- when none of the other topic is fetched, it goes if that topic has no backlog on ``p`` (live
  traffic), made no progress for ``stall_s`` seconds while the client held none of its records
  (records fetched but not handed over yet wait their turn: not a stall), or is no further
  behind than ``lead_s``;
  else it waits, and the records of its topic after it wait too. A topic not yet seen on ``p``
  is expected (:meth:`RecordTimeAlignment.expect`) when it has records to read, or when that is
  not known yet (Kafka Streams, KIP-695, likewise waits to know a partition's lag).

The worker pauses fetching a topic's partition while some of its records wait, so what waits is
bounded by what was fetched before. Record times are the producers' (Kafka's ``CreateTime``):
producers whose clocks differ by more than ``lead_s`` make one topic wait for the other, while
catching up, by that difference.

Examples
--------
>>> a = RecordTimeAlignment(lead_s=0.0, stall_s=10.0)
>>> a.applied(PREDICTIONS, 0, record_ts=100.0, backlog=5000, now=1.0)
>>> a.may_apply(LABELS, 0, record_ts=99.0, other_next_ts=None, now=1.0)
True
>>> a.may_apply(LABELS, 0, record_ts=160.0, other_next_ts=None, now=1.0)  # ahead: waits
False
>>> a.may_apply(LABELS, 0, record_ts=160.0, other_next_ts=150.0, now=1.0)  # 150 goes first
False
>>> a.may_apply(PREDICTIONS, 0, record_ts=150.0, other_next_ts=160.0, now=1.0)
True
>>> a.may_apply(LABELS, 0, record_ts=160.0, other_next_ts=None, now=11.0)  # stalled 10 s
True
>>> a.may_apply(LABELS, 0, record_ts=160.0, other_next_ts=None, now=11.0, other_fetched=True)
False
>>> a.expect(LABELS, 1, backlog=None, now=20.0)  # not fetched yet: predictions wait for it
>>> a.may_apply(PREDICTIONS, 1, record_ts=5.0, other_next_ts=None, now=20.0)
False
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from streamproc.core.topics import LABELS, PREDICTIONS

__all__ = ["SIDES", "RecordTimeAlignment"]

SIDES: Final = (PREDICTIONS, LABELS)  # the topics aligned, in the order ties are applied
# A backlog of one record is none: a transaction's commit marker takes the offset after its
# records, so a caught-up partition of a transactional producer shows one (found in review:
# live records waited for the other topic's next record, up to the stall, on each marker).
CAUGHT_UP: Final = 1
_UNKNOWN: Final = 2**62  # a backlog not known yet counts as one
_OTHER: Final = {PREDICTIONS: LABELS, LABELS: PREDICTIONS}


@dataclass
class _Side:
    """One topic on one partition number: the newest record time applied (s), the records
    still to read after the last one applied, and when (caller's clock, s) one was."""

    newest_ts: float | None = None
    backlog: int = 0
    moved_at: float = float("-inf")


class RecordTimeAlignment:
    """Whether a record of one of the two topics may be applied now or must wait for the other.

    Parameters
    ----------
    lead_s : float
        How far (s of record time) one topic may run ahead of the other. 0 (the default)
        follows record time strictly.
    stall_s : float
        A topic that did not move for this long (s of the caller's clock) holds nothing back.

    Raises
    ------
    ValueError
        ``lead_s`` negative or ``stall_s`` not positive.
    """

    def __init__(self, lead_s: float = 0.0, stall_s: float = 10.0) -> None:
        if not lead_s >= 0.0 or not stall_s > 0.0:
            raise ValueError(
                f"lead_s={lead_s!r}, stall_s={stall_s!r}: set lead_s >= 0 and stall_s > 0 (s)"
            )
        self.lead_s = lead_s
        self.stall_s = stall_s
        self._sides: dict[tuple[str, int], _Side] = {}

    def applied(
        self, side: str, partition: int, record_ts: float, backlog: int, now: float
    ) -> None:
        """A record of ``side`` (``"predictions"`` or ``"labels"``) on ``partition`` is
        applied: its time (s), the records of that topic partition still to read after it (0
        when unknown; at most :data:`CAUGHT_UP` is none), the caller's clock (s)."""
        s = self._sides.setdefault((side, partition), _Side())
        if s.newest_ts is None or record_ts > s.newest_ts:
            s.newest_ts = record_ts
        s.backlog = backlog
        s.moved_at = now

    def knows(self, side: str, partition: int) -> bool:
        """Whether ``side`` on ``partition`` was seen or expected since the last forget."""
        return (side, partition) in self._sides

    def expect(self, side: str, partition: int, backlog: int | None, now: float) -> None:
        """``side`` on ``partition``, not seen yet, has ``backlog`` records to read (None: not
        known yet): the other topic's records wait for its first one, for at most ``stall_s``
        from ``now``, unless its backlog is 0."""
        if (side, partition) not in self._sides:
            self._sides[side, partition] = _Side(
                float("-inf"), _UNKNOWN if backlog is None else backlog, now
            )

    def may_apply(
        self,
        side: str,
        partition: int,
        record_ts: float,
        other_next_ts: float | None,
        now: float,
        other_fetched: bool = False,
    ) -> bool:
        """Whether the next record of ``side`` on ``partition``, of time ``record_ts`` (s), may
        be applied; ``other_next_ts``: the time of the other topic's next fetched record on the
        partition, None if none is fetched. ``other_fetched``: the client holds records of the
        other topic's partition not handed over yet (it is not stalled, only waiting its
        turn). False: it waits."""
        if other_next_ts is not None:
            return record_ts <= other_next_ts + self.lead_s
        other = self._sides.get((_OTHER[side], partition))
        if other is None or other.newest_ts is None or other.backlog <= CAUGHT_UP:
            return True  # nothing of the other topic to catch up with
        if now - other.moved_at >= self.stall_s and not other_fetched:
            return True
        return record_ts <= other.newest_ts + self.lead_s

    def forget(self, partitions: Iterable[int] | None = None) -> None:
        """Drop what is known of ``partitions`` (all of them if None): after a rebalance."""
        if partitions is None:
            self._sides.clear()
            return
        drop = set(partitions)
        for key in [k for k in self._sides if k[1] in drop]:
            del self._sides[key]
