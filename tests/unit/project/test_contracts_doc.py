"""docs/contracts.md names every field of every event class, with the parser's required-ness.

The lists come from the code (the dataclasses of ``streamproc.core.events`` and what their
parsers accept), so the document cannot drift from it unnoticed. Each field table and the topic
table are the ones the code's documentation gives (each field's ``about(...)`` metadata, the
topic catalog of ``streamproc.core.topics``), character for character. After changing a field's
documentation, rewrite the tables with::

    STREAMPROC_WRITE_CONTRACTS=1 .venv/bin/python -m pytest tests/unit/project/test_contracts_doc.py
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc.core import events as ev
from streamproc.core import topics

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


HEADER = "| field | type | unit / values | required | meaning |\n|---|---|---|---|---|\n"
TOPIC_HEADER = "  | topic | key | value | written by |\n  |---|---|---|---|\n"


def _row(*cells: str) -> str:
    return ("| " + " | ".join(cells) + " |").replace("|  |", "| |")


def _required(d: ev.FieldDoc) -> str:
    if d.required:
        return "yes"
    if d.default is None:
        return "no"
    shown = f"`{d.default}`" if isinstance(d.default, str) else f"{d.default:g}"
    return f"no (default {shown})"


def field_table(cls: type) -> str:
    """The markdown table of ``cls``'s fields, from their documentation in the code."""
    rows = [
        _row(f"`{d.name}`", d.wire_type, d.unit, _required(d), d.meaning)
        for d in ev.field_docs(cls)
    ]
    return HEADER + "\n".join(rows) + "\n"


def topic_table() -> str:
    rows = ["  " + _row(f"`{t.name}`", t.key, t.event, t.written_by) for t in topics.CATALOG]
    return TOPIC_HEADER + "\n".join(rows) + "\n"


def _table_span(text: str, start: int) -> tuple[int, int]:
    """Where the first markdown table at or after ``start`` begins and ends."""
    m = re.compile(r"^ *\|.*\n(?: *\|.*\n)*", re.M).search(text, start)
    assert m, "no table found"
    return m.start(), m.end()


def _sections(text: str) -> dict[str, tuple[int, int]]:
    spans = {}
    for cls in CLASSES:
        m = re.search(rf"^### {cls.__name__}\n", text, re.M)
        assert m, f"docs/contracts.md has no section '### {cls.__name__}'"
        spans[cls.__name__] = _table_span(text, m.end())
    m = re.search(r"^- Topics \(", text, re.M)
    assert m, "docs/contracts.md lists the topics under '- Topics ('"
    spans["topics"] = _table_span(text, m.end())
    return spans


def _expected(name: str) -> str:
    if name == "topics":
        return topic_table()
    return field_table(next(c for c in CLASSES if c.__name__ == name))


def _rewrite() -> None:
    text = DOC.read_text()
    for name, (a, b) in sorted(_sections(text).items(), key=lambda kv: -kv[1][0]):
        text = text[:a] + _expected(name) + text[b:]
    DOC.write_text(text)


if os.environ.get("STREAMPROC_WRITE_CONTRACTS") == "1":
    _rewrite()


@pytest.mark.parametrize("name", [c.__name__ for c in CLASSES] + ["topics"])
def test_each_table_is_the_one_the_code_documents(name: str) -> None:
    text = DOC.read_text()
    a, b = _sections(text)[name]
    expected = _expected(name)
    assert text[a:b] == expected, (
        f"docs/contracts.md, {name}: the table differs from the code's documentation "
        f"(streamproc/core/events.py, streamproc/core/topics.py); it should read:\n{expected}"
        "(rewrite with STREAMPROC_WRITE_CONTRACTS=1, see this module's docstring)"
    )


def test_every_field_is_documented_with_a_meaning() -> None:
    for cls in CLASSES:
        for d in ev.field_docs(cls):
            assert d.meaning and not d.meaning.endswith("."), f"{cls.__name__}.{d.name}"
