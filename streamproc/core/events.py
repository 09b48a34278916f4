"""Event contracts: parse, validate and serialize every record that crosses Kafka.

Each event of ``shared/design.md`` is a frozen dataclass. ``parse_*`` turns raw bytes into one,
raising :class:`InvalidEvent` with a sentence a person understands; ``encode`` turns any of them
back into compact JSON bytes (orjson). Unknown extra fields are kept in ``extra`` and never a
reason to reject.

The classes are the one source of their fields: each wire field carries its unit and meaning
(``field(metadata=about(...))``), from which come the classes' Attributes docstrings, the
parsers' specs (:func:`spec_of`: the check follows the annotation unless the field names one;
a field without a default is required) and the tables of ``docs/contracts.md``
(:func:`field_docs`).

Examples
--------
>>> ev = parse_metric(b'{"model_id": "m", "ts": 10, "name": "drift", "value": 0.12}')
>>> ev.name, ev.value, ev.model_version
('drift', 0.12, None)
>>> try:
...     parse_metric(b'{"model_id": "m", "ts": 10, "name": "drift"}')
... except InvalidEvent as exc:
...     print(exc)
metric: required field 'value' is missing; add it (a finite number).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Final, NamedTuple, TypeVar

import orjson

from streamproc.core.exceptions import StreamprocError

__all__ = [
    "DeadLetter",
    "DeploymentEvent",
    "FieldDoc",
    "InvalidEvent",
    "LabelEvent",
    "MetricEvent",
    "PredictionEvent",
    "Reason",
    "RetrainRequest",
    "RetrainResult",
    "SourceRef",
    "about",
    "encode",
    "field_docs",
    "parse_deployment",
    "parse_label",
    "parse_metric",
    "parse_prediction",
    "parse_retrain_request",
    "parse_retrain_result",
    "spec_of",
    "to_dict",
]

Scalar = float | int | str | bool
FeatureValue = float | int | str | bool | None

MAX_RAW_CHARS: Final = 2000
RESULT_STATUSES: Final = frozenset({"succeeded", "failed", "rejected"})
DEPLOY_ACTIONS: Final = frozenset({"promote", "rollback"})


class InvalidEvent(StreamprocError, ValueError):
    """A record that breaks its contract; the message says what is wrong and how to fix it.

    ``reason`` is a short code from :data:`DEAD_LETTER_REASONS` (a bounded label for metrics).
    """

    def __init__(self, message: str, reason: str = "invalid_field") -> None:
        super().__init__(message)
        self.reason = reason


# Dead-letter reason codes: few and fixed, so a metric labelled by them stays small.
DEAD_LETTER_REASONS: Final = (
    "not_json",
    "not_object",
    "missing_field",
    "invalid_field",
    "no_value",
    "too_large",
    "future_timestamp",
    "internal_error",
    "label_type_mismatch",
)


# --------------------------------------------------------------------------- field checks
# Each check takes (kind, field name, value) and returns the normalised value or raises.


def _fail(kind: str, name: str, problem: str, fix: str) -> InvalidEvent:
    return InvalidEvent(f"{kind}: field '{name}' {problem}; {fix}.")


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _text(kind: str, name: str, v: object) -> str:
    if not isinstance(v, str):
        raise _fail(kind, name, f"must be a string, got {_typename(v)}", "send it as a JSON string")
    if not v:
        raise _fail(kind, name, "is empty", "send a non-empty string")
    return v


def _finite(kind: str, name: str, v: object) -> float:
    if not _is_number(v):
        raise _fail(kind, name, f"must be a number, got {_typename(v)}", "send a JSON number")
    x = float(v)  # type: ignore[arg-type]
    if not math.isfinite(x):
        raise _fail(kind, name, f"is not finite ({x})", "send a finite number")
    return x


def _timestamp(kind: str, name: str, v: object) -> float:
    x = _finite(kind, name, v)
    if x < 0:
        raise _fail(kind, name, f"is negative ({x})", "send seconds since the Unix epoch (UTC)")
    return x


def _score(kind: str, name: str, v: object) -> float:
    x = _finite(kind, name, v)
    if not 0.0 <= x <= 1.0:
        raise _fail(kind, name, f"is {x}, outside [0, 1]", "send the prediction's confidence")
    return x


def _scalar(kind: str, name: str, v: object) -> Scalar:
    if isinstance(v, str | bool):
        return v
    if _is_number(v):
        _finite(kind, name, v)
        return v  # type: ignore[return-value]
    raise _fail(kind, name, f"must be a number, string or boolean, got {_typename(v)}", "fix it")


def _features(kind: str, name: str, v: object) -> Mapping[str, FeatureValue]:
    if not isinstance(v, dict):
        raise _fail(kind, name, f"must be an object, got {_typename(v)}", "send name -> value")
    for key, x in v.items():
        if x is None or isinstance(x, str | bool):
            continue
        if not _is_number(x):
            raise _fail(
                kind,
                f"{name}.{key}",
                f"must be a number, string, boolean or null, got {_typename(x)}",
                "flatten nested values into separate features",
            )
        if not math.isfinite(x):
            raise _fail(kind, f"{name}.{key}", f"is not finite ({x})", "send null for missing")
    return v


def _object(kind: str, name: str, v: object) -> Mapping[str, Any]:
    if not isinstance(v, dict):
        raise _fail(kind, name, f"must be an object, got {_typename(v)}", "send a JSON object")
    return v


def _one_of(allowed: frozenset[str]) -> Callable[[str, str, object], str]:
    def check(kind: str, name: str, v: object) -> str:
        s = _text(kind, name, v)
        if s not in allowed:
            raise _fail(kind, name, f"is {s!r}", f"use one of {sorted(allowed)}")
        return s

    return check


def _source(kind: str, name: str, v: object) -> SourceRef:
    obj = _object(kind, name, v)
    topic = _text(kind, f"{name}.topic", obj.get("topic"))
    part, off = obj.get("partition"), obj.get("offset")
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (part, off)):
        raise _fail(kind, name, "needs integer partition and offset", "send topic/partition/offset")
    index = obj.get("index")
    if index is not None and (not isinstance(index, int) or isinstance(index, bool) or index < 0):
        raise _fail(kind, f"{name}.index", "must be a non-negative integer", "or leave it out")
    return SourceRef(topic, int(part), int(off), index)  # type: ignore[arg-type]


def _reasons(kind: str, name: str, v: object) -> tuple[Reason, ...]:
    if not isinstance(v, list) or not v:
        raise _fail(kind, name, "must be a non-empty list", "say at least one reason to retrain")
    out = []
    for i, item in enumerate(v):
        r = _object(kind, f"{name}[{i}]", item)
        n = r.get("n", _reason_default("n"))
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise _fail(kind, f"{name}[{i}].n", "must be a non-negative integer", "count the data")
        value = r.get("value", _reason_default("value"))
        threshold = r.get("threshold", _reason_default("threshold"))
        out.append(
            Reason(
                signal=_text(kind, f"{name}[{i}].signal", r.get("signal")),
                detector=_text(
                    kind, f"{name}[{i}].detector", r.get("detector", _reason_default("detector"))
                ),
                value=_finite(kind, f"{name}[{i}].value", value),
                threshold=_finite(kind, f"{name}[{i}].threshold", threshold),
                n=n,
                details=_object(kind, f"{name}[{i}].details", r.get("details", {})),
            )
        )
    return tuple(out)


def _reason_default(name: str) -> Any:
    """What a reason left without ``name`` gets (the field's documented default)."""
    return Reason.__dataclass_fields__[name].metadata["default"]


def _typename(v: object) -> str:
    return {
        type(None): "null",
        bool: "a boolean",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(v), "a number" if _is_number(v) else type(v).__name__)


Check = Callable[[str, str, object], Any]
E = TypeVar("E")
# (field, check, required) per event kind; the order is the dataclass constructor's keywords.
_Spec = tuple[tuple[str, Check, bool], ...]

# --------------------------------------------------------------------------- field documentation
# Each wire field carries its documentation and, where the type alone does not say it, its
# check: the parsers' specs, the classes' docstrings and docs/contracts.md all come from here.

EPOCH: Final = "seconds since the epoch (UTC)"
KEYED: Final = "the model (also the record key)"


class FieldDoc(NamedTuple):
    """One wire field of an event, as docs/contracts.md shows it.

    Attributes
    ----------
    name : str
        The JSON key (the dataclass field's name).
    wire_type : str
        The JSON type: string, number, integer, scalar, object, or an event class (a list of
        them: ``list of Reason``).
    unit : str
        Unit or allowed values ("" when the type says it all).
    required : bool
        A record without it is refused (for records only written: it is always written).
    default : Any
        What a parser puts in when the field is left out (None: nothing).
    meaning : str
        What it is, in a sentence.
    """

    name: str
    wire_type: str
    unit: str
    required: bool
    default: Any
    meaning: str


def about(
    unit: str,
    meaning: str,
    *,
    check: Check | None = None,
    required: bool | None = None,
    default: Any = None,
) -> dict[str, Any]:
    """The metadata of one wire field: ``field(metadata=about(unit, meaning))``.

    Parameters
    ----------
    unit : str
        Unit or allowed values, "" if none.
    meaning : str
        What the field is.
    check : callable, optional
        The validation, when the annotation's own (``str``: non-empty, ``float``: finite, ...)
        is not enough (a timestamp, a score in [0, 1], a closed set of values).
    required : bool, optional
        Overrides "required unless it has a default" (a field always written).
    default : Any, optional
        The value a parser fills in for a missing field that the dataclass does not default.
    """
    return {"unit": unit, "meaning": meaning, "check": check, "required": required,
            "default": default}  # fmt: skip


# Annotation (without ``| None``) -> (JSON type, check). Annotations are strings here
# (``from __future__ import annotations``), exactly as written in the classes below.
_BY_ANNOTATION: Final[dict[str, tuple[str, Check | None]]] = {
    "str": ("string", _text),
    "float": ("number", _finite),
    "int": ("integer", None),
    "Scalar": ("scalar", _scalar),
    "Mapping[str, FeatureValue]": ("object", _features),
    "Mapping[str, Any]": ("object", _object),
    "tuple[Reason, ...]": ("list of Reason", _reasons),
    "SourceRef": ("SourceRef", _source),
}


def _by_annotation(cls: Any, f: Field[Any]) -> tuple[str, Check | None]:
    """The JSON type and default check of a field, from its annotation; TypeError if unknown."""
    text = str(f.type)
    bare = text[: -len(" | None")] if text.endswith(" | None") else text
    if bare not in _BY_ANNOTATION or "meaning" not in f.metadata:
        raise TypeError(
            f"{cls.__name__}.{f.name}: a wire field needs field(metadata=about(...)) and an "
            f"annotation among {sorted(_BY_ANNOTATION)} (got {text!r}); add one, or name its "
            "check with about(check=...)"
        )
    return _BY_ANNOTATION[bare]


def _wire_fields(cls: Any) -> list[Field[Any]]:
    return [f for f in fields(cls) if f.name != "extra"]  # extra: unknown keys, kept as sent


def _is_required(f: Field[Any]) -> bool:
    if f.metadata.get("required") is not None:
        return bool(f.metadata["required"])
    return f.default is MISSING and f.default_factory is MISSING


def field_docs(cls: Any) -> tuple[FieldDoc, ...]:
    """The documentation of each wire field of the event class ``cls``, in constructor order.

    >>> [(d.name, d.wire_type, d.required) for d in field_docs(SourceRef)][:2]
    [('topic', 'string', True), ('partition', 'integer', True)]
    """
    out = []
    for f in _wire_fields(cls):
        wire_type, _ = _by_annotation(cls, f)
        meta = f.metadata
        out.append(FieldDoc(f.name, wire_type, meta["unit"], _is_required(f), meta["default"],
                            meta["meaning"]))  # fmt: skip
    return tuple(out)


def _documented(cls: type[E]) -> type[E]:
    """Append a numpy-style Attributes section, one entry per wire field, to the docstring."""
    lines = ["", "", "    Attributes", "    ----------"]
    for d in field_docs(cls):
        text = d.meaning[0].upper() + d.meaning[1:] + "."
        text += f" Unit or values: {d.unit}." if d.unit else ""
        text += f" Default: {d.default!r}." if d.default is not None else ""
        optional = "" if d.required else ", optional"
        lines.append(f"    {d.name} : {d.wire_type}{optional}")
        lines += textwrap.wrap(text, 96, initial_indent=" " * 8, subsequent_indent=" " * 8)
    cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n".join(lines) + "\n"
    return cls


# --------------------------------------------------------------------------- dataclasses


@_documented
@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a record came from: enough to find it again in Kafka.

    Not a record of its own: the ``source`` of a RetrainRequest and of a DeadLetter.
    """

    topic: str = field(
        metadata=about("logical topic name (without prefix)", "where the record was")
    )
    partition: int = field(metadata=about("", "its partition"))
    offset: int = field(metadata=about("", "its offset"))
    index: int | None = field(
        default=None,
        metadata=about(
            "position in a batched record, from 0",
            "which event of a batch (absent for a single-event record)",
        ),
    )


@_documented
@dataclass(frozen=True, slots=True)
class PredictionEvent:
    """One prediction a model served: a record on ``predictions``."""

    event_id: str = field(metadata=about("unique per prediction", "the id a label answers"))
    model_id: str = field(metadata=about("", KEYED))
    model_version: str = field(metadata=about("", "the version that made the prediction"))
    ts: float = field(metadata=about(EPOCH, "when the prediction was made", check=_timestamp))
    prediction: Scalar = field(metadata=about("class or value", "what the model answered"))
    features: Mapping[str, FeatureValue] = field(
        default_factory=dict,
        metadata=about(
            "name -> number, string, boolean or null",
            "the model's inputs; `null` is a missing value; nested values are refused",
        ),
    )
    score: float | None = field(
        default=None,
        metadata=about("in [0, 1]", "the model's confidence in its prediction", check=_score),
    )
    extra: Mapping[str, Any] = field(default_factory=dict)


@_documented
@dataclass(frozen=True, slots=True)
class LabelEvent:
    """The ground truth of one prediction, whenever it is known: a record on ``labels``."""

    event_id: str = field(metadata=about("", "the prediction it answers"))
    model_id: str = field(metadata=about("", KEYED))
    ts: float = field(metadata=about(EPOCH, "when the label became known", check=_timestamp))
    label: Scalar = field(
        metadata=about(
            "class or value",
            'the true answer, of the prediction\'s type (a numeric string such as `"1"` counts '
            'as a number); see the README, "Tasks, label types and the error detectors"',
        )
    )
    extra: Mapping[str, Any] = field(default_factory=dict)


@_documented
@dataclass(frozen=True, slots=True)
class MetricEvent:
    """A metric an inference server or an outside monitor measured: a record on ``metrics``."""

    model_id: str = field(metadata=about("", KEYED))
    ts: float = field(metadata=about(EPOCH, "when it was measured", check=_timestamp))
    name: str = field(
        metadata=about(
            "e.g. `drift`, `accuracy`, `latency_ms`",
            "which metric; the policy's `[[metrics]]` rules name it",
        )
    )
    value: float = field(metadata=about("finite, in the metric's own unit", "the measured value"))
    model_version: str | None = field(
        default=None,
        metadata=about(
            "",
            "the version measured; without it, the version deployed when it arrives. A metric "
            "for another version is counted (`stale_metrics`) and ignored",
        ),
    )
    extra: Mapping[str, Any] = field(default_factory=dict)


@_documented
@dataclass(frozen=True, slots=True)
class Reason:
    """One piece of evidence for a retrain: what fired, at what value, on how much data.

    Not a record of its own: an element of RetrainRequest's ``reasons``.
    """

    signal: str = field(
        metadata=about(
            "`error`, `feature:<name>`, `prediction`, `score`, `metric:<name>`, `refit`, "
            "`schedule`, `manual`",
            "what fired",
        )
    )
    detector: str = field(
        metadata=about(
            "e.g. `cusum`, `ks`, `psi`, `threshold`, `examples` (refit), `max_age` or "
            "`max_events` (schedule), `operator` (manual)",
            "the test that fired",
            required=False,
            default="manual",
        )
    )
    value: float = field(
        metadata=about(
            "the detector's statistic (a threshold rule: the metric's value)",
            "the value that fired",
            required=False,
            default=0.0,
        )
    )
    threshold: float = field(
        metadata=about(
            "in the statistic's unit", "what the value had to reach", required=False, default=0.0
        )
    )
    n: int = field(
        metadata=about(
            ">= 0, samples", "how much data the detector had seen", required=False, default=0
        )
    )
    details: Mapping[str, Any] = field(
        default_factory=dict,
        metadata=about(
            "",
            "extra evidence: reference level and window sizes; for a CUSUM `since_change` and "
            "`change_ts` (seconds since the epoch); for a threshold its direction; for a manual "
            "request the operator's note",
        ),
    )


@_documented
@dataclass(frozen=True, slots=True)
class RetrainRequest:
    """A model must be retrained, and why: a record on ``retrain-requests``."""

    request_id: str = field(
        metadata=about(
            "`rr-<hash>` (automatic), `manual-...` (by hand)",
            "deterministic: the same evidence gives the same id, so duplicates are dropped",
        )
    )
    model_id: str = field(metadata=about("", KEYED))
    model_version: str = field(metadata=about("", "the version that drifted"))
    ts: float = field(
        metadata=about(EPOCH, "event time of the record that tipped the decision", check=_timestamp)
    )
    reasons: tuple[Reason, ...] = field(metadata=about("non-empty", "what fired (see Reason)"))
    policy: str | None = field(
        default=None, metadata=about("", "the name of the policy that decided")
    )
    source: SourceRef | None = field(
        default=None, metadata=about("", "the record that tipped the decision")
    )
    extra: Mapping[str, Any] = field(default_factory=dict)


@_documented
@dataclass(frozen=True, slots=True)
class RetrainResult:
    """How a retrain ended: a record on ``retrain-results`` (external trainers publish it too)."""

    request_id: str = field(metadata=about("", "the request it answers"))
    model_id: str = field(metadata=about("", KEYED))
    status: str = field(
        metadata=about(
            "`succeeded`, `failed`, `rejected`",
            "`rejected`: the gate kept the current model",
            check=_one_of(RESULT_STATUSES),
        )
    )
    ts: float = field(
        metadata=about(EPOCH, "when the retrain ended (wall clock)", check=_timestamp)
    )
    candidate_version: str | None = field(
        default=None, metadata=about("`v-<hash>`", "the version trained")
    )
    metrics: Mapping[str, Any] = field(
        default_factory=dict,
        metadata=about(
            "",
            "the gate's evidence: `candidate_error` and `current_error` (holdout error, 0..1 "
            "for classes), `holdout`, `holdout_current`, `train` (example counts), `gate` (the "
            "verdict in words), and the trainer's own",
        ),
    )
    error: str | None = field(default=None, metadata=about("", "why it failed, in a sentence"))
    extra: Mapping[str, Any] = field(default_factory=dict)


@_documented
@dataclass(frozen=True, slots=True)
class DeploymentEvent:
    """A version goes live: a record on ``deployments``; inference servers follow this topic."""

    deployment_id: str = field(
        metadata=about("`dep-<hash>`, `rb-<hash>`", "consumers drop a repeated one")
    )
    model_id: str = field(metadata=about("", KEYED))
    version: str = field(metadata=about("", "the version now live"))
    action: str = field(
        metadata=about(
            "`promote`, `rollback`",
            "a retrained candidate, or back to the previous version",
            check=_one_of(DEPLOY_ACTIONS),
        )
    )
    ts: float = field(metadata=about(EPOCH, "when it was decided", check=_timestamp))
    request_id: str | None = field(default=None, metadata=about("", "the retrain that produced it"))
    previous_version: str | None = field(
        default=None, metadata=about("", "the version it replaces")
    )
    artifact_uri: str | None = field(
        default=None,
        metadata=about("", "where the model artifact is (registry file, or a trainer's URI)"),
    )
    metrics: Mapping[str, Any] = field(
        default_factory=dict,
        metadata=about("", "the gate's evidence (as RetrainResult's), or a rollback's"),
    )
    extra: Mapping[str, Any] = field(default_factory=dict)


@_documented
@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record the worker could not accept: a record on ``dead-letters`` (worker only)."""

    source: SourceRef = field(metadata=about("", "where the bad record is"))
    error: str = field(metadata=about("", "a sentence: what is wrong and what to do"))
    raw: str = field(
        metadata=about(
            "at most 2000 characters, then `... [truncated, N bytes in all]`",
            "the bad record's value as text",
        )
    )
    ts: float = field(metadata=about(EPOCH, "the bad record's Kafka timestamp"))
    reason: str = field(
        default="invalid_field",
        metadata=about(
            "`not_json`, `not_object`, `missing_field`, `invalid_field`, `no_value`, "
            "`too_large`, `future_timestamp`, `internal_error`, `label_type_mismatch` (a label "
            "applied but not scored: its type does not match its prediction's)",
            "a fixed code (the label of `streamproc_dead_letters_total`)",
            required=True,  # always written
        ),
    )


# --------------------------------------------------------------------------- specs
# (field, check, required) per event kind, in the dataclass constructor's order, derived from
# the classes above: the annotation gives the check unless the field's metadata names one.


def spec_of(cls: Any) -> _Spec:
    """The validation spec of the event class ``cls``: ``(field, check, required)`` per field.

    Raises
    ------
    TypeError
        A field without ``about(...)`` metadata, or whose annotation has no known check and
        whose metadata names none.

    Examples
    --------
    >>> [(name, required) for name, _, required in spec_of(LabelEvent)]
    [('event_id', True), ('model_id', True), ('ts', True), ('label', True)]
    """
    out = []
    for f in _wire_fields(cls):
        check = _by_annotation(cls, f)[1]
        check = f.metadata["check"] or check
        if check is None:
            raise TypeError(f"{cls.__name__}.{f.name}: name its check with about(check=...)")
        out.append((f.name, check, _is_required(f)))
    return tuple(out)


PREDICTION_SPEC: Final[_Spec] = spec_of(PredictionEvent)
LABEL_SPEC: Final[_Spec] = spec_of(LabelEvent)
METRIC_SPEC: Final[_Spec] = spec_of(MetricEvent)
REQUEST_SPEC: Final[_Spec] = spec_of(RetrainRequest)
RESULT_SPEC: Final[_Spec] = spec_of(RetrainResult)
DEPLOYMENT_SPEC: Final[_Spec] = spec_of(DeploymentEvent)

_HINTS: Final = {
    "ts": "seconds since the Unix epoch (UTC)",
    "value": "a finite number",
    "reasons": "a non-empty list of reasons",
    "prediction": "a number, string or boolean",
    "label": "a number, string or boolean",
}


def decode_object(raw: bytes | str, kind: str) -> dict[str, Any]:
    """Decode one JSON object, or raise :class:`InvalidEvent` saying why it is not one."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(
            f"{kind}: value is not valid UTF-8 JSON ({exc}); send one JSON object per record "
            "(NaN and Infinity are not JSON: send null or leave the field out).",
            "not_json",
        ) from None
    if not isinstance(obj, dict):
        raise InvalidEvent(
            f"{kind}: value is {_typename(obj)}, not a JSON object; send an object.", "not_object"
        )
    return obj


def build(cls: Callable[..., E], spec: _Spec, kind: str, obj: Mapping[str, Any]) -> E:
    """Validate a decoded object against ``spec`` and build the event; raise InvalidEvent."""
    kwargs: dict[str, Any] = {}
    for name, check, required in spec:
        v = obj.get(name)
        if v is None:
            if required:
                hint = _HINTS.get(name, "a non-empty string")
                raise InvalidEvent(
                    f"{kind}: required field '{name}' is missing; add it ({hint}).",
                    "missing_field",
                )
            continue
        kwargs[name] = check(kind, name, v)
    if len(obj) > len(kwargs):
        known = {name for name, _, _ in spec}
        extra = {k: v for k, v in obj.items() if k not in known}
        if extra:
            kwargs["extra"] = extra
    return cls(**kwargs)


def _parser(cls: Callable[..., E], spec: _Spec, kind: str) -> Callable[[bytes | str], E]:
    def parse(raw: bytes | str) -> E:
        return build(cls, spec, kind, decode_object(raw, kind))

    parse.__name__ = f"parse_{kind}"
    parse.__doc__ = f"Parse and validate one {kind} record; raise InvalidEvent if it is not one."
    return parse


parse_prediction = _parser(PredictionEvent, PREDICTION_SPEC, "prediction")
parse_label = _parser(LabelEvent, LABEL_SPEC, "label")
parse_metric = _parser(MetricEvent, METRIC_SPEC, "metric")
parse_retrain_request = _parser(RetrainRequest, REQUEST_SPEC, "retrain-request")
parse_retrain_result = _parser(RetrainResult, RESULT_SPEC, "retrain-result")
parse_deployment = _parser(DeploymentEvent, DEPLOYMENT_SPEC, "deployment")


# --------------------------------------------------------------------------- serialization


def to_dict(event: Any) -> dict[str, Any]:
    """The JSON object of an event: ``None`` fields left out, ``extra`` merged at the top level."""
    out: dict[str, Any] = {}
    for f in fields(event):
        v = getattr(event, f.name)
        if f.name == "extra":
            for k, x in v.items():
                out.setdefault(k, x)
            continue
        if v is None:
            continue
        if isinstance(v, SourceRef | Reason):
            v = to_dict(v)
        elif isinstance(v, tuple):
            v = [to_dict(x) for x in v]
        out[f.name] = v
    return out


def encode(event: Any) -> bytes:
    """Serialize an event to compact JSON bytes.

    >>> encode(SourceRef("metrics", 0, 41))
    b'{"topic":"metrics","partition":0,"offset":41}'
    """
    return orjson.dumps(to_dict(event), option=orjson.OPT_SERIALIZE_NUMPY)


def dead_letter(
    source: SourceRef,
    error: str,
    raw: bytes | str | None,
    ts: float,
    reason: str = "invalid_field",
) -> DeadLetter:
    """A dead letter for ``raw``, its text truncated so one bad giant record stays small."""
    if raw is None:
        return DeadLetter(source=source, error=error, raw="", ts=ts, reason=reason)
    data = raw.encode("utf-8", errors="surrogatepass") if isinstance(raw, str) else raw
    # Decode only a prefix: a 50 MB record must not cost 50 MB of text.
    text = data[: MAX_RAW_CHARS * 4].decode("utf-8", errors="backslashreplace")
    if len(text) > MAX_RAW_CHARS or len(data) > MAX_RAW_CHARS * 4:
        text = text[:MAX_RAW_CHARS] + f"... [truncated, {len(data)} bytes in all]"
    return DeadLetter(source=source, error=error, raw=text, ts=ts, reason=reason)
