"""A batch of one model's labels through its monitor at once, identical to one by one.

:meth:`ModelMonitor.on_label` applies one label: the join with its prediction, the error's
score, the training window, the error detector, the label-frequency detector, and the watches
a deployment or a retrain request starts (rollback, refit, re-request). A batched record
carries hundreds of labels of one model, and in the common case nothing happens for most of
them but those updates: this module applies such stretches at once, and every other label
through the per-event path.

Method
------
From the current position, a *segment* is the longest run of *plain* labels: each answers a
prediction of the monitored version that waits in the join (not a duplicate, not early), with
a prediction and label the task scores (two numbers, or values :func:`comparable` pairs), while
the monitor is in one of its plain states:

- classification (no pair held): the error watched by a Bernoulli
  :class:`~streamproc.core.detect.cusum.Cusum`, the label frequencies (when watched) by a
  :class:`~streamproc.core.detect.multinomial.MultinomialCusum`;
- regression (no pair held): the absolute or squared error watched by the policy's default
  numeric detector, a :class:`~streamproc.core.detect.ranks.RankCusum` reporting rises
  (:class:`~streamproc.core.detect.rising.RisingOnly`); in its warm-up the segment ends at the
  error that completes its reference (:mod:`streamproc.core.detect.rankbatch`);
- task undecided: the pairs are held for the task's inference, nothing is scored; the segment
  ends before the label that could decide it (the :data:`~streamproc.core.errors.MIN_EVIDENCE`
  th pair, or the :data:`~streamproc.core.errors.MAX_EVIDENCE` th held).

In a segment:

1. the *alarm point* is the first label that can emit: the label CUSUM is scanned without
   change (:mod:`streamproc.core.detect.multinomialbatch`; in its warm-up, the segment ends at
   the label that completes its reference); the labels that bring a refit or a re-request
   due, or end a held label-free alarm's wait (:mod:`streamproc.core.labelwait`), are
   counted ahead; the rollback watch and the Bernoulli error CUSUM, each a few numbers, are
   run on a copy of themselves, in that order, to their first alarm; a rank error CUSUM is
   scanned (its first alarm, a rise or a fall, goes one by one: a fall restarts it quietly;
   a scan too close to a boundary to be exact sends its first label one by one);
2. the labels before the alarm point are applied in bulk: the join's buffers and counters,
   the latencies, the training window (each example's size derived from its prediction's
   size in the join, without encoding it again), the detectors, watches and their counts (a
   copy that took exactly these labels replaces its original), or the held pairs and the
   task's evidence;
3. the alarm label itself goes through :meth:`ModelMonitor.on_label`, which decides exactly as
   it would have.

A run of labels that come before their predictions (none seen before) is held by the join at
once when that evicts nothing (:meth:`~streamproc.core.labeljoin.LabelJoin.hold_early`); the
predictions join them in their own batch path (:mod:`streamproc.core.batchmonitor`), which
scores such pairs with this module's :func:`pairs_segment`, :func:`first_alarm` and
:func:`apply_joined`.

After an alarm, the next segment looks at most twice as far as the last one committed (at
least 64 labels), and twice as far again after each segment that ends without one: an alarm
that fires on every label (one waiting for enough training examples) costs a bounded scan per
label, not one over the rest of the batch.

The result is the per-event path's: the same requests, evidence, ids, counters and snapshot
(``tests/unit/core/test_labelbatch.py`` and the batch-path property tests check it).

Examples
--------
>>> from streamproc.core.events import LabelEvent, PredictionEvent
>>> from streamproc.core.monitor import ModelMonitor
>>> one, many = ModelMonitor("m"), ModelMonitor("m")
>>> for mon in (one, many):
...     for i in range(3000):
...         _ = mon.on_prediction(PredictionEvent(f"e{i}", "m", "v1", float(i), i % 2, {}), None)
>>> labels = [LabelEvent(f"e{i}", "m", i + 0.5, int(i % 7 == 0)) for i in range(3000)]
>>> by_one = [one.on_label(ev, None) for ev in labels]
>>> by_batch = [emitted for _, emitted in apply_labels(many, labels)]
>>> by_batch == by_one and one.snapshot() == many.snapshot()
True
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import orjson

from streamproc.core.detect import multinomialbatch, rankbatch
from streamproc.core.detect.cusum import Cusum
from streamproc.core.detect.multinomial import MultinomialCusum
from streamproc.core.detect.ranks import RankCusum
from streamproc.core.detect.rising import RisingOnly
from streamproc.core.errors import (
    MAX_EVIDENCE,
    MIN_EVIDENCE,
    HeldPair,
    Pair,
    comparable,
    quantity_error,
)
from streamproc.core.events import LabelEvent, SourceRef
from streamproc.core.example import Example
from streamproc.core.labeljoin import WaitingPrediction
from streamproc.core.labelwait import LabelWait
from streamproc.core.window import example_bytes

if TYPE_CHECKING:
    from streamproc.core.monitor import Emitted, ModelMonitor

__all__ = ["apply_joined", "apply_labels", "first_alarm", "pairs_segment"]

_NUMBERS: Final = (int, float)
# Labels scanned ahead after an alarm, at least: bounds the work per alarm label.
_MIN_LOOKAHEAD: Final = 64


@dataclass(slots=True)
class _Trial:
    """A copy of a small stateful watcher (the error CUSUM, the rollback watch) run ahead on
    the segment's errors: how many it took (``n``) tells whether it can replace the original
    (it took exactly the labels applied) or the original is replayed."""

    copy: Any
    n: int


@dataclass(frozen=True, slots=True)
class _Plain:
    """A monitor's plain state (see the module docstring): what its labels update."""

    task: str | None  # None: undecided, the pairs are held for the inference
    error_det: Cusum | RisingOnly | None  # a RisingOnly wraps a RankCusum
    label_det: MultinomialCusum | None
    room: int  # labels a segment may hold (undecided: those that cannot decide the task)


@dataclass(slots=True)
class _Segment:
    """A run of plain labels from one position: what they join and what they score."""

    labels: Sequence[LabelEvent]
    preds: list[WaitingPrediction]
    errors: list[float]  # empty while the task is undecided
    pairs: list[Pair]  # while the task is undecided: the pairs to hold, else empty
    plain: _Plain
    # Found by _first_alarm: the label CUSUM's scan, the trials of the Bernoulli error CUSUM
    # and of the rollback watch, the rank error CUSUM's scan.
    label_scan: multinomialbatch.MultinomialScan | None = None
    error_trial: _Trial | None = None
    watch_trial: _Trial | None = None
    error_scan: rankbatch.RankScan | None = None


def apply_labels(
    mon: ModelMonitor,
    events: Sequence[LabelEvent],
    sources: Sequence[SourceRef | None] | None = None,
) -> Iterator[tuple[int, Emitted]]:
    """Apply ``events`` (one model's, in order) and yield ``(i, emitted)`` for each.

    The same as ``mon.on_label(events[i], sources[i])`` for each ``i`` in turn, lazily up to
    a stretch (as :func:`streamproc.core.batchmonitor.apply_predictions`): a plain stretch is
    applied before its first label is yielded and ends at the first label that can emit. The
    caller checks redelivery and takes the type mismatches after each yielded label.
    """
    srcs: Sequence[SourceRef | None] = sources if sources is not None else [None] * len(events)
    p = 0
    lookahead = len(events)
    one_by_one = 0  # labels before this go one by one when not plain (a hold that failed)
    while p < len(events):
        seg = _segment(mon, events, p, lookahead)
        if seg is None:
            held, looked = _held_early(mon, events, srcs, p) if p >= one_by_one else (0, 0)
            for i in range(p, p + held):
                yield i, None
            if held == 0:
                one_by_one = max(one_by_one, p + looked)
                yield p, mon.on_label(events[p], srcs[p])
            p += held or 1
            continue
        at = first_alarm(mon, seg)
        _commit(mon, seg, at)
        for i in range(p, p + at):
            yield i, None
        p += at
        if at < len(seg.labels):  # the alarm label, one by one: the trigger decides
            yield p, mon.on_label(events[p], srcs[p])
            p += 1
            # Alarms may be dense (an alarm that waits for examples fires on every label):
            # scanning the whole rest of the batch each time would be quadratic.
            lookahead = max(_MIN_LOOKAHEAD, 2 * at)
        else:
            lookahead *= 2


def _held_early(
    mon: ModelMonitor, events: Sequence[LabelEvent], srcs: Sequence[SourceRef | None], p: int
) -> tuple[int, int]:
    """The labels from ``p`` on that come before their predictions (none seen before), held
    by the join at once when that evicts nothing (:meth:`LabelJoin.hold_early`); (how many,
    how many were looked at). ``(0, n)``: ``events[p]`` goes one by one, and so should the
    ``n`` looked at (trying them again one later would make a batch quadratic)."""
    from streamproc.core.monitor import origin_of

    join = mon.join
    pending, recent, early = join._pending, join._recent, join._early
    seen: set[str] = set()
    n = p
    # Past the count limit each label evicts the oldest: one by one (labels far ahead of their
    # predictions, a worker catching up on both topics, fill it).
    end = min(len(events), p + join.max_early - len(early))
    while n < end:
        eid = events[n].event_id
        if eid in pending or eid in recent or eid in early or eid in seen:
            break
        seen.add(eid)
        n += 1
    rows = [
        (ev.event_id, ev.ts, ev.label, origin_of(srcs[i])) for i, ev in enumerate(events[p:n], p)
    ]
    if not rows or not join.hold_early(rows):
        return 0, n - p
    last = max(ev.ts for ev in events[p:n])
    if last > mon.last_ts:
        mon.last_ts = last
    mon.counts["labels"] = mon.counts.get("labels", 0) + n - p
    return n - p, n - p


def _plain_state(mon: ModelMonitor) -> _Plain | None:
    """The monitor's plain state, or None when its next label goes one by one."""
    from streamproc.core.monitor import ERROR_SIGNAL, LABEL_SIGNAL

    scorer = mon.scorer
    task = scorer.task
    if task is None:
        # The pair that makes the MIN_EVIDENCE th (or the MAX_EVIDENCE th held) may decide it.
        room = min(MIN_EVIDENCE - scorer.inference.n, MAX_EVIDENCE - len(scorer.held)) - 1
        return _Plain(None, None, None, room) if room > 0 else None
    if scorer.held:
        return None
    err = mon.detectors.get(ERROR_SIGNAL)
    error_det = _bulk_error_detector(task, err)
    if error_det is None and (err is not None or mon.policy.error is not None):
        # Not made yet, or another kind (also one a version kept from an earlier policy,
        # which on_label still updates): per event.
        return None
    label_det = None
    if task == "classification" and mon.policy.drift is not None and mon.policy.label_shift:
        lab = mon.detectors.get(LABEL_SIGNAL)
        if not (isinstance(lab, MultinomialCusum) and type(lab) is MultinomialCusum):
            return None  # made by the first label, per event
        label_det = lab
    return _Plain(task, error_det, label_det, 1 << 62)


def _bulk_error_detector(task: str, det: Any) -> Cusum | RisingOnly | None:
    """``det`` if the bulk path knows it: the Bernoulli CUSUM for classes, a rises-only rank
    CUSUM for quantities."""
    if task == "classification":
        return det if type(det) is Cusum else None
    if task == "regression" and type(det) is RisingOnly and type(det.inner) is RankCusum:
        return det
    return None


def _rank(det: RisingOnly) -> RankCusum:
    """The rank CUSUM a regression error detector of the bulk path wraps."""
    inner = det.inner
    assert isinstance(inner, RankCusum)
    return inner


def _segment(
    mon: ModelMonitor, events: Sequence[LabelEvent], p: int, lookahead: int
) -> _Segment | None:
    """The plain labels from ``p`` on, at most ``lookahead`` of them (see the module
    docstring), or None when ``events[p]`` is not plain."""
    plain = _plain_state(mon)
    if plain is None:
        return None
    pending, version = mon.join._pending, mon.version
    seen: set[str] = set()
    preds: list[WaitingPrediction] = []
    for ev in events[p : min(len(events), p + lookahead, p + plain.room)]:
        eid = ev.event_id
        pred = pending.get(eid)
        if pred is None or pred.version != version or eid in seen:
            break  # early, duplicate, orphan or another version's: per event
        seen.add(eid)
        preds.append(pred)
    return pairs_segment(mon, events[p : p + len(preds)], preds, plain)


def pairs_segment(
    mon: ModelMonitor,
    labels: Sequence[LabelEvent],
    preds: Sequence[WaitingPrediction],
    plain: _Plain | None = None,
) -> _Segment | None:
    """The leading pairs of ``labels`` and the predictions they answer (of the current
    version, distinct) that form a plain segment, scored; None if not even the first.

    Also for predictions that answer early labels
    (:mod:`streamproc.core.batchmonitor`): the same pairs, joined from the other side.
    """
    plain = plain or _plain_state(mon)
    if plain is None or not preds:
        return None
    label_det, task = plain.label_det, plain.task
    end = min(len(preds), plain.room)
    if label_det is not None and not label_det.ready:
        # The value that completes its reference ends the segment: the scan starts after it.
        end = multinomialbatch.reference_end(label_det, end) + 1
    squared = mon.scorer.loss == "squared"
    errors: list[float] = []
    pairs: list[Pair] = []
    n = 0
    for ev, pred in zip(labels[:end], preds[:end], strict=True):
        if ev.ts != ev.ts:
            break  # NaN (only from Python; the router refuses it): max() would differ from >
        if task is None:
            pair = comparable(pred.prediction, ev.label)
            if not isinstance(pair, Pair):
                break  # a type mismatch: reported per event
            pairs.append(pair)
        else:
            e = _error(task, squared, pred.prediction, ev.label)
            if e is None:
                break
            errors.append(e)
        n += 1
    det = plain.error_det
    if isinstance(det, RisingOnly) and not _rank(det).ready and n:
        # Its reference completes within: the segment ends there, the scan starts after it.
        n = min(n, rankbatch.reference_end(_rank(det), np.array(errors, dtype=np.float64)) + 1)
        del errors[n:]
    if n == 0:
        return None
    return _Segment(labels[:n], list(preds[:n]), errors, pairs, plain)


def _error(task: str, squared: bool, prediction: Any, label: Any) -> float | None:
    """The error as :class:`~streamproc.core.errors.ErrorScorer` scores it under ``task``
    (:func:`~streamproc.core.errors.error_value`), or None for a pair it would not score (a
    type mismatch, class names for a regression model)."""
    if type(prediction) in _NUMBERS and type(label) in _NUMBERS:
        if not (_plain_number(prediction) and _plain_number(label)):
            return None  # one by one: what fails for it fails for it alone
        p, y = prediction, label
    else:
        pair = comparable(prediction, label)
        if not isinstance(pair, Pair) or (task == "regression" and not pair.numbers):
            return None
        p, y = pair.prediction, pair.label
    if task != "regression":
        return 0.0 if p == y else 1.0
    return quantity_error(float(p) - float(y), squared)


def _plain_number(v: int | float) -> bool:
    """A finite float, or an int JSON can carry (only Python hands over others: an int past
    a float's range, or one orjson cannot write, goes one by one)."""
    if type(v) is int:
        return -(2**63) <= v < 2**64
    return math.isfinite(v)


def first_alarm(mon: ModelMonitor, seg: _Segment) -> int:
    """The first label that can emit (``len``: none): its rollback watch, refit or re-request
    comes due, a held alarm's wait ends, or its error or label-frequency update fires."""
    at = len(seg.labels)
    det = seg.plain.label_det
    if det is not None and det.ready:
        seg.label_scan = s = multinomialbatch.scan(det, [ev.label for ev in seg.labels])
        assert s is not None
        hits = s.fired.nonzero()[0]
        if len(hits):
            at = int(hits[0])
    wait = mon.label_wait
    if wait is not None:  # the label that ends a held alarm's wait: looked at per event
        at = _wait_over(wait, seg, at)
    if seg.plain.task is None:
        return at  # nothing is scored: no watch, refit, re-request or error detector moves
    if mon.refit_due:  # the label that brings own_examples to refit_due
        at = min(at, max(0, mon.refit_due - mon.own_examples - 1))
    degraded = mon.degraded
    if degraded is not None and degraded.armed:  # the label whose count makes it due
        at = min(at, max(0, degraded.next_at - degraded.labels - 1))
    if mon.watch is not None:  # updated first: its alarm is a rollback
        seg.watch_trial, at = _trial(mon.watch, seg.errors, at)
    error_det = seg.plain.error_det
    if isinstance(error_det, Cusum):
        seg.error_trial, at = _trial(error_det, seg.errors, at)
    elif error_det is not None and _rank(error_det).ready:
        scan = rankbatch.scan(_rank(error_det), np.array(seg.errors[:at], dtype=np.float64))
        if scan is not None and not scan.exact:
            return 0  # a decision too close to call in bulk: this label one by one
        seg.error_scan = scan
        if scan is not None and scan.fired.any():
            at = int(scan.fired.argmax())
    return at


def _wait_over(wait: LabelWait, seg: _Segment, at: int) -> int:
    """The first label of ``seg`` before ``at`` that ends ``wait`` (``at``: none), found on
    a copy of it."""
    trial = copy.copy(wait)
    for i in range(at):
        if trial.labelled(seg.preds[i].ts, seg.labels[i].ts):
            return i
    return at


def _trial(watcher: Any, errors: list[float], at: int) -> tuple[_Trial, int]:
    """``watcher``'s copy updated on ``errors`` before ``at``, up to its first alarm; the
    trial, and the alarm point (``at`` if none)."""
    trial = _Trial(copy.copy(watcher), 0)  # a few numbers and immutable tuples
    update = trial.copy.update
    for i in range(at):
        trial.n += 1
        if update(errors[i]):
            return trial, i
    return trial, at


def _commit(mon: ModelMonitor, seg: _Segment, k: int) -> None:
    """The first ``k`` labels of ``seg``, as ``k`` calls of :meth:`ModelMonitor.on_label`
    that emit nothing."""
    if k == 0:
        return
    labels, preds = seg.labels[:k], seg.preds[:k]
    last = max(ev.ts for ev in labels)
    if last > mon.last_ts:
        mon.last_ts = last
    mon.counts["labels"] = mon.counts.get("labels", 0) + k
    held = mon.join._sizes  # each example's size first: what raises must change nothing
    sizes = [
        _example_bytes(held[ev.event_id], ev, pred) for ev, pred in zip(labels, preds, strict=True)
    ]
    _join(mon, labels, preds)
    apply_joined(mon, seg, k, sizes)


def apply_joined(
    mon: ModelMonitor, seg: _Segment, k: int, sizes: Sequence[int] | None = None
) -> None:
    """The first ``k`` pairs of ``seg``, already joined (the join's side done), as
    :meth:`ModelMonitor._on_joined` on each (none emits); ``sizes``: their examples' bytes
    (None: measured)."""
    from streamproc.core.monitor import MAX_LATENCIES

    labels, preds = seg.labels[:k], seg.preds[:k]
    mon.joins_unread += len(labels)
    room = MAX_LATENCIES - len(mon.join_latencies)
    if room > 0:
        pairs = zip(labels[:room], preds[:room], strict=True)
        mon.join_latencies.extend(ev.ts - pred.ts for ev, pred in pairs)
    examples = [
        Example(pred.features, ev.label, pred.prediction, pred.version, ev.ts)
        for ev, pred in zip(labels, preds, strict=True)
    ]
    mon.examples.extend_sized(
        examples, [example_bytes(x) for x in examples] if sizes is None else sizes
    )
    if mon.label_wait is not None:  # none of these ends its wait
        for ev, pred in zip(labels, preds, strict=True):
            mon.label_wait.labelled(pred.ts, ev.ts)
    if seg.plain.task is None:
        _hold(mon, seg, k)
    else:
        _scored(mon, seg, k)


def _hold(mon: ModelMonitor, seg: _Segment, k: int) -> None:
    """The first ``k`` pairs of ``seg`` held for the task's inference (none decides it)."""
    scorer, version = mon.scorer, mon.version
    for ev, pair in zip(seg.labels[:k], seg.pairs[:k], strict=True):
        scorer.inference.observe(pair)
        scorer.held.append(HeldPair(ev.event_id, version, *pair, ev.ts))


def _scored(mon: ModelMonitor, seg: _Segment, k: int) -> None:
    """The first ``k`` errors of ``seg`` through the watches and detectors they update."""
    from streamproc.core.monitor import ERROR_SIGNAL, LABEL_SIGNAL

    mon.own_examples += k
    if mon.degraded is not None:
        mon.degraded.labels += k  # counted by due(), none of them due
    if mon.watch is not None:
        mon.watch = _settled(mon.watch, seg.watch_trial, seg.errors, k)
    error_det = seg.plain.error_det
    if isinstance(error_det, Cusum):
        mon.detectors[ERROR_SIGNAL] = _settled(error_det, seg.error_trial, seg.errors, k)
    elif error_det is not None:
        inner = _rank(error_det)
        if seg.error_scan is not None:
            rankbatch.commit(inner, seg.error_scan, k)
        else:  # in its warm-up: the segment ends where the reference completes
            rankbatch.feed_reference(inner, np.array(seg.errors[:k], dtype=np.float64))
    if error_det is not None:
        mon.samples[ERROR_SIGNAL] = mon.samples.get(ERROR_SIGNAL, 0) + k
    det = seg.plain.label_det
    if det is not None:
        if seg.label_scan is not None:
            multinomialbatch.commit(det, seg.label_scan, k)
        else:  # in its warm-up: the segment ends where the reference completes
            multinomialbatch.feed_reference(det, [ev.label for ev in seg.labels[:k]])
        mon.samples[LABEL_SIGNAL] = mon.samples.get(LABEL_SIGNAL, 0) + k


def _settled(watcher: Any, trial: _Trial | None, errors: list[float], k: int) -> Any:
    """``watcher`` after the first ``k`` errors: its trial if that took exactly them (it then
    replaces it), else the original updated on them."""
    if trial is not None and trial.n == k:
        return trial.copy
    for e in errors[:k]:
        watcher.update(e)
    return watcher


def _join(
    mon: ModelMonitor, labels: Sequence[LabelEvent], preds: Sequence[WaitingPrediction]
) -> None:
    """The join's side of ``labels`` (each answering its waiting prediction in ``preds``), as
    :meth:`LabelJoin.add_label` one by one."""
    join = mon.join
    pending, held, recent = join._pending, join._sizes, join._recent
    freed = 0
    latency_sum = join.latency_sum
    for ev, pred in zip(labels, preds, strict=True):
        eid = ev.event_id
        del pending[eid]
        freed += held.pop(eid)
        recent[eid] = None
        latency_sum += ev.ts - pred.ts  # in order: the same float sum
    join.latency_sum = latency_sum
    join.nbytes -= freed
    join._now = max(join._now, max(ev.ts for ev in labels))
    join.counts["joined"] += len(labels)
    over = len(recent) - join.max_pending
    if over > 0:  # one by one, each join past the limit forgets the oldest id
        for eid in list(recent)[:over]:
            del recent[eid]


def _example_bytes(entry: int, ev: LabelEvent, pred: WaitingPrediction) -> int:
    """:func:`streamproc.core.window.example_bytes` of ``ev``'s example, from its prediction's
    entry size in the join (``entry_bytes``: JSON ``[ts, version, prediction, features]``, the
    id and 4): the example's JSON ``[features, label, prediction, version, ts]`` swaps the
    prediction's time for the label and its time (orjson writes arrays without spaces)."""
    row = entry - len(ev.event_id) - 4
    swap = len(orjson.dumps([ev.label, ev.ts])) - 3 - len(orjson.dumps(pred.ts))
    return row + swap + 1 + 1
