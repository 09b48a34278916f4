"""Batched records: many prediction or label events in one Kafka record, in columnar form.

The per-record cost of a Kafka consumer (about 100 us in faust) is paid once per record, so a
record that carries a thousand events costs a thousandth of it per event. This module is the
authoritative description of the batched wire format, and its two directions: :func:`split`
turns a decoded batch into the single-event objects it stands for (which then go through the
same per-event validation and monitor as single-event records), :func:`columns` builds a batch
from single-event objects (the SDK's direction).

Format
------
A record on ``predictions`` or ``labels`` is a **batch** when its ``event_id`` is a JSON array;
otherwise it is a single event, exactly as before. In a batch:

- ``event_id``, ``ts`` and the payload (``prediction`` on predictions, ``label`` on labels) are
  arrays, one value per event, all of the same length ``n >= 1``;
- ``score`` (predictions, optional) is an array of length ``n``; ``null`` means "no score" for
  that event;
- ``features`` (predictions, optional) is an object ``{name: [n values]}``; a ``null`` value
  is a missing value of that feature for that event (exactly as ``"name": null`` in a
  single-event record);
- ``model_id`` (and ``model_version`` on predictions) is either one string (every event is of
  that model) or an array of length ``n`` (a batch of many models, for fleets of small models);
- any other field is kept, unchanged, in every event's ``extra`` (never a reason to reject).

Events are applied in array order, each exactly as if it had been sent alone, one record per
event, in that order: the same validation, the same retrain requests and evidence, the same
state. A bad event (say ``ts[3]`` is a string) becomes one dead letter whose ``source.index``
is its position and whose error starts with ``event 3 of the batch``; the other events are
applied. A batch whose shape is wrong (an array of another length, a column that is not an
array, ``features`` not an object) is one dead letter for the whole record.

A record, batch or not, stays under 1 MiB (:data:`streamproc.core.router.MAX_RECORD_BYTES`).
Key a one-model batch by its ``model_id``; key a many-model batch by a name every record of
those models uses (say, the fleet), so that all of a model's events reach one partition in order.

Examples
--------
>>> batch = {"model_id": "m", "model_version": "v1", "event_id": ["a", "b"], "ts": [1.0, 2.0],
...          "prediction": [0, 1], "features": {"x": [0.5, None]}}
>>> [e["event_id"] for e in split(batch, "prediction")]
['a', 'b']
>>> split(batch, "prediction")[1]["features"]
{'x': None}
>>> columns("prediction", split(batch, "prediction")) == batch
True
>>> try:
...     split({"model_id": "m", "event_id": ["a"], "ts": [1, 2], "label": [0]}, "label")
... except InvalidEvent as exc:
...     print(exc)
label batch: field 'ts' has 2 values but 'event_id' has 1; send one value per event in every array.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import repeat
from typing import Any, Final, overload

from streamproc.core.events import InvalidEvent, PredictionEvent

__all__ = [
    "BATCHED_KINDS",
    "BatchEvents",
    "PredictionColumns",
    "columns",
    "events_of",
    "is_batch",
    "split",
]

# The kinds a batch may carry and, per kind, the per-event array fields (required, optional).
BATCHED_KINDS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "prediction": (("event_id", "ts", "prediction"), ("score",)),
    "label": (("event_id", "ts", "label"), ()),
}
# Fields that may be one value for the whole batch or one value per event.
_PER_BATCH_OR_EVENT: Final[dict[str, tuple[str, ...]]] = {
    "prediction": ("model_id", "model_version"),
    "label": ("model_id",),
}


def is_batch(obj: Mapping[str, Any]) -> bool:
    """Whether a decoded prediction or label record is a batch (its ``event_id`` is an array)."""
    return isinstance(obj.get("event_id"), list)


def _shape_error(kind: str, problem: str, fix: str) -> InvalidEvent:
    return InvalidEvent(f"{kind} batch: {problem}; {fix}.", "invalid_field")


def split(obj: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    """The single-event objects a batch stands for, in order (not yet validated one by one).

    Parameters
    ----------
    obj
        A decoded batch record (``is_batch(obj)`` is true).
    kind
        ``"prediction"`` or ``"label"``.

    Returns
    -------
    list of dict
        ``n`` objects, each shaped as a single-event record of ``kind``.

    Raises
    ------
    InvalidEvent
        The batch's shape is wrong: a column is not an array, arrays differ in length,
        ``features`` is not an object of arrays, or there is no event. The whole record is
        then one dead letter.
    """
    return list(events_of(obj, kind))


def events_of(obj: Mapping[str, Any], kind: str) -> BatchEvents:
    """:func:`split`, each event made when it is first asked for (a batch applied from its
    columns needs an event's object only for a dead letter). Raises as :func:`split` does."""
    required, optional = BATCHED_KINDS[kind]
    ids = obj.get("event_id")
    if not isinstance(ids, list):
        raise _shape_error(kind, "field 'event_id' is not an array", "send one id per event")
    n = len(ids)
    if n == 0:
        raise _shape_error(kind, "'event_id' is an empty array", "send at least one event")
    cols: dict[str, list[Any]] = {}
    for name in (*required, *optional):
        v = obj.get(name)
        if v is None and name in optional:
            continue
        cols[name] = _column(kind, name, v, n)
    shared: dict[str, Any] = {}
    for name in _PER_BATCH_OR_EVENT[kind]:
        v = obj.get(name)
        if isinstance(v, list):
            cols[name] = _column(kind, name, v, n)
        elif v is not None:
            if not isinstance(v, str) or not v:
                raise _shape_error(
                    kind,
                    f"field '{name}' must be a non-empty string or an array, got {v!r:.40}",
                    "send one id for the whole batch or one per event",
                )
            shared[name] = v
    features = _features(kind, obj.get("features"), n) if kind == "prediction" else None
    known = {*required, *optional, *_PER_BATCH_OR_EVENT[kind], "features"}
    extra = {k: v for k, v in obj.items() if k not in known}
    return BatchEvents(n, {**extra, **shared}, cols, features)


class BatchEvents(Sequence[dict[str, Any]]):
    """The events of a checked batch as single-event objects, each made on access.

    Attributes
    ----------
    columns
        Per-event fields by name (arrays of ``n``), as sent.
    features
        Feature arrays by name (predictions), or None.
    """

    def __init__(
        self,
        n: int,
        common: dict[str, Any],
        columns: dict[str, list[Any]],
        features: dict[str, list[Any]] | None,
        start: int = 0,
    ) -> None:
        self.n, self.common, self.columns, self.features = n, common, columns, features
        self.start = start

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[dict[str, Any]]:
        common, cols, feats = self.common, self.columns.items(), self.features
        for k in range(self.start, self.start + self.n):
            ev = dict(common)
            for name, col in cols:
                if col[k] is not None:
                    ev[name] = col[k]
            if feats is not None:
                ev["features"] = {name: col[k] for name, col in feats.items()}
            yield ev

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> BatchEvents: ...
    def __getitem__(self, i: int | slice) -> dict[str, Any] | BatchEvents:
        if isinstance(i, slice):
            lo, hi, step = i.indices(self.n)
            if step != 1:
                raise ValueError("batch events: slices of step 1 only")
            n = max(hi - lo, 0)
            return BatchEvents(n, self.common, self.columns, self.features, self.start + lo)
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return next(iter(self[i % self.n : i % self.n + 1]))


class PredictionColumns(Sequence[PredictionEvent]):
    """Predictions held as columns, each :class:`PredictionEvent` made on access.

    The batch path (:mod:`streamproc.core.batchmonitor`) reads the columns themselves, so a
    prediction that only updates detectors and waits for its label is never an object. Every
    event has the same feature names, in the same order. Slices are views.

    Parameters
    ----------
    fields
        ``event_id``, ``model_id``, ``model_version``, ``ts`` (floats), ``prediction`` and
        ``score`` (None for all, or a column holding None where absent): columns of ``n``
        values; ``model_id`` and ``model_version`` may be one string for every event.
    features
        Feature columns by name, each of ``n`` values.
    objects
        The events themselves when they already exist (:meth:`of`): returned on access.

    Examples
    --------
    >>> cols = PredictionColumns.of([PredictionEvent("a", "m", "v1", 1.0, 0, {"x": 0.5}),
    ...                              PredictionEvent("b", "m", "v1", 2.0, 1, {"x": None})])
    >>> cols.feature("x", 0, 2), cols.column("event_id", 1, 2), cols[1:].keys
    ([0.5, None], ['b'], ('x',))
    """

    __slots__ = ("features", "fields", "keys", "lo", "n", "objects")

    def __init__(
        self,
        fields: Mapping[str, Any],
        features: Mapping[str, list[Any]],
        objects: Sequence[PredictionEvent] | None = None,
        lo: int = 0,
        n: int | None = None,
    ) -> None:
        self.fields, self.features, self.objects = fields, features, objects
        self.keys = tuple(features)
        self.lo = lo
        self.n = len(fields["event_id"]) - lo if n is None else n

    @classmethod
    def of(cls, events: Sequence[PredictionEvent]) -> PredictionColumns | None:
        """The columns of events that all have the same feature names in the same order
        (None otherwise, or for no events)."""
        if not events:
            return None
        keys = tuple(events[0].features)
        if any(tuple(ev.features) != keys for ev in events):
            return None
        fields = {
            name: [getattr(ev, name) for ev in events]
            for name in ("event_id", "model_id", "model_version", "ts", "prediction", "score")
        }
        features = {k: [ev.features[k] for ev in events] for k in keys}
        return cls(fields, features, events)

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, i: int) -> PredictionEvent: ...
    @overload
    def __getitem__(self, i: slice) -> PredictionColumns: ...
    def __getitem__(self, i: int | slice) -> PredictionEvent | PredictionColumns:
        if isinstance(i, slice):
            lo, hi, step = i.indices(self.n)
            if step != 1:
                raise ValueError("prediction columns: slices of step 1 only")
            return PredictionColumns(
                self.fields, self.features, self.objects, self.lo + lo, max(hi - lo, 0)
            )
        if not -self.n <= i < self.n:
            raise IndexError(i)
        j = self.lo + i % self.n
        if self.objects is not None:
            return self.objects[j]
        f = self.fields
        score = f["score"]
        return PredictionEvent(
            f["event_id"][j],
            _one(f["model_id"], j),
            _one(f["model_version"], j),
            f["ts"][j],
            f["prediction"][j],
            {k: col[j] for k, col in self.features.items()},
            None if score is None else score[j],
        )

    def column(self, name: str, start: int, stop: int) -> list[Any]:
        """Field ``name`` of the events ``start..stop-1`` (of this view)."""
        v = self.fields[name]
        n = max(0, min(stop, self.n) - start)
        if v is None or isinstance(v, str):
            return list(repeat(v, n))
        return list(v[self.lo + start : self.lo + start + n])

    def feature(self, key: str, start: int, stop: int) -> list[Any]:
        """Feature ``key`` of the events ``start..stop-1`` (of this view)."""
        stop = min(stop, self.n)
        return self.features[key][self.lo + start : self.lo + stop]

    def feature_rows(self, start: int, stop: int) -> list[dict[str, Any]]:
        """The feature mappings of the events ``start..stop-1``, each a new dict."""
        stop = min(stop, self.n)
        if self.objects is not None:
            return [dict(ev.features) for ev in self.objects[self.lo + start : self.lo + stop]]
        keys = self.keys
        if not keys:
            return [{} for _ in range(start, stop)]
        cols = [col[self.lo + start : self.lo + stop] for col in self.features.values()]
        return [dict(zip(keys, row, strict=True)) for row in zip(*cols, strict=True)]


def _one(v: Any, j: int) -> Any:
    return v if isinstance(v, str) else v[j]


def _column(kind: str, name: str, v: object, n: int) -> list[Any]:
    if not isinstance(v, list):
        what = "missing" if v is None else f"not an array ({type(v).__name__})"
        raise _shape_error(kind, f"field '{name}' is {what}", "send an array, one value per event")
    if len(v) != n:
        raise _shape_error(
            kind,
            f"field '{name}' has {len(v)} values but 'event_id' has {n}",
            "send one value per event in every array",
        )
    return v


def _features(kind: str, v: object, n: int) -> dict[str, list[Any]] | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise _shape_error(
            kind, "field 'features' is not an object", "send {name: [one value per event]}"
        )
    return {k: _column(kind, f"features.{k}", col, n) for k, col in v.items()}


def columns(kind: str, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The batch record of single-event objects of ``kind`` (the inverse of :func:`split`).

    ``model_id`` / ``model_version`` become one value when every event shares it, else arrays.
    A feature that an event lacks is ``null`` for that event (a missing value). Fields outside
    the contract (an event's ``extra``) are dropped: a batch has no per-event place for them.

    Raises
    ------
    ValueError
        ``events`` is empty.
    """
    if not events:
        raise ValueError("columns: no events; a batch carries at least one.")
    required, optional = BATCHED_KINDS[kind]
    out: dict[str, Any] = {}
    for name in _PER_BATCH_OR_EVENT[kind]:
        vals = [ev.get(name) for ev in events]
        if all(x is None for x in vals):
            continue
        first = vals[0]
        out[name] = first if all(x == first for x in vals) else vals
    for name in required:
        out[name] = [ev.get(name) for ev in events]
    for name in optional:
        vals = [ev.get(name) for ev in events]
        if any(x is not None for x in vals):
            out[name] = vals
    if kind == "prediction":
        names: dict[str, None] = {}
        for ev in events:
            names.update(dict.fromkeys(ev.get("features") or ()))
        if names:
            out["features"] = {
                k: [(ev.get("features") or {}).get(k) for ev in events] for k in names
            }
    return out
