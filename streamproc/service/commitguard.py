"""Commits never pass what this worker applied: the guard between faust's acks and the broker.

faust commits, per partition, up to the first hole in its list of acked offsets. Not every
offset in that list was applied: faust acks a record its stream skips (fetched before a
rebalance, or while its flow was stopped), and it counts a jump in a partition's offsets as
acked (a "gap"). After rebalances under load such acks reached the group's committed offsets
while the records were never applied, and faust did not fetch them again: a rebalance test
lost 524 of 3,290 predictions, committed, without a word (issue 17).

So a commit of a monitored partition is held to the records this worker's checkpoints have
released there in the current generation (applied, state written), or to the committed
offset faust already knows. What faust counted beyond that usually arrives soon (a
partition fetched again after an assignment): the releases move on. If they have not moved
by the next look (:meth:`CommitGuard.look`, at each watchdog look), the records are fetched
again from the limit (a rewind). Records applied already are recognised by their offsets in
the model's state (:meth:`streamproc.core.monitor.Monitor.accept`), so a rewind is
idempotent.

No faust import here: the wiring (``service/faust_compat.guard_commits``) calls it with
faust's offsets.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Mapping
from typing import NamedTuple

log = logging.getLogger(__name__)

__all__ = ["Clamped", "CommitGuard"]


class Clamped(NamedTuple):
    """What may be committed now, and the partitions held back (partition -> offset)."""

    allowed: dict[Hashable, int]
    held: dict[Hashable, int]


class CommitGuard:
    """Per partition, the next offset after the last record released in this generation.

    Partitions are ``(topic, partition)`` tuples (faust's ``TP`` is one); only those of
    ``topics`` are guarded. Offsets are Kafka's: a commit names the next record to read.

    >>> guard = CommitGuard(["predictions"])
    >>> for offset in range(10):
    ...     guard.released(("predictions", 0), offset, generation=3)
    >>> guard.clamp({("predictions", 0): 25}, {("predictions", 0): 4}, generation=3)
    Clamped(allowed={('predictions', 0): 10}, held={('predictions', 0): 10})
    >>> guard.look(3)  # the first look after the hold: the releases get a look's time to move
    {}
    >>> guard.look(3)  # they did not: fetch the partition again from offset 10
    {('predictions', 0): 10}
    >>> guard.clamp({("labels", 1): 99}, {}, generation=3)  # not guarded
    Clamped(allowed={('labels', 1): 99}, held={})
    """

    def __init__(self, topics: Iterable[str]) -> None:
        self.topics = frozenset(topics)
        self.generation = -1
        self._next: dict[Hashable, int] = {}
        # held partition -> (limit, offset faust wanted, releases' next offset at the last look)
        self._held: dict[Hashable, tuple[int, int, int | None]] = {}
        self.rewinds = 0  # partitions fetched again since start

    def _at(self, generation: int) -> None:
        """Move to ``generation`` if it is another one (newer, or a group created anew)."""
        if generation != self.generation:
            # A new assignment: what was released before may have been taken over and
            # overwritten by another worker's state; only this generation's releases count,
            # and faust fetches every partition again from its committed offset.
            self.generation = generation
            self._next.clear()
            self._held.clear()

    def released(self, tp: Hashable, offset: int, generation: int) -> None:
        """A record applied and its state written (a checkpoint released it).

        ``generation`` is the record's, which is the group's current one: the drift agent
        holds only records of the current generation, and a revocation drops what it holds.
        """
        self._at(generation)
        if offset + 1 > self._next.get(tp, -1):
            self._next[tp] = offset + 1

    def clamp(
        self,
        wanted: Mapping[Hashable, int],
        committed: Mapping[Hashable, int | None],
        generation: int,
    ) -> Clamped:
        """What faust ``wanted`` to commit, held to what was released.

        Parameters
        ----------
        wanted
            Partition -> offset faust is about to commit.
        committed
            Partition -> the committed offset faust knows (None or absent while an
            assignment is under way: nothing is allowed past it then).
        generation
            The consumer group generation now.
        """
        self._at(generation)
        allowed: dict[Hashable, int] = {}
        held: dict[Hashable, int] = {}
        for tp, offset in wanted.items():
            if tp[0] not in self.topics:  # type: ignore[index]
                allowed[tp] = offset
                continue
            known = committed.get(tp)
            limit = max(self._next.get(tp, -1), -1 if known is None else known)
            if offset <= limit:
                allowed[tp] = offset
                continue
            if limit < 0:
                continue  # during an assignment: faust seeks to the committed offset itself
            if known is None or limit > known:
                allowed[tp] = limit
            held[tp] = limit
            before = self._held.get(tp)
            self._held[tp] = (limit, max(offset, before[1] if before else offset), None)
        return Clamped(allowed, held)

    def look(self, generation: int) -> dict[Hashable, int]:
        """The held partitions whose releases did not move since the last look: fetch each
        again from the offset returned (and forget them here). ``generation``: the group's
        current one (holds of an earlier one are dropped)."""
        self._at(generation)
        rewind: dict[Hashable, int] = {}
        for tp, (limit, wanted, at_last) in list(self._held.items()):
            now = self._next.get(tp, -1)
            if now >= wanted:
                del self._held[tp]  # everything faust counted has been applied since
            elif at_last is not None and now <= at_last:
                del self._held[tp]
                rewind[tp] = offset = max(limit, now)
                self.rewinds += 1
                log.warning(
                    "%s: faust counted the records up to offset %d as done, but this worker "
                    "applied them only up to %d and none since the last look; fetching them "
                    "again from %d (rewind %d since start; records applied before are skipped)",
                    tp, wanted, offset, offset, self.rewinds,
                )  # fmt: skip
            else:
                self._held[tp] = (limit, wanted, now)
        return rewind
