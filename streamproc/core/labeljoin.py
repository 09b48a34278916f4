"""Delayed-label join: predictions wait, bounded, for the ground truth that answers them.

Labels are matched to predictions by ``event_id``. A label may come hours later, out of order,
before its prediction (it then waits in a small buffer of its own), twice, or never. Both
buffers are bounded by a time-to-live in event time, a maximum count, and together by a maximum
of bytes (the entries' JSON size: a wide model's predictions are large, and the buffer is part of
the model's snapshot); whatever is evicted is counted, never dropped silently, and evictions to
stay within the bytes are logged as warnings (the 1st, 10th, 100th, ...).

Examples
--------
>>> join = LabelJoin(max_pending=2, ttl_s=60)
>>> join.add_prediction("a", ts=0.0, version="v1", prediction=1, features={"x": 1.0}) is None
True
>>> j = join.add_label("a", ts=5.0, label=0)
>>> (j.prediction, j.label, j.latency_s)
(1, 0, 5.0)
>>> join.add_label("zz", ts=6.0, label=1) is None  # early label: waits for its prediction
True
>>> join.add_prediction("zz", ts=7.0, version="v1", prediction=1, features={}).label
1
>>> join.counts["joined"]
2
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any, NamedTuple

import orjson

__all__ = ["EarlyLabel", "Joined", "LabelJoin", "WaitingPrediction"]

log = logging.getLogger(__name__)

_COUNTS = (
    "joined",
    "evicted_predictions",  # waited longer than the TTL or pushed out by max_pending
    "evicted_labels",  # early labels whose prediction never came
    "duplicate_labels",
    "duplicate_predictions",
    "evicted_for_bytes",  # predictions or labels pushed out by max_bytes (also counted above)
)

DEFAULT_MAX_BYTES = 3 * 1024 * 1024

# One prediction for :meth:`LabelJoin.add_predictions`: event id, ts, version, prediction, features.
PredictionRow = tuple[str, float, str, Any, Mapping[str, Any]]


class WaitingPrediction(NamedTuple):
    """A prediction waiting for its label; a snapshot keeps it as a row in field order."""

    ts: float  # event time of the prediction, seconds
    version: str  # the model version that made it
    prediction: Any
    features: Mapping[str, Any]


class EarlyLabel(NamedTuple):
    """A label that came before its prediction; a snapshot keeps it as ``[ts, label, origin]``
    (a snapshot written before ``origin`` existed has rows ``[ts, label]``)."""

    ts: float  # event time of the label, seconds
    label: Any
    origin: Any = None  # where the label came from (the caller's, JSON-serializable), or None


def _row(entry: WaitingPrediction | EarlyLabel) -> list[Any]:
    """An entry as its snapshot row: an early label without an origin is ``[ts, label]``."""
    if isinstance(entry, EarlyLabel) and entry.origin is None:
        return [entry.ts, entry.label]
    return list(entry)


def entry_bytes(event_id: str, entry: WaitingPrediction | EarlyLabel) -> int:
    """Bytes an entry takes in the snapshot: its JSON row, its key and a little framing."""
    return len(orjson.dumps(_row(entry))) + len(event_id) + 4


def row_bytes(row: PredictionRow) -> int:
    """:func:`entry_bytes` of the waiting prediction a row becomes, from the row itself (its
    tail is the entry's JSON row: half the time, where a batch sizes thousands of them)."""
    return len(orjson.dumps(row[1:])) + len(row[0]) + 4


@dataclass(frozen=True, slots=True)
class Joined:
    """A prediction with its label: one labelled example."""

    event_id: str
    version: str
    prediction: Any
    label: Any
    features: Mapping[str, Any]
    prediction_ts: float
    label_ts: float
    # The ``origin`` given with a label that came before its prediction (None otherwise): the
    # label, not the prediction that completed the pair, is what a type mismatch is about.
    early_origin: Any = None

    @property
    def latency_s(self) -> float:
        return self.label_ts - self.prediction_ts


class LabelJoin:
    """Bounded buffers of predictions waiting for labels and labels waiting for predictions.

    Parameters
    ----------
    max_pending
        Predictions kept waiting per model; the oldest go first.
    ttl_s
        Event-time seconds a prediction (or an early label) waits before it is evicted.
    max_early
        Labels kept waiting for a prediction not seen yet.
    max_bytes
        Bytes (JSON size) both buffers hold together; the oldest predictions go first, then
        the oldest early labels.
    name
        Who the buffers belong to (a model id), for the warnings.
    """

    def __init__(
        self,
        max_pending: int = 2000,
        ttl_s: float = 86400.0,
        max_early: int = 2000,
        max_bytes: int = DEFAULT_MAX_BYTES,
        name: str = "",
    ):
        self.max_pending = max_pending
        self.ttl_s = ttl_s
        self.max_early = max_early
        self.max_bytes = max_bytes
        self.name = name
        self._sizes: dict[str, int] = {}  # per pending or early entry (ids are the keys)
        self.nbytes = 0
        # Plain dicts keep insertion order, which is arrival order: eviction pops from the front.
        self._pending: dict[str, WaitingPrediction] = {}
        self._early: dict[str, EarlyLabel] = {}
        self._recent: dict[str, None] = {}  # joined ids, to tell a duplicate label from an orphan
        self._now = 0.0
        self.counts: dict[str, int] = dict.fromkeys(_COUNTS, 0)
        self.latency_sum = 0.0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def has_early(self, event_id: str) -> bool:
        """Whether a label for ``event_id`` waits for its prediction (it would join at once)."""
        return event_id in self._early

    def early_among(self, event_ids: Sequence[str]) -> list[int]:
        """The indices of ``event_ids`` whose labels wait for their predictions."""
        early = self._early
        return [i for i, e in enumerate(event_ids) if e in early] if early else []

    def add_prediction(
        self, event_id: str, ts: float, version: str, prediction: Any, features: Mapping[str, Any]
    ) -> Joined | None:
        """Hold a prediction; return the example at once if its label came first."""
        self._advance(ts)
        early = self._early.pop(event_id, None)
        if early is not None:
            self._forget_size(event_id)
            pred = WaitingPrediction(ts, version, prediction, features)
            return self._joined(event_id, pred, early.ts, early.label, early.origin)
        if event_id in self._pending or event_id in self._recent:
            self.counts["duplicate_predictions"] += 1
            return None
        self._pending[event_id] = entry = WaitingPrediction(ts, version, prediction, features)
        self._hold_size(event_id, entry)
        self._evict()
        return None

    def add_predictions(
        self, rows: Sequence[tuple[str, float, str, Any, Mapping[str, Any]]]
    ) -> None:
        """:meth:`add_prediction` for each ``(event_id, ts, version, prediction, features)`` in
        turn, none of them answered by an early label: the same buffers, bytes and counts.

        Done at once when no row is a duplicate and only the count limit evicts (event by
        event, each new prediction over ``max_pending`` pushes out the oldest: at once, the
        same oldest go, in the same order). Checked against bounds on every step: the TTL
        horizon only rises (so the oldest entries it would look at must pass the last one),
        and the bytes never exceed the buffers' plus every new row's. Else one by one.

        Raises
        ------
        ValueError
            A row's label came first (it would join): such rows go through
            :meth:`add_prediction`, which returns the example.
        """
        if not rows:
            return
        ids = [r[0] for r in rows]
        entries = [WaitingPrediction(ts, v, p, f) for _, ts, v, p, f in rows]
        sizes = [row_bytes(r) for r in rows]
        pending, early = self._pending, self._early
        now = max(self._now, max(e.ts for e in entries))
        horizon = now - self.ttl_s
        # One by one, the TTL is checked on the oldest entry after each count eviction: the
        # first ``over + 1`` predictions (held, then new) are the only ones it looks at.
        over = len(pending) + len(ids) - self.max_pending
        looked_at = islice(chain(pending.values(), entries), max(over, 0) + 1)
        if (
            len(set(ids)) == len(ids)
            and not any(i in pending or i in self._recent or i in early for i in ids)
            and all(e.ts >= horizon for e in looked_at)
            and (not early or next(iter(early.values())).ts >= horizon)
            and len(early) <= self.max_early
            and self.nbytes + sum(sizes) <= self.max_bytes
        ):
            self._now = now
            pending.update(zip(ids, entries, strict=True))
            self._sizes.update(zip(ids, sizes, strict=True))
            self.nbytes += sum(sizes)
            if over > 0:  # the oldest, listed once: popping the front one at a time rescans
                for event_id in list(islice(pending, over)):
                    del pending[event_id]
                    self.nbytes -= self._sizes.pop(event_id)
                self.counts["evicted_predictions"] += over
            return
        for event_id, ts, version, prediction, features in rows:
            if self.add_prediction(event_id, ts, version, prediction, features) is not None:
                raise ValueError(f"add_predictions: a label for {event_id!r} came first.")

    def quiet(self, rows: Sequence[PredictionRow], answered: Sequence[int]) -> bool:
        """Whether :meth:`add_prediction` on each row in turn evicts nothing but by the count
        of waiting predictions, where the rows at the indices ``answered`` answer early labels
        (they join) and the others answer none (they wait): then :meth:`add_and_join` may
        apply them at once (the joins leave the waiting predictions alone, so the same oldest
        go by count, in the same order, as :meth:`add_predictions` does at once).

        Checked against bounds: the TTL horizon only rises (every entry an eviction looks at,
        the oldest of each buffer, must pass the last horizon: every early label may become
        the oldest as the joins take the others), the bytes only grow by the waiting rows.
        """
        if not rows:
            return True
        early, pending = self._early, self._pending
        ids = [r[0] for r in rows]
        joins = {ids[i] for i in answered}
        waiting = [WaitingPrediction(*r[1:]) for r in rows if r[0] not in joins]
        horizon = max(self._now, max(r[1] for r in rows)) - self.ttl_s
        over = len(pending) + len(waiting) - self.max_pending
        looked_at = islice(chain(pending.values(), waiting), max(over, 0) + 1)
        return (
            len(set(ids)) == len(ids)
            and len(joins) == len(answered)
            and all(i in early for i in joins)
            and not any(
                r[0] in pending or r[0] in self._recent or r[0] in early
                for r in rows
                if r[0] not in joins
            )
            and len(early) <= self.max_early
            and all(e.ts >= horizon for e in looked_at)
            and all(e.ts >= horizon for e in early.values())
            and self.nbytes + sum(row_bytes(r) for r in rows if r[0] not in joins) <= self.max_bytes
        )

    def add_and_join(self, rows: Sequence[PredictionRow], answered: Sequence[int]) -> list[Joined]:
        """:meth:`add_prediction` on each row in turn, where :meth:`quiet` holds for ``rows``
        and ``answered``: the joined examples of the answered rows, in order."""
        out = []
        waiting = []
        at = set(answered)
        for i, (event_id, ts, version, prediction, features) in enumerate(rows):
            if i in at:
                early = self._early.pop(event_id)
                self._forget_size(event_id)
                pred = WaitingPrediction(ts, version, prediction, features)
                out.append(self._joined(event_id, pred, early.ts, early.label, early.origin))
            else:
                waiting.append((event_id, ts, version, prediction, features))
        self.add_predictions(waiting)  # at once: nothing is evicted
        self._now = max(self._now, max((r[1] for r in rows), default=self._now))
        return out

    def hold_early(self, rows: Sequence[tuple[str, float, Any, Any]]) -> bool:
        """:meth:`add_label` on each ``(event_id, ts, label, origin)`` in turn, none of them
        answering a waiting prediction nor seen before, when that evicts nothing: at once, and
        True; else False and nothing changed (apply them one by one).

        Checked against bounds as :meth:`quiet`: the TTL horizon only rises, the oldest entry
        of each buffer is the only one an eviction looks at, the counts and bytes only grow.
        """
        if not rows:
            return True
        early, pending = self._early, self._pending
        ids = [r[0] for r in rows]
        entries = [EarlyLabel(ts, label, origin) for _, ts, label, origin in rows]
        now = max(self._now, max(e.ts for e in entries))
        horizon = now - self.ttl_s
        first = next(iter(early.values())) if early else entries[0]
        if not (
            len(early) + len(ids) <= self.max_early
            and len(set(ids)) == len(ids)
            and not any(i in pending or i in self._recent or i in early for i in ids)
            and all(e.ts == e.ts for e in entries)  # NaN: max() would differ from one by one
            and (not pending or next(iter(pending.values())).ts >= horizon)
            and first.ts >= horizon
        ):
            return False
        try:
            sizes = [entry_bytes(i, e) for i, e in zip(ids, entries, strict=True)]
        except (TypeError, ValueError):  # not JSON (only from Python): fails on its own label
            return False
        if self.nbytes + sum(sizes) > self.max_bytes:
            return False
        self._now = now
        early.update(zip(ids, entries, strict=True))
        self._sizes.update(zip(ids, sizes, strict=True))
        self.nbytes += sum(sizes)
        return True

    def add_label(self, event_id: str, ts: float, label: Any, origin: Any = None) -> Joined | None:
        """Match a label to its prediction, or hold it (with ``origin``, returned in the
        :class:`Joined` as ``early_origin``) until the prediction arrives."""
        self._advance(ts)
        pred = self._pending.pop(event_id, None)
        if pred is not None:
            self._forget_size(event_id)
            return self._joined(event_id, pred, ts, label)
        if event_id in self._recent or event_id in self._early:
            self.counts["duplicate_labels"] += 1
            return None
        self._early[event_id] = early = EarlyLabel(ts, label, origin)
        self._hold_size(event_id, early)
        self._evict()
        return None

    def _joined(
        self,
        event_id: str,
        pred: WaitingPrediction,
        label_ts: float,
        label: Any,
        early_origin: Any = None,
    ) -> Joined:
        self.counts["joined"] += 1
        self._recent[event_id] = None
        if len(self._recent) > self.max_pending:
            del self._recent[next(iter(self._recent))]
        j = Joined(
            event_id,
            pred.version,
            pred.prediction,
            label,
            pred.features,
            pred.ts,
            label_ts,
            early_origin,
        )
        self.latency_sum += j.latency_s
        return j

    def _advance(self, ts: float) -> None:
        if ts > self._now:
            self._now = ts

    def _hold_size(self, event_id: str, entry: WaitingPrediction | EarlyLabel) -> None:
        n = self._sizes[event_id] = entry_bytes(event_id, entry)
        self.nbytes += n

    def _forget_size(self, event_id: str) -> None:
        self.nbytes -= self._sizes.pop(event_id, 0)

    def _evict(self, ttl: bool = True) -> None:
        """Evict what is past the TTL (unless ``ttl`` is False) or over the count and byte
        limits, oldest first."""
        horizon = self._now - self.ttl_s if ttl else -math.inf
        for buf, limit, counter in (
            (self._pending, self.max_pending, "evicted_predictions"),
            (self._early, self.max_early, "evicted_labels"),
        ):
            while buf:
                oldest = next(iter(buf))
                if len(buf) <= limit and buf[oldest].ts >= horizon:
                    break
                self._drop(buf, oldest, counter)
        self.shrink_to(self.max_bytes)

    def shrink_to(self, max_bytes: int) -> int:
        """Evict the oldest predictions, then the oldest early labels, until both buffers hold
        at most ``max_bytes``; the number evicted (counted in ``evicted_for_bytes`` too)."""
        evicted = 0
        for buf, counter in (
            (self._pending, "evicted_predictions"),
            (self._early, "evicted_labels"),
        ):
            while buf and self.nbytes > max_bytes:
                self._drop(buf, next(iter(buf)), counter)
                evicted += 1
        if evicted:
            before = self.counts["evicted_for_bytes"]
            self.counts["evicted_for_bytes"] = after = before + evicted
            if len(str(after)) > len(str(before)):  # the 1st, 10th, 100th, ... eviction
                log.warning(
                    "%s: label-join buffer over %d bytes: %d waiting predictions/labels evicted "
                    "so far (counted as evicted_for_bytes; their labels will not join); raise "
                    "join.max_bytes in the policy or send fewer or shorter features",
                    self.name or "label join",
                    max_bytes,
                    after,
                )
        return evicted

    def _drop(
        self,
        buf: dict[str, WaitingPrediction] | dict[str, EarlyLabel],
        event_id: str,
        counter: str,
    ) -> None:
        del buf[event_id]
        self._forget_size(event_id)
        self.counts[counter] += 1

    def state(self) -> dict[str, Any]:
        """The buffers and counters; the limits are the policy's, not the state's."""
        return {
            "pending": {k: list(v) for k, v in self._pending.items()},
            "early": {k: _row(v) for k, v in self._early.items()},
            "recent": list(self._recent),
            "now": self._now,
            "counts": dict(self.counts),
            "latency_sum": self.latency_sum,
        }

    @classmethod
    def from_state(
        cls,
        s: dict[str, Any],
        *,
        max_pending: int,
        ttl_s: float,
        max_early: int,
        max_bytes: int = DEFAULT_MAX_BYTES,
        name: str = "",
    ) -> LabelJoin:
        """Rebuild from :meth:`state` with the given limits (the current policy's).

        What no longer fits the count and byte limits is evicted and counted at once; a
        shorter TTL applies from the next event. The ``limits`` a snapshot written before
        issue 15 carries are ignored.
        """
        j = cls(max_pending, ttl_s, max_early, max_bytes, name)
        j._pending = {k: WaitingPrediction(*row) for k, row in s["pending"].items()}
        j._early = {k: EarlyLabel(*row) for k, row in s["early"].items()}
        for event_id, pred in j._pending.items():
            j._hold_size(event_id, pred)
        for event_id, early in j._early.items():
            j._hold_size(event_id, early)
        j._recent = dict.fromkeys(s["recent"])
        j._now = s["now"]
        j.counts = {**dict.fromkeys(_COUNTS, 0), **s["counts"]}
        j.latency_sum = s["latency_sum"]
        # Within the limits it was saved under, nothing goes (no TTL eviction either: the
        # code never evicts between two events, and a restart must not change what joins).
        j._evict(ttl=False)
        while len(j._recent) > j.max_pending:
            del j._recent[next(iter(j._recent))]
        return j
