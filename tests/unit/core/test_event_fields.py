"""The event classes are the one source of their fields: specs and docstrings come from them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest

from streamproc.core import events as ev

PARSED = {
    ev.PredictionEvent: ev.PREDICTION_SPEC,
    ev.LabelEvent: ev.LABEL_SPEC,
    ev.MetricEvent: ev.METRIC_SPEC,
    ev.RetrainRequest: ev.REQUEST_SPEC,
    ev.RetrainResult: ev.RESULT_SPEC,
    ev.DeploymentEvent: ev.DEPLOYMENT_SPEC,
}
ALL = [*PARSED, ev.Reason, ev.SourceRef, ev.DeadLetter]


@pytest.mark.parametrize("cls", PARSED, ids=lambda c: c.__name__)
def test_spec_follows_the_constructor_and_the_defaults(cls: Any) -> None:
    spec = PARSED[cls]
    wire = [f for f in dataclasses.fields(cls) if f.name != "extra"]
    assert [name for name, _, _ in spec] == [f.name for f in wire]
    for (name, _, required), f in zip(spec, wire, strict=True):
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        assert required == no_default, name


def test_timestamps_scores_and_closed_sets_have_their_own_checks() -> None:
    checks = {
        (cls.__name__, name): check for cls, spec in PARSED.items() for name, check, _ in spec
    }
    for cls in PARSED:
        assert checks[(cls.__name__, "ts")] is ev._timestamp
    assert checks[("PredictionEvent", "score")] is ev._score
    with pytest.raises(ev.InvalidEvent, match="use one of"):
        checks[("RetrainResult", "status")]("retrain-result", "status", "done")
    with pytest.raises(ev.InvalidEvent, match="use one of"):
        checks[("DeploymentEvent", "action")]("deployment", "action", "ship")


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_the_docstring_documents_every_wire_field(cls: Any) -> None:
    doc = cls.__doc__
    assert "Attributes\n    ----------" in doc
    for d in ev.field_docs(cls):
        assert f"\n    {d.name} : {d.wire_type}" in doc, d.name
        assert d.meaning[1:] in " ".join(doc.split()), d.name


def test_a_field_without_documentation_or_with_an_unknown_type_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class Undocumented:
        name: str

    @dataclasses.dataclass(frozen=True)
    class Odd:
        when: complex = dataclasses.field(metadata=ev.about("", "a number of an unknown kind"))

    @dataclasses.dataclass(frozen=True)
    class Unchecked:
        count: int = dataclasses.field(metadata=ev.about("", "integers have no default check"))

    with pytest.raises(TypeError, match=r"Undocumented.name: .*about"):
        ev.spec_of(Undocumented)
    with pytest.raises(TypeError, match=r"Odd.when: .*'complex'"):
        ev.field_docs(Odd)
    with pytest.raises(TypeError, match=r"Unchecked.count: name its check"):
        ev.spec_of(Unchecked)


def test_reason_defaults_are_the_documented_ones() -> None:
    raw = (
        b'{"request_id": "r", "model_id": "m", "model_version": "v", "ts": 1,'
        b' "reasons": [{"signal": "manual"}]}'
    )
    (reason,) = ev.parse_retrain_request(raw).reasons
    documented: Mapping[str, Any] = {d.name: d.default for d in ev.field_docs(ev.Reason)}
    assert (reason.detector, reason.value, reason.threshold, reason.n) == (
        documented["detector"], documented["value"], documented["threshold"], documented["n"]
    ) == ("manual", 0.0, 0.0, 0)  # fmt: skip
