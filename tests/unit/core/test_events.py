"""Event contracts: every validation rule of every ``parse_*``, serialization and dead letters."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.core import events as ev
from streamproc.core.events import (
    DEAD_LETTER_REASONS,
    DEPLOYMENT_SPEC,
    LABEL_SPEC,
    MAX_RAW_CHARS,
    METRIC_SPEC,
    PREDICTION_SPEC,
    REQUEST_SPEC,
    RESULT_SPEC,
    DeadLetter,
    DeploymentEvent,
    InvalidEvent,
    LabelEvent,
    MetricEvent,
    PredictionEvent,
    Reason,
    RetrainRequest,
    RetrainResult,
    SourceRef,
    dead_letter,
    encode,
    parse_deployment,
    parse_label,
    parse_metric,
    parse_prediction,
    parse_retrain_request,
    parse_retrain_result,
    to_dict,
)

# --------------------------------------------------------------------------- fixtures

VALID: dict[str, dict[str, Any]] = {
    "prediction": {
        "event_id": "e-1",
        "model_id": "m1",
        "model_version": "v1",
        "ts": 1_700_000_000.5,
        "prediction": 1,
        "features": {"x": 1.5, "color": "red", "flag": True, "missing": None},
        "score": 0.75,
    },
    "label": {"event_id": "e-1", "model_id": "m1", "ts": 1_700_000_100.0, "label": 0},
    "metric": {
        "model_id": "m1",
        "ts": 1_700_000_000.0,
        "name": "drift",
        "value": 0.12,
        "model_version": "v1",
    },
    "retrain-request": {
        "request_id": "rr-1",
        "model_id": "m1",
        "model_version": "v1",
        "ts": 1_700_000_000.0,
        "reasons": [
            {
                "signal": "drift",
                "detector": "threshold",
                "value": 0.2,
                "threshold": 0.1,
                "n": 3,
                "details": {"direction": "above"},
            }
        ],
        "policy": "default",
        "source": {"topic": "metrics", "partition": 1, "offset": 42},
    },
    "retrain-result": {
        "request_id": "rr-1",
        "model_id": "m1",
        "status": "succeeded",
        "ts": 1_700_000_000.0,
        "candidate_version": "v-abc",
        "metrics": {"candidate_error": 0.1},
        "error": "none really",
    },
    "deployment": {
        "deployment_id": "dep-1",
        "model_id": "m1",
        "version": "v2",
        "action": "promote",
        "ts": 1_700_000_000.0,
        "request_id": "rr-1",
        "previous_version": "v1",
        "artifact_uri": "file:///tmp/a.bin",
        "metrics": {"candidate_error": 0.1},
    },
}

KINDS: dict[str, tuple[Callable[[bytes | str], Any], Any]] = {
    "prediction": (parse_prediction, PREDICTION_SPEC),
    "label": (parse_label, LABEL_SPEC),
    "metric": (parse_metric, METRIC_SPEC),
    "retrain-request": (parse_retrain_request, REQUEST_SPEC),
    "retrain-result": (parse_retrain_result, RESULT_SPEC),
    "deployment": (parse_deployment, DEPLOYMENT_SPEC),
}


def _raw(obj: Any) -> bytes:
    return orjson.dumps(obj)


def _with(kind: str, **changes: Any) -> bytes:
    obj = copy.deepcopy(VALID[kind])
    obj.update(changes)
    return _raw(obj)


def _without(kind: str, name: str) -> bytes:
    obj = copy.deepcopy(VALID[kind])
    del obj[name]
    return _raw(obj)


def _reject(kind: str, raw: bytes | str) -> str:
    parse = KINDS[kind][0]
    with pytest.raises(InvalidEvent) as info:
        parse(raw)
    msg = str(info.value)
    assert msg.startswith(f"{kind}: "), msg
    return msg


def _fields(required: bool | None = None, pytype: type | None = None) -> list[Any]:
    out = []
    for kind, (_, spec) in KINDS.items():
        for name, _check, req in spec:
            if required is not None and req != required:
                continue
            if pytype is not None and not isinstance(VALID[kind][name], pytype):
                continue
            out.append(pytest.param(kind, name, id=f"{kind}.{name}"))
    return out


ALL_FIELDS = _fields()
REQUIRED_FIELDS = _fields(required=True)
OPTIONAL_FIELDS = _fields(required=False)
TEXT_FIELDS = _fields(pytype=str)
TS_FIELDS = [pytest.param(k, "ts", id=k) for k in KINDS]
NUMBER_FIELDS = [
    pytest.param(kind, name, id=f"{kind}.{name}")
    for kind, name in [(k, "ts") for k in KINDS] + [("metric", "value"), ("prediction", "score")]
]


def test_fixtures_are_valid_and_cover_every_spec_field() -> None:
    for kind, (parse, spec) in KINDS.items():
        assert {name for name, _, _ in spec} == set(VALID[kind]), kind
        event = parse(_raw(VALID[kind]))
        assert event.extra == {}


# --------------------------------------------------------------------------- required fields


@pytest.mark.parametrize(("kind", "name"), REQUIRED_FIELDS)
def test_missing_required_field_is_rejected_and_named(kind: str, name: str) -> None:
    msg = _reject(kind, _without(kind, name))
    assert f"required field '{name}' is missing" in msg
    assert "add it (" in msg


@pytest.mark.parametrize(("kind", "name"), REQUIRED_FIELDS)
def test_null_required_field_counts_as_missing(kind: str, name: str) -> None:
    msg = _reject(kind, _with(kind, **{name: None}))
    assert f"required field '{name}' is missing" in msg


def test_missing_field_hints_say_what_to_send() -> None:
    assert "seconds since the Unix epoch" in _reject("metric", _without("metric", "ts"))
    assert "a finite number" in _reject("metric", _without("metric", "value"))
    assert "non-empty list of reasons" in _reject(
        "retrain-request", _without("retrain-request", "reasons")
    )
    assert "number, string or boolean" in _reject("label", _without("label", "label"))
    assert "a non-empty string" in _reject("label", _without("label", "event_id"))


@pytest.mark.parametrize(("kind", "name"), OPTIONAL_FIELDS)
def test_optional_field_may_be_missing_or_null(kind: str, name: str) -> None:
    parse = KINDS[kind][0]
    cls_default = getattr(parse(_without(kind, name)), name)
    assert cls_default == getattr(parse(_with(kind, **{name: None})), name)
    assert cls_default in (None, {})


# --------------------------------------------------------------------------- wrong types


@pytest.mark.parametrize(("kind", "name"), ALL_FIELDS)
def test_wrong_type_is_rejected_and_names_the_field(kind: str, name: str) -> None:
    # An object where a scalar or list belongs, a list where an object belongs.
    bad: Any = ["a", "list"] if isinstance(VALID[kind][name], dict) else {"an": "object"}
    msg = _reject(kind, _with(kind, **{name: bad}))
    assert f"field '{name}'" in msg
    assert "; " in msg  # problem; then what to do
    assert "must be" in msg


@pytest.mark.parametrize(("kind", "name"), TEXT_FIELDS)
def test_number_where_string_expected(kind: str, name: str) -> None:
    msg = _reject(kind, _with(kind, **{name: 123}))
    assert f"field '{name}' must be a string, got a number" in msg
    assert "send it as a JSON string" in msg


@pytest.mark.parametrize(("kind", "name"), TEXT_FIELDS)
def test_empty_string_is_rejected(kind: str, name: str) -> None:
    msg = _reject(kind, _with(kind, **{name: ""}))
    assert f"field '{name}' is empty" in msg
    assert "send a non-empty string" in msg


@pytest.mark.parametrize(("kind", "name"), NUMBER_FIELDS)
@pytest.mark.parametrize("flag", [True, False])
def test_bool_is_not_a_number(kind: str, name: str, flag: bool) -> None:
    msg = _reject(kind, _with(kind, **{name: flag}))
    assert f"field '{name}' must be a number, got a boolean" in msg
    assert "send a JSON number" in msg


@pytest.mark.parametrize(("kind", "name"), NUMBER_FIELDS)
def test_numeric_string_is_not_a_number(kind: str, name: str) -> None:
    msg = _reject(kind, _with(kind, **{name: "0.5"}))
    assert f"field '{name}' must be a number, got a string" in msg


@pytest.mark.parametrize(("kind", "name"), TS_FIELDS)
def test_negative_ts_is_rejected(kind: str, name: str) -> None:
    msg = _reject(kind, _with(kind, ts=-1.0))
    assert "field 'ts' is negative (-1.0)" in msg
    assert "seconds since the Unix epoch (UTC)" in msg


@pytest.mark.parametrize("kind", list(KINDS))
def test_ts_zero_and_int_accepted_as_float(kind: str) -> None:
    parse = KINDS[kind][0]
    assert parse(_with(kind, ts=0)).ts == 0.0
    event = parse(_with(kind, ts=1_700_000_000))
    assert event.ts == 1_700_000_000.0
    assert isinstance(event.ts, float)


@pytest.mark.parametrize("score", [-0.01, 1.01, 2, -1])
def test_score_outside_unit_interval_is_rejected(score: float) -> None:
    msg = _reject("prediction", _with("prediction", score=score))
    assert "field 'score'" in msg
    assert "outside [0, 1]" in msg
    assert "confidence" in msg


@pytest.mark.parametrize("score", [0, 0.0, 0.5, 1, 1.0])
def test_score_boundaries_accepted(score: float) -> None:
    assert parse_prediction(_with("prediction", score=score)).score == float(score)


@pytest.mark.parametrize("kind", ["prediction", "label"])
@pytest.mark.parametrize("value", [1, -2.5, "cat", True, False, 0])
def test_prediction_and_label_accept_scalars(kind: str, value: Any) -> None:
    name = "prediction" if kind == "prediction" else "label"
    got = getattr(KINDS[kind][0](_with(kind, **{name: value})), name)
    assert got == value
    assert type(got) is type(value)


@pytest.mark.parametrize("kind", ["prediction", "label"])
@pytest.mark.parametrize("value", [[1], {"a": 1}, []])
def test_prediction_and_label_reject_containers(kind: str, value: Any) -> None:
    name = "prediction" if kind == "prediction" else "label"
    msg = _reject(kind, _with(kind, **{name: value}))
    assert f"field '{name}' must be a number, string or boolean" in msg


# --------------------------------------------------------------------------- non-finite numbers


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"])
@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("metric", "value"),
        ("prediction", "score"),
        ("prediction", "ts"),
        ("label", "ts"),
        ("label", "label"),
        ("prediction", "prediction"),
    ],
)
def test_non_finite_json_numbers_are_rejected(kind: str, name: str, literal: bytes) -> None:
    marker = "__PLACEHOLDER__"
    raw = _with(kind, **{name: marker}).replace(f'"{marker}"'.encode(), literal)
    msg = _reject(kind, raw)
    assert "not valid UTF-8 JSON" in msg
    assert "NaN and Infinity are not JSON" in msg
    assert "send null or leave the field out" in msg


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"1e400"])
def test_non_finite_feature_value_is_rejected(literal: bytes) -> None:
    raw = _with("prediction", features={"x": "__X__"}).replace(b'"__X__"', literal)
    _reject("prediction", raw)


def _check(spec: Any, name: str) -> Callable[[str, str, object], Any]:
    return {n: c for n, c, _ in spec}[name]


@pytest.mark.parametrize("x", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize(
    ("spec", "kind", "name"),
    [
        (METRIC_SPEC, "metric", "value"),
        (METRIC_SPEC, "metric", "ts"),
        (PREDICTION_SPEC, "prediction", "score"),
        (PREDICTION_SPEC, "prediction", "prediction"),
        (LABEL_SPEC, "label", "label"),
    ],
)
def test_non_finite_python_floats_fail_the_field_check(
    spec: Any, kind: str, name: str, x: float
) -> None:
    # JSON cannot carry these (see above), but the checks guard every other path too.
    with pytest.raises(InvalidEvent, match=rf"field '{name}' is not finite") as info:
        _check(spec, name)(kind, name, x)
    assert "send a finite number" in str(info.value)


@pytest.mark.parametrize("x", [math.inf, math.nan])
def test_non_finite_feature_fails_the_features_check(x: float) -> None:
    with pytest.raises(InvalidEvent, match=r"field 'features\.x' is not finite") as info:
        _check(PREDICTION_SPEC, "features")("prediction", "features", {"x": x})
    assert "send null for missing" in str(info.value)


def test_huge_integer_is_read_as_a_finite_float() -> None:
    raw = _with("metric", value="__BIG__").replace(b'"__BIG__"', str(10**25).encode())
    ev_ = parse_metric(raw)
    assert ev_.value == pytest.approx(1e25)


# --------------------------------------------------------------------------- bad documents


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b'{"a": 1,}',
        b"\xff\xfe\x00",
        b'{"event_id": "\xff\xfe"}',
        b"{'single': 'quotes'}",
    ],
    ids=["empty", "unclosed", "trailing-comma", "non-utf8", "non-utf8-in-string", "quotes"],
)
def test_invalid_json_or_utf8_is_rejected(kind: str, raw: bytes) -> None:
    msg = _reject(kind, raw)
    assert "value is not valid UTF-8 JSON" in msg
    assert "send one JSON object per record" in msg


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(
    ("raw", "what"),
    [
        (b"[1, 2]", "a list"),
        (b"[]", "a list"),
        (b"42", "a number"),
        (b"4.5", "a number"),
        (b'"hello"', "a string"),
        (b"null", "null"),
        (b"true", "a boolean"),
    ],
)
def test_top_level_non_object_is_rejected(kind: str, raw: bytes, what: str) -> None:
    msg = _reject(kind, raw)
    assert f"value is {what}, not a JSON object" in msg
    assert "send an object" in msg


@pytest.mark.parametrize("kind", list(KINDS))
def test_empty_object_names_the_first_required_field(kind: str) -> None:
    first = next(name for name, _, req in KINDS[kind][1] if req)
    assert f"'{first}' is missing" in _reject(kind, b"{}")


@pytest.mark.parametrize("kind", list(KINDS))
def test_str_input_is_accepted(kind: str) -> None:
    parse = KINDS[kind][0]
    assert parse(_raw(VALID[kind]).decode()) == parse(_raw(VALID[kind]))


def test_unicode_text_is_kept() -> None:
    e = parse_prediction(_with("prediction", model_id="modèle-数", features={"città": "Zürich"}))
    assert e.model_id == "modèle-数"
    assert e.features == {"città": "Zürich"}


# --------------------------------------------------------------------------- features


@pytest.mark.parametrize("nested", [{"a": 1}, [1, 2], [], {}])
def test_feature_with_nested_value_is_rejected(nested: Any) -> None:
    msg = _reject("prediction", _with("prediction", features={"ok": 1, "deep": nested}))
    assert "field 'features.deep'" in msg
    assert "must be a number, string, boolean or null" in msg
    assert "flatten nested values into separate features" in msg


def test_features_accept_null_bool_string_and_numbers() -> None:
    feats = {"a": None, "b": True, "c": "x", "d": 0, "e": -1.5, "f": ""}
    assert parse_prediction(_with("prediction", features=feats)).features == feats


def test_features_empty_object_and_absent_both_give_empty_mapping() -> None:
    assert parse_prediction(_with("prediction", features={})).features == {}
    assert parse_prediction(_without("prediction", "features")).features == {}


@pytest.mark.parametrize("bad", ["x", 1, True, [1]])
def test_features_must_be_an_object(bad: Any) -> None:
    msg = _reject("prediction", _with("prediction", features=bad))
    assert "field 'features' must be an object" in msg
    assert "send name -> value" in msg


# --------------------------------------------------------------------------- enums


@pytest.mark.parametrize("status", ["succeeded", "failed", "rejected"])
def test_result_status_enum_accepted(status: str) -> None:
    assert parse_retrain_result(_with("retrain-result", status=status)).status == status


@pytest.mark.parametrize("status", ["done", "SUCCEEDED", "success", " failed"])
def test_result_status_outside_enum_rejected(status: str) -> None:
    msg = _reject("retrain-result", _with("retrain-result", status=status))
    assert f"field 'status' is {status!r}" in msg
    assert "use one of ['failed', 'rejected', 'succeeded']" in msg


@pytest.mark.parametrize("action", ["promote", "rollback"])
def test_deployment_action_enum_accepted(action: str) -> None:
    assert parse_deployment(_with("deployment", action=action)).action == action


@pytest.mark.parametrize("action", ["deploy", "Promote", "rollforward"])
def test_deployment_action_outside_enum_rejected(action: str) -> None:
    msg = _reject("deployment", _with("deployment", action=action))
    assert f"field 'action' is {action!r}" in msg
    assert "use one of ['promote', 'rollback']" in msg


# --------------------------------------------------------------------------- reasons and source


@pytest.mark.parametrize("reasons", [[], "drift", {"signal": "drift"}, 3, True])
def test_reasons_must_be_a_non_empty_list(reasons: Any) -> None:
    msg = _reject("retrain-request", _with("retrain-request", reasons=reasons))
    assert "field 'reasons' must be a non-empty list" in msg
    assert "say at least one reason to retrain" in msg


@pytest.mark.parametrize("item", ["drift", 1, None, ["drift"]])
def test_each_reason_must_be_an_object(item: Any) -> None:
    msg = _reject("retrain-request", _with("retrain-request", reasons=[item]))
    assert "field 'reasons[0]' must be an object" in msg


@pytest.mark.parametrize("n", [-1, 1.5, True, "3", None, [1]])
def test_reason_n_must_be_a_non_negative_integer(n: Any) -> None:
    good = VALID["retrain-request"]["reasons"][0]
    reasons = [good, {**good, "n": n}]
    msg = _reject("retrain-request", _with("retrain-request", reasons=reasons))
    assert "field 'reasons[1].n' must be a non-negative integer" in msg
    assert "count the data" in msg


def test_reason_defaults_and_minimal_reason() -> None:
    req = parse_retrain_request(_with("retrain-request", reasons=[{"signal": "manual"}]))
    assert req.reasons == (Reason("manual", "manual", 0.0, 0.0, 0, {}),)


@pytest.mark.parametrize(
    ("patch", "where"),
    [
        ({"signal": None}, "reasons[0].signal"),
        ({"signal": ""}, "reasons[0].signal"),
        ({"detector": 5}, "reasons[0].detector"),
        ({"value": "high"}, "reasons[0].value"),
        ({"value": True}, "reasons[0].value"),
        ({"threshold": [0.1]}, "reasons[0].threshold"),
        ({"details": "x"}, "reasons[0].details"),
    ],
)
def test_reason_field_errors_name_the_path(patch: dict[str, Any], where: str) -> None:
    reason = {**VALID["retrain-request"]["reasons"][0], **patch}
    msg = _reject("retrain-request", _with("retrain-request", reasons=[reason]))
    assert f"field '{where}'" in msg


@pytest.mark.parametrize(
    "source",
    [
        {"topic": "metrics", "partition": "1", "offset": 4},
        {"topic": "metrics", "partition": 1.0, "offset": 4},
        {"topic": "metrics", "partition": True, "offset": 4},
        {"topic": "metrics", "offset": 4},
        {"topic": "metrics", "partition": 1, "offset": "4"},
        {"topic": "metrics", "partition": 1},
    ],
)
def test_source_needs_integer_partition_and_offset(source: dict[str, Any]) -> None:
    msg = _reject("retrain-request", _with("retrain-request", source=source))
    assert "field 'source' needs integer partition and offset" in msg
    assert "send topic/partition/offset" in msg


@pytest.mark.parametrize("topic", [None, "", 7])
def test_source_needs_a_topic(topic: Any) -> None:
    source = {"topic": topic, "partition": 0, "offset": 0}
    msg = _reject("retrain-request", _with("retrain-request", source=source))
    assert "field 'source.topic'" in msg


def test_source_is_parsed_into_a_source_ref() -> None:
    req = parse_retrain_request(_raw(VALID["retrain-request"]))
    assert req.source == SourceRef("metrics", 1, 42)
    assert req.reasons[0].details == {"direction": "above"}


# --------------------------------------------------------------------------- extra fields


@pytest.mark.parametrize("kind", list(KINDS))
def test_unknown_fields_are_kept_and_re_emitted(kind: str) -> None:
    parse = KINDS[kind][0]
    extras = {"region": "eu", "nested": {"a": [1, 2]}, "n": None}
    event = parse(_with(kind, **extras))
    assert event.extra == extras
    out = to_dict(event)
    for k, v in extras.items():
        assert out[k] == v
    again = parse(encode(event))
    assert again == event
    assert again.extra == extras


def test_extra_never_overrides_a_known_field_on_output() -> None:
    e = MetricEvent("m", 1.0, "drift", 0.5, extra={"value": 99, "other": 1})
    out = to_dict(e)
    assert out["value"] == 0.5
    assert out["other"] == 1


def test_to_dict_leaves_none_out_and_nests_refs() -> None:
    req = RetrainRequest(
        "rr", "m", "v", 1.0, (Reason("s", "d", 1.0, 0.5, 2),), source=SourceRef("t", 0, 1)
    )
    out = to_dict(req)
    assert "policy" not in out
    assert "extra" not in out
    assert out["source"] == {"topic": "t", "partition": 0, "offset": 1}
    assert out["reasons"] == [
        {"signal": "s", "detector": "d", "value": 1.0, "threshold": 0.5, "n": 2, "details": {}}
    ]


# --------------------------------------------------------------------------- round trips

FULL_EVENTS: list[Any] = [
    PredictionEvent(
        "e1", "m1", "v1", 12.5, "cat", {"x": 1.0, "s": "a", "b": False, "n": None}, 0.9, {"z": 1}
    ),
    PredictionEvent("e2", "m1", "v1", 0.0, 3),
    LabelEvent("e1", "m1", 20.0, "dog", {"who": "ops"}),
    LabelEvent("e1", "m1", 20.0, True),
    MetricEvent("m1", 5.0, "drift", 0.12, "v1", {"window": 100}),
    MetricEvent("m1", 5.0, "latency_ms", -3.0),
    RetrainRequest(
        "rr-1",
        "m1",
        "v1",
        30.0,
        (
            Reason("drift", "threshold", 0.2, 0.1, 1, {"direction": "above"}),
            Reason("error", "cusum", 14.2, 13.8, 900, {"change_ts": 12.0}),
        ),
        "default",
        SourceRef("metrics", 2, 99),
        {"trace": "abc"},
    ),
    RetrainRequest("rr-2", "m1", "v1", 30.0, (Reason("manual", "manual", 0.0, 0.0, 0),)),
    RetrainResult("rr-1", "m1", "succeeded", 40.0, "v-1", {"e": 0.1, "x": None}, None),
    RetrainResult("rr-1", "m1", "failed", 40.0, error="only 3 labelled examples"),
    DeploymentEvent(
        "dep-1", "m1", "v2", "promote", 50.0, "rr-1", "v1", "file:///x", {"e": 0.1}, {"k": 1}
    ),
    DeploymentEvent("dep-2", "m1", "v1", "rollback", 60.0),
]
PARSERS: dict[type, Callable[[bytes | str], Any]] = {
    PredictionEvent: parse_prediction,
    LabelEvent: parse_label,
    MetricEvent: parse_metric,
    RetrainRequest: parse_retrain_request,
    RetrainResult: parse_retrain_result,
    DeploymentEvent: parse_deployment,
}


@pytest.mark.parametrize("event", FULL_EVENTS, ids=lambda e: type(e).__name__)
def test_parse_encode_round_trip(event: Any) -> None:
    parse = PARSERS[type(event)]
    raw = encode(event)
    assert isinstance(raw, bytes)
    assert parse(raw) == event
    assert encode(parse(raw)) == raw


def test_encode_is_compact_json() -> None:
    assert encode(SourceRef("metrics", 0, 41)) == b'{"topic":"metrics","partition":0,"offset":41}'
    assert b" " not in encode(MetricEvent("m", 1.0, "drift", 0.5))


def test_encode_serializes_numpy_scalars() -> None:
    np = pytest.importorskip("numpy")
    raw = encode(MetricEvent("m", 1.0, "drift", np.float64(0.25), extra={"n": np.int64(3)}))
    assert orjson.loads(raw) == {"model_id": "m", "ts": 1.0, "name": "drift", "value": 0.25, "n": 3}


_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_ts = st.floats(min_value=0, max_value=1e12, allow_nan=False)
_scalar = st.one_of(_text, st.booleans(), st.integers(-(2**53), 2**53), _finite)
_feature = st.one_of(st.none(), _text, st.booleans(), st.integers(-(2**53), 2**53), _finite)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    event_id=_text,
    model_id=_text,
    version=_text,
    ts=_ts,
    prediction=_scalar,
    features=st.dictionaries(_text, _feature, max_size=5),
    score=st.none() | st.floats(0, 1),
    label=_scalar,
)
def test_round_trip_property(
    event_id: str,
    model_id: str,
    version: str,
    ts: float,
    prediction: Any,
    features: dict[str, Any],
    score: float | None,
    label: Any,
) -> None:
    pred = PredictionEvent(event_id, model_id, version, ts, prediction, features, score)
    assert parse_prediction(encode(pred)) == pred
    lab = LabelEvent(event_id, model_id, ts, label)
    assert parse_label(encode(lab)) == lab


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_either_parse_or_raise_invalid_event(raw: bytes) -> None:
    for parse, _ in KINDS.values():
        try:
            parse(raw)
        except InvalidEvent as exc:
            assert str(exc)
        # Any other exception type escapes and fails the test.


# --------------------------------------------------------------------------- dead letters

SRC = SourceRef("predictions", 3, 1234)


def test_dead_letter_keeps_small_raw_text() -> None:
    dl = dead_letter(SRC, "prediction: field 'ts' is negative", b'{"ts": -1}', 5.0)
    assert dl == DeadLetter(SRC, "prediction: field 'ts' is negative", '{"ts": -1}', 5.0)
    assert orjson.loads(encode(dl)) == {
        "source": {"topic": "predictions", "partition": 3, "offset": 1234},
        "error": "prediction: field 'ts' is negative",
        "raw": '{"ts": -1}',
        "ts": 5.0,
        "reason": "invalid_field",
    }


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe", "not_json"),
        (b"[1, 2]", "not_object"),
        (b'{"model_id": "m"}', "missing_field"),
        (b'{"model_id": 5, "event_id": "e", "ts": 1, "prediction": 1}', "invalid_field"),
    ],
)
def test_invalid_events_carry_a_bounded_reason_code(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_prediction(raw)
    assert info.value.reason == reason
    assert reason in DEAD_LETTER_REASONS


@pytest.mark.parametrize("raw", ["x" * 100_000, b"y" * 100_000, b"z" * (MAX_RAW_CHARS + 1)])
def test_dead_letter_truncates_big_raw_values(raw: bytes | str) -> None:
    dl = dead_letter(SRC, "too big", raw, 1.0)
    assert dl.raw.startswith(str(raw[:10], "utf-8") if isinstance(raw, bytes) else raw[:10])
    assert len(dl.raw) < MAX_RAW_CHARS + 100
    assert f"[truncated, {len(raw)} bytes in all]" in dl.raw
    assert (
        dl.raw[:MAX_RAW_CHARS] == (raw.decode() if isinstance(raw, bytes) else raw)[:MAX_RAW_CHARS]
    )


def test_dead_letter_of_exactly_max_chars_is_not_marked() -> None:
    raw = "a" * MAX_RAW_CHARS
    assert dead_letter(SRC, "e", raw, 1.0).raw == raw


def test_dead_letter_handles_non_utf8_bytes() -> None:
    raw = b'{"event_id": "\xff\xfe"}'
    dl = dead_letter(SRC, "not UTF-8", raw, 1.0)
    assert "\\xff\\xfe" in dl.raw
    assert dl.raw.startswith('{"event_id": "')
    # And the dead letter itself is valid UTF-8 JSON.
    assert orjson.loads(encode(dl))["raw"] == dl.raw


def test_dead_letter_of_huge_non_utf8_bytes_stays_small() -> None:
    raw = b"\xff" * 1_000_000
    dl = dead_letter(SRC, "binary", raw, 1.0)
    assert len(dl.raw) < MAX_RAW_CHARS + 100
    assert "[truncated, 1000000 bytes in all]" in dl.raw


def test_dead_letter_of_none_is_empty_text() -> None:
    assert dead_letter(SRC, "tombstone", None, 1.0).raw == ""


def test_dead_letter_for_a_parse_failure_end_to_end() -> None:
    raw = b"[1, 2, 3]"
    with pytest.raises(InvalidEvent) as info:
        parse_prediction(raw)
    dl = dead_letter(SRC, str(info.value), raw, 9.0)
    assert dl.error == "prediction: value is a list, not a JSON object; send an object."
    assert dl.raw == "[1, 2, 3]"


def test_dead_letter_truncation_note_counts_bytes_of_str_raw() -> None:
    raw = "é" * 5000
    dl = dead_letter(SRC, "e", raw, 1.0)
    assert f"{len(raw.encode())} bytes in all" in dl.raw


def test_dead_letter_never_truncates_silently() -> None:
    raw = ("\U0001f600" * (MAX_RAW_CHARS + 1)).encode()  # 2001 emoji = 8004 bytes
    dl = dead_letter(SRC, "e", raw, 1.0)
    kept_all = dl.raw == raw.decode()
    assert kept_all or "truncated" in dl.raw, f"{len(dl.raw)} of 2001 chars kept, no note"


def test_module_exports_parse_functions_with_names() -> None:
    for kind, (parse, _) in KINDS.items():
        assert parse.__name__ == f"parse_{kind}"
        assert kind in (parse.__doc__ or "")
    assert issubclass(ev.InvalidEvent, ValueError)
