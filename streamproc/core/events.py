"""Event contracts: parse, validate and serialize every record that crosses Kafka.

Each event of ``shared/design.md`` is a frozen dataclass. ``parse_*`` turns raw bytes into one,
raising :class:`InvalidEvent` with a sentence a person understands; ``encode`` turns any of them
back into compact JSON bytes (orjson). Unknown extra fields are kept in ``extra`` and never a
reason to reject.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final, TypeVar

import orjson

from streamproc.core.exceptions import StreamprocError

__all__ = [
    "DeadLetter",
    "DeploymentEvent",
    "InvalidEvent",
    "LabelEvent",
    "MetricEvent",
    "PredictionEvent",
    "Reason",
    "RetrainRequest",
    "RetrainResult",
    "SourceRef",
    "encode",
    "parse_deployment",
    "parse_label",
    "parse_metric",
    "parse_prediction",
    "parse_retrain_request",
    "parse_retrain_result",
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


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a record came from: enough to find it again in Kafka.

    ``index`` is the event's position inside a batched record (:mod:`streamproc.core.batches`),
    None for a single-event record: several events of one batch share its offset.
    """

    topic: str
    partition: int
    offset: int
    index: int | None = None


@dataclass(frozen=True, slots=True)
class PredictionEvent:
    event_id: str
    model_id: str
    model_version: str
    ts: float
    prediction: Scalar
    features: Mapping[str, FeatureValue] = field(default_factory=dict)
    score: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LabelEvent:
    event_id: str
    model_id: str
    ts: float
    label: Scalar
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MetricEvent:
    model_id: str
    ts: float
    name: str
    value: float
    model_version: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reason:
    """One piece of evidence for a retrain: what fired, at what value, on how much data."""

    signal: str
    detector: str
    value: float
    threshold: float
    n: int
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RetrainRequest:
    request_id: str
    model_id: str
    model_version: str
    ts: float
    reasons: tuple[Reason, ...]
    policy: str | None = None
    source: SourceRef | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RetrainResult:
    request_id: str
    model_id: str
    status: str
    ts: float
    candidate_version: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeploymentEvent:
    deployment_id: str
    model_id: str
    version: str
    action: str
    ts: float
    request_id: str | None = None
    previous_version: str | None = None
    artifact_uri: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    source: SourceRef
    error: str
    raw: str
    ts: float
    reason: str = "invalid_field"


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
        n = r.get("n", 0)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise _fail(kind, f"{name}[{i}].n", "must be a non-negative integer", "count the data")
        value, threshold = r.get("value", 0.0), r.get("threshold", 0.0)
        out.append(
            Reason(
                signal=_text(kind, f"{name}[{i}].signal", r.get("signal")),
                detector=_text(kind, f"{name}[{i}].detector", r.get("detector", "manual")),
                value=_finite(kind, f"{name}[{i}].value", value),
                threshold=_finite(kind, f"{name}[{i}].threshold", threshold),
                n=n,
                details=_object(kind, f"{name}[{i}].details", r.get("details", {})),
            )
        )
    return tuple(out)


def _typename(v: object) -> str:
    return {
        type(None): "null",
        bool: "a boolean",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(v), "a number" if _is_number(v) else type(v).__name__)


Check = Callable[[str, str, object], Any]
# (field, check, required) per event kind; the order is the dataclass constructor's keywords.
_Spec = tuple[tuple[str, Check, bool], ...]

PREDICTION_SPEC: Final[_Spec] = (
    ("event_id", _text, True),
    ("model_id", _text, True),
    ("model_version", _text, True),
    ("ts", _timestamp, True),
    ("prediction", _scalar, True),
    ("features", _features, False),
    ("score", _score, False),
)
LABEL_SPEC: Final[_Spec] = (
    ("event_id", _text, True),
    ("model_id", _text, True),
    ("ts", _timestamp, True),
    ("label", _scalar, True),
)
METRIC_SPEC: Final[_Spec] = (
    ("model_id", _text, True),
    ("ts", _timestamp, True),
    ("name", _text, True),
    ("value", _finite, True),
    ("model_version", _text, False),
)
REQUEST_SPEC: Final[_Spec] = (
    ("request_id", _text, True),
    ("model_id", _text, True),
    ("model_version", _text, True),
    ("ts", _timestamp, True),
    ("reasons", _reasons, True),
    ("policy", _text, False),
    ("source", _source, False),
)
RESULT_SPEC: Final[_Spec] = (
    ("request_id", _text, True),
    ("model_id", _text, True),
    ("status", _one_of(RESULT_STATUSES), True),
    ("ts", _timestamp, True),
    ("candidate_version", _text, False),
    ("metrics", _object, False),
    ("error", _text, False),
)
DEPLOYMENT_SPEC: Final[_Spec] = (
    ("deployment_id", _text, True),
    ("model_id", _text, True),
    ("version", _text, True),
    ("action", _one_of(DEPLOY_ACTIONS), True),
    ("ts", _timestamp, True),
    ("request_id", _text, False),
    ("previous_version", _text, False),
    ("artifact_uri", _text, False),
    ("metrics", _object, False),
)

_HINTS: Final = {
    "ts": "seconds since the Unix epoch (UTC)",
    "value": "a finite number",
    "reasons": "a non-empty list of reasons",
    "prediction": "a number, string or boolean",
    "label": "a number, string or boolean",
}

E = TypeVar("E")


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
