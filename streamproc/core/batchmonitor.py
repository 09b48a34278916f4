"""A batch of one model's predictions through its monitor at once, identical to one by one.

:meth:`ModelMonitor.on_prediction` applies one prediction: each watched value's detector, the
scheduled fallback, the label join. A batched record carries hundreds of predictions of one
model, and in the common case nothing happens for most of them but detector updates: this
module applies such stretches with numpy, and every other event through the per-event path.

Method
------
From the current position, a *segment* is the longest run of *plain* predictions: of the
monitored version, with the same feature keys (each watched value already has its detector),
the same score presence, no scheduled retrain due, no held label-free alarm expiring, and
text values only of features the identifier screen already judged (categories, or
identifiers watched by their length). In a segment:

1. every rank CUSUM (the default numeric detector) on a numeric column and every frozen
   multinomial CUSUM (the default categorical one) is scanned without change
   (:mod:`streamproc.core.detect.rankbatch`, :mod:`streamproc.core.detect.multinomialbatch`),
   giving its first *alarm point*: an update that fires and survives the Bonferroni
   correction (or whose correction fails while the monitor never counted such a failure: the
   first count of a key must come in event order);
2. the other detectors (river's, the chi-square window, a CUSUM still in its warm-up, a rank
   scan that came too close to a boundary) are updated one event at a time up to that point,
   and may end it earlier with their own alarm;
3. the events before the first alarm point are applied in bulk (scans committed, counters,
   traffic share and label join added at once); predictions whose labels came first join
   them: at once, up to the first such join that can emit (found ahead as for a batch of
   labels, :mod:`streamproc.core.labelbatch`), when the join evicts nothing on the way
   (:meth:`~streamproc.core.labeljoin.LabelJoin.quiet`); that one, and every one when the
   join might evict, in order between the others (its detectors updated, the scanned CUSUMs
   excepted: no join reads them, so they are committed after; if the join emits, they are
   committed up to it and the rest is scanned again);
4. the alarm event itself goes through :meth:`ModelMonitor.on_prediction` with the updates
   already made (``done``): the trigger decides exactly as it would have.

Then the scan starts again after it, from the monitor's state then, so what a caller does
between two yielded events (the replay deploys at once after a request) counts as it would
one event per record. The result is the per-event path's: the same requests, evidence, ids,
counters and snapshot (``tests/unit/core/test_batch_path.py`` checks it on random streams).

Examples
--------
>>> from streamproc.core.events import PredictionEvent
>>> from streamproc.core.monitor import ModelMonitor
>>> evs = [PredictionEvent(f"e{i}", "m", "v1", float(i), i % 2, {"x": float(i % 7)})
...        for i in range(3000)]
>>> one, many = ModelMonitor("m"), ModelMonitor("m")
>>> by_one = [one.on_prediction(ev, None) for ev in evs]
>>> by_batch = [emitted for _, emitted in apply_predictions(many, evs)]
>>> by_batch == by_one and one.snapshot() == many.snapshot()
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from streamproc.core import labelbatch
from streamproc.core.batches import PredictionColumns
from streamproc.core.detect import Detector, multinomialbatch
from streamproc.core.detect.multinomial import MultinomialCusum
from streamproc.core.detect.multinomialbatch import MultinomialScan
from streamproc.core.detect.rankbatch import (
    RankScan,
    commit,
    feed_reference,
    reference_end,
    scan,
    values_of,
)
from streamproc.core.detect.ranks import RankCusum
from streamproc.core.events import LabelEvent, PredictionEvent, SourceRef
from streamproc.core.identifiers import LENGTH_SUFFIX
from streamproc.core.labeljoin import PredictionRow, WaitingPrediction

if TYPE_CHECKING:
    from streamproc.core.monitor import Emitted, ModelMonitor

__all__ = ["MAX_SEGMENT", "apply_predictions"]

MAX_SEGMENT: Final = 4096  # predictions scanned at once (a record holds at most ~1,000)
_NOT_SIGNIFICANT: Final = "not_significant_after_correction"


@dataclass(slots=True)
class _Column:
    """One watched value of the segment's predictions, and how it is applied."""

    signal: str
    det: Detector
    values: list[Any]
    scan: RankScan | MultinomialScan | None = None
    # A CUSUM still forming its reference (a rank CUSUM on a numeric column, or a multinomial
    # one): the values (as floats for a rank CUSUM), and the index of the one that completes
    # the reference (len: none in this segment).
    warm: np.ndarray | list[Any] | None = None
    freeze_at: int = 0


def apply_predictions(
    mon: ModelMonitor,
    events: Sequence[PredictionEvent],
    sources: Sequence[SourceRef | None] | None = None,
) -> Iterator[tuple[int, Emitted]]:
    """Apply ``events`` (one model's, in order) and yield ``(i, emitted)`` for each.

    The same as ``mon.on_prediction(events[i], sources[i])`` for each ``i`` in turn. Lazily,
    up to a stretch: the detectors of a plain stretch (see the module docstring) are updated
    before its first event is yielded, but such a stretch ends at the first event that can
    emit anything, and what follows that event is looked at only when the next one is asked
    for (a caller may, as the replay does, deploy in between). The caller checks redelivery
    (:meth:`ModelMonitor.accept`) and takes the type mismatches
    (:meth:`ModelMonitor.take_mismatches`) after each yielded event, as it does per event.
    """
    srcs: Sequence[SourceRef | None] = sources if sources is not None else [None] * len(events)
    if isinstance(events, PredictionColumns):
        yield from _apply_columns(mon, events, srcs)
        return
    start = 0
    while start < len(events):  # runs of one set of feature names, as columns
        keys = tuple(events[start].features)
        end = start + 1
        while end < len(events) and tuple(events[end].features) == keys:
            end += 1
        run = PredictionColumns.of(events[start:end])
        assert run is not None
        for i, emitted in _apply_columns(mon, run, srcs[start:end]):
            yield start + i, emitted
        start = end


def _apply_columns(
    mon: ModelMonitor, events: PredictionColumns, srcs: Sequence[SourceRef | None]
) -> Iterator[tuple[int, Emitted]]:
    """:func:`apply_predictions` on columns."""
    p = 0
    while p < len(events):
        cols = _segment(mon, events, p)
        if cols is None:
            yield p, mon.on_prediction(events[p], srcs[p])
            p += 1
            continue
        length, gone, columns = cols
        at = _first_alarm(mon, columns, length)
        slow = _SlowColumns(mon, [c for c in columns if c.scan is None])
        early = mon.join.early_among(events.column("event_id", p, p + at))
        done: dict[str, bool] = {}
        k = 0  # events of the segment yielded
        rescan = False
        if early:  # the joins that emit nothing at once, with the events up to the last
            k, hit = _joins_in_bulk(mon, events, p, early, slow)
            for i in range(p, p + k):
                yield i, None
            early = [e for e in early if e >= k]
            if hit is not None:  # a slow column's alarm: the loop below has nothing to do
                (at, done), early = hit, []
        for e in (*early, at) if not done else ():
            hit = slow.advance(min(e + 1, at))
            if hit is not None:
                at, done = hit
            if e >= at:
                break
            # Event e answers an early label: its detectors are updated (the rank CUSUMs are
            # committed later: a join reads none of them); now its join, after the events
            # before it are out (a type mismatch belongs to e's outcome).
            _bookkeeping(mon, events, p + k, p + e)
            for i in range(p + k, p + e):
                yield i, None
            emitted = _join_early(mon, events[p + e], srcs[p + e])
            k = e + 1
            if emitted is not None:  # the caller may deploy: detectors up to e, then a rescan
                slow.finish(k)
                _commit(mon, columns, k, k)
                if gone:
                    mon.counts["missing_keys"] += gone * k
                rescan = True
                yield p + e, emitted
                break
            yield p + e, None
        if rescan:
            p += k
            continue
        if not done:
            slow.finish(at)
        _commit(mon, columns, min(at + 1, length), at)
        for col in columns:
            if col.scan is not None and at < length:
                done[col.signal] = bool(col.scan.fired[at])
        if gone and at:
            mon.counts["missing_keys"] += gone * at
        _bookkeeping(mon, events, p + k, p + at)
        for i in range(p + k, p + at):
            yield i, None
        if at < length:
            yield p + at, mon.on_prediction(events[p + at], srcs[p + at], done=done)
            p += at + 1
        else:
            p += length


def _join_early(mon: ModelMonitor, ev: PredictionEvent, source: SourceRef | None) -> Emitted:
    """The rest of :meth:`ModelMonitor.on_prediction` for a plain event answering an early
    label (its detectors already updated, no alarm among them)."""
    mon._seen(ev.ts, "predictions")
    mon._observe_version(ev.model_version)
    mon.trigger.events += 1
    joined = mon.join.add_prediction(
        ev.event_id, ev.ts, ev.model_version, ev.prediction, dict(ev.features)
    )
    # None: the label was evicted meanwhile (by the events before it), as one by one.
    return mon._on_joined(joined, source) if joined else None


# --------------------------------------------------------------------------- segment


def _segment(
    mon: ModelMonitor, events: PredictionColumns, p: int
) -> tuple[int, int, list[_Column]] | None:
    """The plain run from ``p`` (length >= 1), how many watched features it leaves out (each
    event), and its columns; None: ``p`` is not plain."""
    rule = mon.policy.drift
    if rule is None or events.column("model_version", p, p + 1)[0] != mon.version:
        return None
    keys = events.keys
    signals = [(f"feature:{k}", k) for k in keys if rule.watches(k)]
    gone = []
    if len(signals) < mon._feature_signals():  # watched features left out: missing values
        gone = [s for s, _ in mon._left_out_signals(dict.fromkeys(keys))]
        if gone and "missing_keys" not in mon.counts:
            return None  # the counter's first count comes per event
    outputs = [("prediction", "")] if rule.outputs else []
    scored = events.column("score", p, p + 1)[0] is not None
    if rule.outputs and scored:
        outputs.append(("score", ""))
    end = _plain_end(mon, events, p, scored)
    cols = []
    for signal, key in signals:
        n, watched, vals = _screened(mon, signal, events.feature(key, p, end))
        end = p + n
        cols.append((watched, vals))
    cols.extend((signal, [None] * (end - p)) for signal in gone)
    kept = []
    for signal, vals in cols:
        if signal in mon.detectors:
            kept.append((signal, vals))
        else:  # no detector yet: skipped while missing, made on its first value (per event)
            end = min(end, p + next((i for i, v in enumerate(vals) if v is not None), len(vals)))
    cols = kept
    for signal in (*(c[0] for c in cols), *(o[0] for o in outputs)):
        if signal not in mon.detectors or signal not in mon.samples:
            return None  # made on its first value, per event
    if rule.outputs:
        cols.append(("prediction", events.column("prediction", p, end)))
        if scored:
            cols.append(("score", events.column("score", p, end)))
    if end == p:
        return None
    length = end - p
    return length, len(gone), [_column(mon, signal, vals[:length]) for signal, vals in cols]


def _plain_end(mon: ModelMonitor, events: PredictionColumns, p: int, scored: bool) -> int:
    """The end of the run from ``p`` whose bookkeeping is plain (see the module docstring)."""
    trig = mon.trigger
    policy = trig.policy
    stop = min(len(events), p + MAX_SEGMENT)
    if not trig.scheduled and policy.max_events:
        stop = min(stop, max(p, p + policy.max_events - trig.events - 1))
    versions = events.column("model_version", p, stop)
    stop = p + _first(versions, lambda v: v != mon.version)
    scores = events.column("score", p, stop)
    stop = p + _first(scores, (lambda s: s is None) if scored else (lambda s: s is not None))
    ts = events.column("ts", p, stop)
    deployed = trig.deployed_ts
    if not trig.scheduled and deployed is not None and policy.max_age_s:
        max_age = policy.max_age_s
        stop = p + _first(ts, lambda t: t - deployed >= max_age)
    wait, ttl = mon.label_wait, mon.policy.join.ttl_s
    if wait is not None:
        stop = min(stop, p + _first(ts, lambda t: wait.expired(t, ttl)))
    return stop


def _first(values: list[Any], hit: Callable[[Any], bool]) -> int:
    """The index of the first value ``hit`` is true of (``len(values)``: none)."""
    return next((i for i, v in enumerate(values) if hit(v)), len(values))


def _screened(mon: ModelMonitor, signal: str, vals: list[Any]) -> tuple[int, str, list[Any]]:
    """The leading values the identifier screen passes as they are, or all turns into lengths
    (a feature it called identifier-like): ``(how many, signal watched, values)``. The rest
    (a value it would probe, count or skip, a change of signal) is applied per event."""
    screen = mon.screen
    verdict = screen.verdicts.get(signal)
    if screen.mode == "watch" or verdict == "category":
        return len(vals), signal, vals
    if verdict is not None and screen.mode == "length" and vals and isinstance(vals[0], str):
        n = next((i for i, v in enumerate(vals) if not isinstance(v, str)), len(vals))
        return n, signal + LENGTH_SUFFIX, [len(v) for v in vals[:n]]
    if not any(issubclass(t, str) for t in set(map(type, vals))):
        return len(vals), signal, vals  # a numeric column: no value to screen
    n = next((i for i, v in enumerate(vals) if isinstance(v, str)), len(vals))
    return n, signal, vals


def _column(mon: ModelMonitor, signal: str, vals: list[Any]) -> _Column:
    det = mon.detectors[signal]
    col = _Column(signal, det, vals)
    if isinstance(det, MultinomialCusum):
        if det.ready:
            col.scan = multinomialbatch.scan(det, vals)
        else:
            col.warm, col.freeze_at = vals, multinomialbatch.reference_end(det, len(vals))
        return col
    if isinstance(det, RankCusum):
        try:
            x = values_of(vals)
        except (TypeError, OverflowError):
            return col  # not all numbers: per event
        if not det.ready:
            col.warm, col.freeze_at = x, reference_end(det, x)
            return col
        s = scan(det, x)
        if s is not None and s.exact and not s.near(_corrected(mon, det)):
            col.scan = s
    return col


def _corrected(mon: ModelMonitor, det: Detector) -> float:
    """The statistic :meth:`ModelMonitor._significant` asks for (detectors without p-values)."""
    return det.threshold + math.log(mon._feature_signals() or 1)


def _significant(mon: ModelMonitor, det: Detector) -> bool:
    """:meth:`ModelMonitor._significant` without its counter."""
    tests = mon._feature_signals() or 1
    p = getattr(det, "p_value", None)
    alpha = getattr(det, "alpha", None)
    if p is not None and alpha is not None:
        return bool(p * tests <= alpha)
    return bool(det.statistic >= det.threshold + math.log(tests))


# --------------------------------------------------------------------------- alarms


def _first_alarm(mon: ModelMonitor, columns: list[_Column], length: int) -> int:
    """The first alarm point among the scanned columns (``length``: none)."""
    at = length
    counted = _NOT_SIGNIFICANT in mon.counts
    for col in columns:
        if col.scan is not None:
            s = col.scan
            stop = s.fired & (s.statistic >= _corrected(mon, col.det)) if counted else s.fired
            hits = np.flatnonzero(stop[:at])
            if len(hits):
                at = int(hits[0])
    return at


class _SlowColumns:
    """The columns without a scan, updated event by event as far as asked.

    A rank CUSUM still in its warm-up cannot fire: its values go into its reference at once,
    up to the one that completes it (or up to where the segment stops), and one by one after.
    """

    def __init__(self, mon: ModelMonitor, slow: list[_Column]) -> None:
        self.mon = mon
        self.waiting = sorted((c for c in slow if c.warm is not None), key=lambda c: c.freeze_at)
        self.active = [c for c in slow if c.warm is None]
        self.i = 0  # the next event to update

    def advance(self, stop: int) -> tuple[int, dict[str, bool]] | None:
        """Update the events before ``stop``; the first alarm among them, ``(index, each
        column's update result at it)``, or None."""
        mon, waiting, active = self.mon, self.waiting, self.active
        i = self.i
        while i < stop:
            while waiting and waiting[0].freeze_at < i:
                col = waiting.pop(0)
                _feed(mon, col, col.freeze_at + 1)
                active.append(col)
            if not active:  # nothing can fire before the next reference completes
                i = min(stop, waiting[0].freeze_at + 1) if waiting else stop
                continue
            flags = [(c, mon._update(c.signal, c.det, c.values[i])) for c in active]
            if any(f and _significant(mon, c.det) for c, f in flags):
                self.finish(i + 1)
                return i, {c.signal: f for c, f in flags} | {c.signal: False for c in waiting}
            for _, f in flags:
                if f:
                    mon._count(_NOT_SIGNIFICANT)
            i += 1
        self.i = i
        return None

    def finish(self, k: int) -> None:
        """The warming columns' values before ``k``, into their references."""
        for col in self.waiting:
            _feed(self.mon, col, k)
        self.waiting = []


def _feed(mon: ModelMonitor, col: _Column, k: int) -> None:
    """The first ``k`` values of a warming column (all before its reference completes, or the
    one completing it), as ``k`` updates."""
    assert col.warm is not None
    if k <= 0:
        return
    if isinstance(col.det, MultinomialCusum):
        assert isinstance(col.warm, list)
        multinomialbatch.feed_reference(col.det, col.warm[:k])
    else:
        assert isinstance(col.det, RankCusum) and isinstance(col.warm, np.ndarray)
        feed_reference(col.det, col.warm[:k])
    mon.samples[col.signal] = mon.samples.get(col.signal, 0) + k


def _commit(mon: ModelMonitor, columns: list[_Column], k: int, before: int) -> None:
    """Apply the scanned columns' first ``k`` values; their fires that did not survive the
    correction among the first ``before`` are counted (the alarm point's is in ``done``)."""
    for col in columns:
        s = col.scan
        if s is None:
            continue
        if isinstance(s, MultinomialScan):
            assert isinstance(col.det, MultinomialCusum)
            multinomialbatch.commit(col.det, s, k)
        else:
            assert isinstance(col.det, RankCusum)
            commit(col.det, s, k)
        mon.samples[col.signal] += k
        missed = s.fired[:before] & (s.statistic[:before] < _corrected(mon, col.det))
        n = int(missed.sum())
        if n:
            mon.counts[_NOT_SIGNIFICANT] += n


def _bookkeeping(mon: ModelMonitor, evs: PredictionColumns, start: int, stop: int) -> None:
    """The rest of :meth:`ModelMonitor.on_prediction` for a run of plain events (``start`` to
    ``stop`` of ``evs``), at once: the same counters, traffic weights and join buffers as
    event by event."""
    if stop <= start:
        return
    rows = _rows(evs, start, stop)
    _counted(mon, rows)
    # No early label waits for a plain event: none of them joins.
    mon.join.add_predictions(rows)


def _counted(mon: ModelMonitor, rows: Sequence[PredictionRow]) -> None:
    """The counters and traffic weights of plain events (their join rows)."""
    last = max(r[1] for r in rows)
    if last > mon.last_ts:
        mon.last_ts = last
    n = len(rows)
    mon.counts["predictions"] = mon.counts.get("predictions", 0) + n
    # Plain events are of the current version: observing them never switches it.
    mon.traffic.observe_many(mon.version, n)
    mon.trigger.events += n


def _rows(evs: PredictionColumns, start: int, stop: int) -> list[PredictionRow]:
    """The label join's rows of the events ``start`` to ``stop``."""
    return list(
        zip(
            evs.column("event_id", start, stop),
            evs.column("ts", start, stop),
            evs.column("model_version", start, stop),
            evs.column("prediction", start, stop),
            evs.feature_rows(start, stop),
            strict=True,
        )
    )


def _joins_in_bulk(
    mon: ModelMonitor, evs: PredictionColumns, p: int, early: list[int], slow: _SlowColumns
) -> tuple[int, tuple[int, dict[str, bool]] | None]:
    """The plain events from ``p`` on up to the last of the leading ``early`` ones (events
    answering early labels, relative to ``p``) whose joins emit nothing, applied at once
    when the join evicts nothing on the way; the events applied, and a slow column's alarm
    among them (then only the events before it are applied).

    Found ahead as for a batch of labels (:func:`streamproc.core.labelbatch.first_alarm`);
    the joins come after their predictions' detector updates, which none of them reads.
    """
    stop = early[-1] + 1
    rows = _rows(evs, p, p + stop)
    if not mon.join.quiet(rows, early):  # then neither is a part of it: one by one
        return 0, None
    labels, preds = [], []
    for e in early:
        event_id, ts, version, prediction, features = rows[e]
        first = mon.join._early[event_id]
        labels.append(LabelEvent(event_id, mon.model_id, first.ts, first.label))
        preds.append(WaitingPrediction(ts, version, prediction, features))
    seg = labelbatch.pairs_segment(mon, labels, preds)
    j = 0 if seg is None else labelbatch.first_alarm(mon, seg)
    if j == 0:
        return 0, None
    hit = slow.advance(early[j - 1] + 1)
    if hit is not None:
        j = sum(1 for e in early[:j] if e < hit[0])
    stop = early[j - 1] + 1 if j else 0
    if stop:
        assert seg is not None
        _counted(mon, rows[:stop])
        mon.join.add_and_join(rows[:stop], early[:j])
        labelbatch.apply_joined(mon, seg, j)
    return stop, hit
