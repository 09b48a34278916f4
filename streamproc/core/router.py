"""Route raw records of the monitored topics to their model's monitor.

This is the one entry point the live drift agent and the offline replay share: raw bytes of a
topic in, retrain requests (or a dead letter) out. A record that cannot be accepted never raises:
it comes back as a :class:`~streamproc.core.events.DeadLetter` saying why.

Examples
--------
>>> monitors = Monitors()
>>> src = SourceRef("metrics", 0, 0)
>>> raw = b'{"model_id": "m", "ts": 1, "name": "drift", "value": 0.5}'
>>> out = route(monitors, "metrics", raw, src, 1.0)
>>> len(out.requests), out.dead_letter
(1, None)
>>> bad = route(monitors, "metrics", b'{"model_id": "m"', SourceRef("metrics", 0, 1), 1.0)
>>> bad.dead_letter.error.startswith("metric: value is not valid UTF-8 JSON")
True
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import repeat
from typing import Any, Final, overload

import orjson

from streamproc.core import batches
from streamproc.core.batches import PredictionColumns
from streamproc.core.events import (
    LABEL_SPEC,
    PREDICTION_SPEC,
    DeadLetter,
    DeploymentEvent,
    InvalidEvent,
    LabelEvent,
    PredictionEvent,
    RetrainRequest,
    SourceRef,
    build,
    dead_letter,
    decode_object,
    parse_deployment,
    parse_label,
    parse_metric,
    parse_prediction,
    parse_retrain_result,
)
from streamproc.core.monitor import Mismatch, ModelMonitor
from streamproc.core.policy import PolicyBook
from streamproc.core.statesize import fit_snapshot
from streamproc.core.topics import (
    DEPLOYMENTS,
    LABELS,
    METRICS,
    MONITORED_TOPICS,
    PREDICTIONS,
    RETRAIN_RESULTS,
)

__all__ = ["MONITORED_TOPICS", "Monitors", "Outcome", "iter_record", "route", "route_record"]

log = logging.getLogger(__name__)

# A record bigger than this is refused: events carry features, not payloads.
MAX_RECORD_BYTES: Final = 1024 * 1024
# Event time may run ahead of the broker's clock by at most this (clock skew, not a bug).
MAX_FUTURE_S: Final = 86400.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one record caused: retrain requests, a rollback, or the dead letter it became.

    A record that was applied can also carry a dead letter (``model_id`` set): a label whose
    type does not match its prediction's (reason ``label_type_mismatch``), never scored.
    """

    model_id: str | None = None
    requests: tuple[RetrainRequest, ...] = ()
    deployments: tuple[DeploymentEvent, ...] = ()
    dead_letter: DeadLetter | None = None
    redelivered: bool = False  # already applied (its offset was seen): nothing happened

    def is_plain(self) -> bool:
        """Nothing to send: no request, no rollback, no dead letter."""
        return not (self.requests or self.deployments or self.dead_letter)


class Monitors:
    """The monitors of many models, created on first sight and loaded lazily from a snapshot store.

    Parameters
    ----------
    book
        Policies by model id.
    load
        Returns a model's saved snapshot, or None; the live agent passes a table lookup.
    max_snapshot_bytes
        Largest snapshot the store takes; a larger one is shrunk or degraded
        (:func:`streamproc.core.statesize.fit_snapshot`), never written to fail.
    """

    def __init__(
        self,
        book: PolicyBook | None = None,
        load: Callable[[str], bytes | None] | None = None,
        max_snapshot_bytes: int | None = None,
    ) -> None:
        self.book = book or PolicyBook()
        self._load = load
        self.max_snapshot_bytes = max_snapshot_bytes
        self.live: dict[str, ModelMonitor] = {}
        self.dirty: set[str] = set()
        self.resend: list[RetrainRequest] = []

    def get(self, model_id: str) -> ModelMonitor:
        mon = self.live.get(model_id)
        if mon is None:
            policy = self.book.for_model(model_id)
            saved = self._load(model_id) if self._load else None
            mon = ModelMonitor.restore(saved, policy) if saved else ModelMonitor(model_id, policy)
            self.live[model_id] = mon
            self.resend.extend(mon.unsent_requests())
        self.dirty.add(model_id)
        return mon

    def take_resends(self) -> list[RetrainRequest]:
        """Requests of restored monitors that no one confirmed sent (a worker died between a
        model's snapshot and its request's ack): send them, then :meth:`sent`. Oldest first."""
        out, self.resend = self.resend, []
        return out

    def sent(self, req: RetrainRequest) -> None:
        """``req`` is on the requests topic: its monitor's outbox forgets it (saved with the
        monitor's next snapshot)."""
        mon = self.live.get(req.model_id)
        if mon is not None:
            mon.request_sent(req.request_id)
            self.dirty.add(req.model_id)

    def drain_dirty(self) -> dict[str, bytes]:
        """Snapshots of the monitors changed since the last call (to persist them); a model
        whose snapshot cannot be made to fit is left out (its previous one stays)."""
        out = {mid: self.snapshot(mid) for mid in sorted(self.dirty)}
        self.dirty.clear()
        return {mid: data for mid, data in out.items() if data is not None}

    def snapshot(self, model_id: str) -> bytes | None:
        """A live monitor's snapshot within ``max_snapshot_bytes`` (None: cannot fit)."""
        mon = self.live[model_id]
        if self.max_snapshot_bytes is None:
            return mon.snapshot()
        return fit_snapshot(mon, self.max_snapshot_bytes)

    def forget(self) -> None:
        """Drop cached monitors (on rebalance) so the next lookup reloads from the store."""
        self.live.clear()
        self.dirty.clear()
        self.resend.clear()  # still in the saved outboxes: collected again on the next load


def route(
    monitors: Monitors, topic: str, raw: bytes | None, source: SourceRef, received_ts: float
) -> Outcome:
    """Apply one raw record of a monitored topic (logical name) to its model's monitor.

    ``received_ts`` is when Kafka received the record (0 when unknown, as in a replay of a
    file without broker times); an event time far after it is refused. One event per record:
    :func:`route_record` also takes batched records (a batch given here is a dead letter).
    """
    try:
        return _route(monitors, topic, raw, source, received_ts)
    except InvalidEvent as exc:
        return Outcome(dead_letter=dead_letter(source, str(exc), raw, received_ts, exc.reason))
    except Exception as exc:  # a bug must cost one record, not the worker
        log.exception("unexpected error on %s", source)
        msg = (
            f"internal error while processing this {topic} record ({type(exc).__name__}: {exc}); "
            "the worker skipped it — please report it with this record."
        )
        return Outcome(dead_letter=dead_letter(source, msg, raw, received_ts, "internal_error"))


def route_record(
    monitors: Monitors,
    topic: str,
    raw: bytes | None,
    source: SourceRef,
    received_ts: float,
    vectorized: bool = True,
) -> tuple[Outcome, ...]:
    """Apply one raw record, single-event or batched, event by event; one Outcome per event.

    A batched record (:mod:`streamproc.core.batches`) of ``predictions`` or ``labels`` is split
    into its events, and each goes through the same per-event path as a single-event record,
    in order, with ``source.index`` set to its position. A bad event is one dead-letter Outcome
    (its error starts with ``event i of the batch``); a batch of the wrong shape is one
    dead-letter Outcome for the whole record. A single-event record gives ``(route(...),)``.
    Never raises. :func:`iter_record` is the same, one event applied per step.
    ``vectorized``: a batch's predictions go through :meth:`ModelMonitor.on_predictions`
    (the same results, faster); False applies them one by one (to compare, to measure).

    >>> raw = b'{"model_id": "m", "model_version": "v1", "event_id": ["a", "b"], "ts": [1, -2],'
    >>> raw += b' "prediction": [1, 0]}'
    >>> outs = route_record(Monitors(), "predictions", raw, SourceRef("predictions", 0, 9), 0.0)
    >>> [o.dead_letter is None for o in outs]
    [True, False]
    >>> outs[1].dead_letter.source.index, outs[1].dead_letter.error[:40]
    (1, 'event 1 of the batch: prediction: field ')
    """
    return tuple(iter_record(monitors, topic, raw, source, received_ts, vectorized))


def iter_record(
    monitors: Monitors,
    topic: str,
    raw: bytes | None,
    source: SourceRef,
    received_ts: float,
    vectorized: bool = True,
) -> Iterator[Outcome]:
    """:func:`route_record` lazily: each event is applied when its Outcome is asked for.

    What a caller does with one event's outcome (the replay deploys at once after a retrain
    request) thus happens before the next event of the batch is applied, as it would if the
    events came one per record.
    """
    spec = _BATCHED.get(topic)
    if spec is None or raw is None:
        yield route(monitors, topic, raw, source, received_ts)
        return
    kind, cls, fields = spec
    try:
        _check_size(topic, raw)
        obj = decode_object(raw, kind)
        if not batches.is_batch(obj):
            one = partial(build, cls, fields, kind, obj)
            events = None
        else:
            events = batches.events_of(obj, kind)
    except InvalidEvent as exc:
        yield Outcome(dead_letter=dead_letter(source, str(exc), raw, received_ts, exc.reason))
        return
    except Exception as exc:  # a bug must cost one record, not the worker
        yield _internal(topic, "", raw, source, received_ts, exc)
        return
    if events is None:
        yield _guarded(monitors, topic, raw, source, received_ts, one)
        return
    if vectorized and topic == PREDICTIONS:
        checked = _checked(obj)
        prebuilt = _prebuilt(obj) if checked else None
        yield from iter_predictions(monitors, events, source, received_ts, checked, prebuilt)
        return
    labels = _prebuilt_labels(obj) if vectorized and topic == LABELS else None
    if labels is not None:
        if received_ts > 0 and max(ev.ts for ev in labels) > received_ts + MAX_FUTURE_S:
            yield from _iter_labels(monitors, labels, events, source, received_ts)
            return
        i = 0
        while i < len(labels):  # runs of one model, each through its batch path
            end = i + 1
            while end < len(labels) and labels[end].model_id == labels[i].model_id:
                end += 1
            yield from _run(monitors, labels[i:end], events[i:end], source, i, received_ts, LABELS)
            i = end
        return
    for i, ev in enumerate(events):
        src = SourceRef(source.topic, source.partition, source.offset, i)
        make = partial(build, cls, fields, kind, ev)
        yield _guarded(monitors, topic, ev, src, received_ts, make, i)


def _iter_labels(
    monitors: Monitors,
    labels: list[LabelEvent],
    raws: Sequence[dict[str, Any]],
    source: SourceRef,
    received_ts: float,
) -> Iterator[Outcome]:
    """A batch's labels, built from its columns, each applied as :func:`_guarded` would
    (the same Outcomes), without its per-event frames: an event's object is made only for
    its dead letter, and the Outcome of a label that causes nothing is shared."""
    nothing: dict[str, Outcome] = {}
    for i, ev in enumerate(labels):
        src = SourceRef(source.topic, source.partition, source.offset, i)
        try:
            _future(LABELS, ev, received_ts)
            mon = monitors.get(ev.model_id)
            if not mon.accept(src):
                yield Outcome(model_id=mon.model_id, redelivered=True)
                continue
            emitted = mon.on_label(ev, src)
            if emitted is None and not mon.mismatches:
                out = nothing.get(mon.model_id)
                if out is None:
                    out = nothing[mon.model_id] = Outcome(model_id=mon.model_id)
                yield out
            else:
                yield _outcome(mon, emitted, src, raws[i], received_ts)
        except InvalidEvent as exc:
            data = orjson.dumps(raws[i])
            msg = f"event {i} of the batch: {exc}"
            yield Outcome(dead_letter=dead_letter(src, msg, data, received_ts, exc.reason))
        except Exception as exc:  # a bug must cost one event, not the worker
            yield _internal(LABELS, f"event {i} of the batch: ", raws[i], src, received_ts, exc)


def _guarded(
    monitors: Monitors,
    topic: str,
    raw: bytes | dict[str, Any],
    source: SourceRef,
    received_ts: float,
    make: Callable[[], Any],
    index: int | None = None,
) -> Outcome:
    """Build and apply one event as :func:`route` does: its errors become its dead letter.

    ``raw`` is the record, or a batch's event as a single-event object (encoded only when it
    becomes a dead letter, so a fixed copy can be sent again alone).
    """
    where = "" if index is None else f"event {index} of the batch: "
    try:
        return _apply(monitors, topic, make(), source, received_ts, raw)
    except InvalidEvent as exc:
        data = raw if isinstance(raw, bytes) else orjson.dumps(raw)
        return Outcome(
            dead_letter=dead_letter(source, where + str(exc), data, received_ts, exc.reason)
        )
    except Exception as exc:  # a bug must cost one event, not the worker
        return _internal(topic, where, raw, source, received_ts, exc)


def _internal(
    topic: str,
    where: str,
    raw: bytes | dict[str, Any],
    source: SourceRef,
    received_ts: float,
    exc: Exception,
) -> Outcome:
    log.exception("unexpected error on %s", source)
    msg = (
        f"{where}internal error while processing this {topic} record ({type(exc).__name__}: "
        f"{exc}); the worker skipped it — please report it with this record."
    )
    data = raw if isinstance(raw, bytes) else orjson.dumps(raw)
    return Outcome(dead_letter=dead_letter(source, msg, data, received_ts, "internal_error"))


def _check_size(topic: str, raw: bytes) -> None:
    if len(raw) > MAX_RECORD_BYTES:
        raise InvalidEvent(
            f"{topic}: record is {len(raw)} bytes, over the {MAX_RECORD_BYTES} byte limit; "
            "send features and identifiers, not payloads (a batch: fewer events per record).",
            "too_large",
        )


def _route(
    monitors: Monitors, topic: str, raw: bytes | None, source: SourceRef, received_ts: float
) -> Outcome:
    if raw is None:
        raise InvalidEvent(
            f"{topic}: record has no value (a tombstone); send a JSON object.", "no_value"
        )
    _check_size(topic, raw)
    return _apply(monitors, topic, _PARSERS[topic](raw), source, received_ts, raw)


def _any_future(events: PredictionColumns, received_ts: float) -> bool:
    """Whether :func:`_future` would refuse one of ``events``."""
    return received_ts > 0 and max(events.column("ts", 0, len(events))) > received_ts + MAX_FUTURE_S


def _future(topic: str, ev: Any, received_ts: float) -> None:
    if received_ts > 0 and ev.ts > received_ts + MAX_FUTURE_S:
        raise InvalidEvent(
            f"{topic}: field 'ts' ({ev.ts:.0f}) is {(ev.ts - received_ts) / 86400:.1f} days after "
            "Kafka received the record; send seconds since the Unix epoch (UTC), not milliseconds.",
            "future_timestamp",
        )


def _apply(
    monitors: Monitors,
    topic: str,
    ev: Any,
    source: SourceRef,
    received_ts: float,
    raw: bytes | dict[str, Any],
) -> Outcome:
    """The per-event path every event takes, alone in its record or in a batch.

    ``raw`` is the record, or a batch's event as a single-event object (for a dead letter).
    """
    _future(topic, ev, received_ts)
    mon = monitors.get(ev.model_id)
    if not mon.accept(source):
        return Outcome(model_id=mon.model_id, redelivered=True)
    emitted = _HANDLERS[topic](mon, ev, source)
    return _outcome(mon, emitted, source, raw, received_ts)


def _outcome(
    mon: ModelMonitor,
    emitted: Any,
    source: SourceRef,
    raw: bytes | dict[str, Any],
    received_ts: float,
) -> Outcome:
    """The Outcome of one applied event: what it emitted, and its type mismatches' letter."""
    found = mon.take_mismatches()
    dl = _mismatch_letter(found, source, raw, received_ts) if found else None
    if isinstance(emitted, DeploymentEvent):
        return Outcome(model_id=mon.model_id, deployments=(emitted,), dead_letter=dl)
    requests = (emitted,) if emitted else ()
    return Outcome(model_id=mon.model_id, requests=requests, dead_letter=dl)


def _mismatch_letter(
    found: list[Mismatch], source: SourceRef, raw: bytes | dict[str, Any], received_ts: float
) -> DeadLetter:
    """One dead letter for the labels this record made the monitor refuse (usually one).

    The record itself was applied (its label consumed the prediction it answers); the letter
    says which pair could not be scored and why. It comes with the record's other outcomes.
    When the label came before its prediction, the prediction's record completed the pair:
    the letter then names the label (its source, and the label as the worker held it).
    """
    first = next((m for m in found if m.label_source is not None), found[0])
    if first.label_source is not None and first.label is not None:
        source, raw = first.label_source, first.label
    data = raw if isinstance(raw, bytes) else orjson.dumps(raw)
    more = f" (and {len(found) - 1} more labels like it)" if len(found) > 1 else ""
    return dead_letter(source, first.message + more, data, received_ts, "label_type_mismatch")


_PARSERS: Final[dict[str, Callable[[bytes], Any]]] = {
    PREDICTIONS: parse_prediction,
    LABELS: parse_label,
    METRICS: parse_metric,
    DEPLOYMENTS: parse_deployment,
    RETRAIN_RESULTS: parse_retrain_result,
}
_BATCHED: Final[dict[str, tuple[str, Callable[..., Any], Any]]] = {
    PREDICTIONS: ("prediction", PredictionEvent, PREDICTION_SPEC),
    LABELS: ("label", LabelEvent, LABEL_SPEC),
}
_HANDLERS: Final[dict[str, Callable[[ModelMonitor, Any, SourceRef], Any]]] = {
    PREDICTIONS: lambda m, ev, src: m.on_prediction(ev, src),
    LABELS: lambda m, ev, src: m.on_label(ev, src),
    METRICS: lambda m, ev, src: m.on_metric(ev, src),
    DEPLOYMENTS: lambda m, ev, src: m.on_deployment(ev),
    RETRAIN_RESULTS: lambda m, ev, src: m.on_result(ev),
}


def iter_predictions(
    monitors: Monitors,
    events: Sequence[dict[str, Any]],
    source: SourceRef,
    received_ts: float,
    features_checked: bool = False,
    prebuilt: PredictionColumns | None = None,
) -> Iterator[Outcome]:
    """A batch's predictions (split, not yet validated) with each model's run applied at once.

    Each event is validated first (a bad one is its dead letter, as per event); then each run
    of consecutive events of one model goes through :meth:`ModelMonitor.on_predictions`. The
    Outcomes are those of the per-event path, in the same order, yielded as they are applied.
    ``features_checked``: every feature column was checked as a whole (:func:`_checked`);
    ``prebuilt``: the events, every column checked as a whole (:func:`_prebuilt`).
    """
    if prebuilt is not None and not _any_future(prebuilt, received_ts):
        models = prebuilt.column("model_id", 0, len(prebuilt))
        i = 0
        while i < len(prebuilt):
            end = i + 1
            while end < len(prebuilt) and models[end] == models[i]:
                end += 1
            yield from _run(monitors, prebuilt[i:end], events[i:end], source, i, received_ts)
            i = end
        return
    kind, cls, fields = _BATCHED[PREDICTIONS]
    if features_checked:
        fields = _CHECKED_FEATURES_SPEC
    built: list[PredictionEvent | Outcome] = []
    for i, raw in enumerate(events if prebuilt is None else ()):
        src = SourceRef(source.topic, source.partition, source.offset, i)
        try:
            ev = build(cls, fields, kind, raw)
            _future(PREDICTIONS, ev, received_ts)
            built.append(ev)
        except InvalidEvent as exc:
            msg = f"event {i} of the batch: {exc}"
            dl = dead_letter(src, msg, orjson.dumps(raw), received_ts, exc.reason)
            built.append(Outcome(dead_letter=dl))
        except Exception as exc:  # a bug must cost one event, not the worker
            where = f"event {i} of the batch: "
            built.append(_internal(PREDICTIONS, where, raw, src, received_ts, exc))
    for i, ev in enumerate(prebuilt or ()):
        try:
            _future(PREDICTIONS, ev, received_ts)
            built.append(ev)
        except InvalidEvent as exc:
            src = SourceRef(source.topic, source.partition, source.offset, i)
            msg = f"event {i} of the batch: {exc}"
            dl = dead_letter(src, msg, orjson.dumps(events[i]), received_ts, exc.reason)
            built.append(Outcome(dead_letter=dl))
    i = 0
    while i < len(built):
        first = built[i]
        if isinstance(first, Outcome):
            yield first
            i += 1
            continue
        end = i + 1
        while end < len(built):
            nxt = built[end]
            if isinstance(nxt, Outcome) or nxt.model_id != first.model_id:
                break
            end += 1
        run = [ev for ev in built[i:end] if not isinstance(ev, Outcome)]
        yield from _run(monitors, run, events[i:end], source, i, received_ts)
        i = end


# A JSON value decoded by orjson is never NaN nor infinite; of these types, every feature
# value passes the per-event check (events._features) as it is.
_FEATURE_TYPES: Final = frozenset({int, float, str, bool, type(None)})
_CHECKED_FEATURES_SPEC: Final = tuple(
    (name, (lambda kind, field, v: v) if name == "features" else check, required)
    for name, check, required in PREDICTION_SPEC
)


def _checked(obj: dict[str, Any]) -> bool:
    """Whether each feature column of a decoded batch holds only values its events' check
    passes (then the check is not repeated per event)."""
    cols = obj.get("features")
    if not isinstance(cols, dict):
        return False
    return all(isinstance(c, list) and set(map(type, c)) <= _FEATURE_TYPES for c in cols.values())


_PREDICTION_FIELDS: Final = frozenset(name for name, _, _ in PREDICTION_SPEC)
_NUMBER: Final = frozenset({int, float})
_SCALARS: Final = frozenset({str, bool, int, float})


def _texts(v: Any) -> bool:
    """A column (or its one shared value) of non-empty strings."""
    if isinstance(v, str):
        return bool(v)
    return isinstance(v, list) and set(map(type, v)) == {str} and all(v)


def _prebuilt(obj: dict[str, Any]) -> PredictionColumns | None:
    """The prediction events of a decoded batch (its shape checked: arrays of one length)
    whose columns all pass the per-event checks (:func:`streamproc.core.events.build`: the
    same events it would build), as columns; or None: then each event is checked alone, and
    a bad one is its dead letter.

    orjson never decodes NaN or infinities: a number column only needs its types and ranges.
    """
    if not set(obj) <= _PREDICTION_FIELDS:
        return None  # fields for extra: built per event
    if not _columns_pass(obj, ("event_id", "model_id", "model_version"), "prediction"):
        return None
    ts, score = obj["ts"], obj.get("score")
    if score is not None:
        present = [x for x in score if x is not None]
        if not (set(map(type, present)) <= _NUMBER and all(0.0 <= x <= 1.0 for x in present)):
            return None
    fields = {
        "event_id": obj["event_id"],
        "model_id": obj["model_id"],
        "model_version": obj["model_version"],
        "ts": [float(t) for t in ts],
        "prediction": obj["prediction"],
        "score": None if score is None else [None if x is None else float(x) for x in score],
    }
    return PredictionColumns(fields, obj["features"])


_LABEL_FIELDS: Final = frozenset(name for name, _, _ in LABEL_SPEC) - {"extra"}


def _prebuilt_labels(obj: dict[str, Any]) -> list[LabelEvent] | None:
    """The label events of a decoded batch (its shape checked) whose columns all pass the
    per-event checks, made from the columns (as :func:`_prebuilt`); or None."""
    if not (set(obj) <= _LABEL_FIELDS and _columns_pass(obj, ("event_id", "model_id"), "label")):
        return None
    ids, ts = obj["event_id"], obj["ts"]
    return [
        LabelEvent(e, m, float(t), y)
        for e, m, t, y in zip(ids, _each(obj["model_id"], len(ids)), ts, obj["label"], strict=True)
    ]


def _columns_pass(obj: dict[str, Any], ids: tuple[str, ...], value: str) -> bool:
    """The per-event checks, column by column: ``ids`` non-empty strings (a column or one for
    the batch), ``ts`` numbers >= 0, ``value`` numbers, strings or booleans."""
    ts = obj.get("ts")
    return (
        all(_texts(obj.get(name)) for name in ids)
        and isinstance(ts, list)
        and set(map(type, ts)) <= _NUMBER
        and min(ts) >= 0
        and set(map(type, obj.get(value) or [None])) <= _SCALARS
    )


def _each(v: Any, n: int) -> Iterable[Any]:
    """A column, or the one value a batch gives for all its ``n`` events."""
    return v if isinstance(v, list) else repeat(v, n)


def _run(
    monitors: Monitors,
    run: Sequence[PredictionEvent] | Sequence[LabelEvent],
    raws: Sequence[dict[str, Any]],
    source: SourceRef,
    start: int,
    received_ts: float,
    topic: str = PREDICTIONS,
) -> Iterator[Outcome]:
    """One model's consecutive valid events of a batch (of ``topic``: predictions or labels),
    through its batch path."""
    mon = monitors.get(run[0].model_id)
    srcs = _Sources(source, start, len(run))
    # A redelivered record's events already applied come first (they share its offset).
    fresh = 0
    while fresh < len(run) and not mon.accept(srcs[fresh]):
        yield Outcome(model_id=mon.model_id, redelivered=True)
        fresh += 1
    if fresh < len(run) - 1:
        # The later indices of the same offset are accepted in turn; the last one is what
        # accepting each of them leaves.
        mon.accept(srcs[len(run) - 1])
    one = _HANDLERS[topic]
    applied = (
        mon.on_labels(run[fresh:], srcs[fresh:])  # type: ignore[arg-type]
        if topic == LABELS
        else mon.on_predictions(run[fresh:], srcs[fresh:])  # type: ignore[arg-type]
    )
    k = fresh
    nothing = Outcome(model_id=mon.model_id)  # what most events cause (frozen: shared)
    try:
        for k, emitted in applied:
            k += fresh
            if emitted is None and not mon.mismatches:
                yield nothing
            else:
                yield _outcome(mon, emitted, srcs[k], raws[k], received_ts)
            k += 1
    except Exception as exc:  # a bug must cost one event, not the worker
        where = f"event {start + k} of the batch: "
        yield _internal(topic, where, raws[k], srcs[k], received_ts, exc)
        for j in range(k + 1, len(run)):  # the rest one by one (accepted already)
            try:
                emitted = one(mon, run[j], srcs[j])
                yield _outcome(mon, emitted, srcs[j], raws[j], received_ts)
            except Exception as again:
                where = f"event {start + j} of the batch: "
                yield _internal(topic, where, raws[j], srcs[j], received_ts, again)


class _Sources(Sequence[SourceRef]):
    """The sources of a batch's events ``start..start+n-1``, made when one is asked for."""

    def __init__(self, source: SourceRef, start: int, n: int) -> None:
        self.source, self.start, self.n = source, start, n

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, i: int) -> SourceRef: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[SourceRef]: ...
    def __getitem__(self, i: int | slice) -> SourceRef | Sequence[SourceRef]:
        if isinstance(i, slice):
            lo, hi, step = i.indices(self.n)
            if step != 1:
                raise ValueError("batch sources: slices of step 1 only")
            return _Sources(self.source, self.start + lo, max(hi - lo, 0))
        if not -self.n <= i < self.n:
            raise IndexError(i)
        s = self.source
        return SourceRef(s.topic, s.partition, s.offset, self.start + (i % self.n))
