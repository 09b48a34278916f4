"""docs/contracts.md names every field of every event class, with the parser's required-ness.

The lists come from the code (the dataclasses of ``streamproc.core.events`` and what their
parsers accept), so the document cannot drift from it unnoticed.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc.core import events as ev

DOC = Path(__file__).resolve().parents[3] / "docs" / "contracts.md"
CLASSES = [
    getattr(ev, name)
    for name in ev.__all__
    if dataclasses.is_dataclass(getattr(ev, name)) and isinstance(getattr(ev, name), type)
]
SPECS = {
    ev.PredictionEvent: ev.PREDICTION_SPEC,
    ev.LabelEvent: ev.LABEL_SPEC,
    ev.MetricEvent: ev.METRIC_SPEC,
    ev.RetrainRequest: ev.REQUEST_SPEC,
    ev.RetrainResult: ev.RESULT_SPEC,
    ev.DeploymentEvent: ev.DEPLOYMENT_SPEC,
}
ROW = re.compile(r"^\| `(\w+)` \|[^|]*\|[^|]*\| (yes|no)[^|]*\|", re.M)


def documented(cls: type) -> dict[str, bool]:
    """field -> required, from the table under ``### <class name>``."""
    text = DOC.read_text()
    m = re.search(rf"^### {cls.__name__}\n(.*?)(?=^##)", text, re.M | re.S)
    assert m, f"docs/contracts.md has no section '### {cls.__name__}'"
    return {name: req == "yes" for name, req in ROW.findall(m.group(1))}


def wire_fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.name != "extra"]  # extra: unknown keys


def _request(reason: dict[str, Any], source: dict[str, Any]) -> bytes:
    return orjson.dumps({"request_id": "r", "model_id": "m", "model_version": "v", "ts": 1,
                         "reasons": [reason], "source": source})  # fmt: skip


def required_by_parser(cls: type) -> dict[str, bool]:
    """Whether a record without the field is refused (for one only written: always present)."""
    if cls in SPECS:
        return {name: req for name, _, req in SPECS[cls]}
    reason = {"signal": "error", "detector": "cusum", "value": 2.0, "threshold": 1.0, "n": 5,
              "details": {}}  # fmt: skip
    source = {"topic": "labels", "partition": 0, "offset": 3}
    if cls in (ev.Reason, ev.SourceRef):
        full = reason if cls is ev.Reason else source
        out = {}
        for name in wire_fields(cls):
            less = {k: v for k, v in full.items() if k != name}
            args = (less, source) if cls is ev.Reason else (reason, less)
            try:
                ev.parse_retrain_request(_request(*args))
                out[name] = False
            except ev.InvalidEvent:
                out[name] = True
        return out
    assert cls is ev.DeadLetter, f"no rule for {cls.__name__}: add one to this test"
    written = orjson.loads(ev.encode(ev.dead_letter(ev.SourceRef("labels", 0, 1), "e", b"x", 1.0)))
    return {name: name in written for name in wire_fields(cls)}


def test_the_test_sees_every_event_class() -> None:
    names = {c.__name__ for c in CLASSES}
    assert names >= {"PredictionEvent", "LabelEvent", "MetricEvent", "RetrainRequest", "Reason",
                     "RetrainResult", "DeploymentEvent", "DeadLetter", "SourceRef"}  # fmt: skip


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_the_document_lists_exactly_the_fields_with_their_required_ness(cls: type) -> None:
    doc = documented(cls)
    assert list(doc) == wire_fields(cls), f"{cls.__name__}: fields in the document vs the class"
    assert doc == required_by_parser(cls), f"{cls.__name__}: required (yes/no) vs the parser"


def test_batched_records_are_documented_and_the_example_is_accepted() -> None:
    text = DOC.read_text()
    m = re.search(r"^## Batched records.*?$", text, re.M)
    assert m and "NOT YET" not in m.group(0)
    section = text[m.end() :]
    for name in ("event_id", "ts", "prediction", "score", "features", "label", "model_version"):
        assert f"`{name}`" in section or f'"{name}"' in section, name
    example = re.search(r"```json\n(.*?)```", section, re.S)
    assert example, "the batched section shows an example record"
    from streamproc.core.events import SourceRef
    from streamproc.core.router import Monitors, route_record

    outs = route_record(
        Monitors(), "predictions", example.group(1).encode(), SourceRef("predictions", 0, 0), 0.0
    )
    assert len(outs) == 3 and all(o.dead_letter is None for o in outs)
