"""Offline replay: run recorded traffic through the same core the live drift agent runs.

INPUT is JSON Lines, ``{"topic": "predictions" | "labels" | "metrics", "value": {...}}``, in
arrival order; a value may be a batched record (:mod:`streamproc.core.batches`), replayed event
by event. Every emitted event is written as ``{"topic", "value", "input_index"}``. By
default each retrain request counts as retrained and deployed at once (monitoring resumes against
a fresh reference); ``retrain=True`` runs the built-in trainer and gate for real instead.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from streamproc.core.events import (
    DeploymentEvent,
    RetrainRequest,
    SourceRef,
    dead_letter,
    encode,
    to_dict,
)
from streamproc.core.policy import PolicyBook
from streamproc.core.registry import FileRegistry
from streamproc.core.retrain import candidate_version, retrain
from streamproc.core.router import Monitors, iter_record, route

__all__ = ["ReplayEvent", "replay", "replay_file"]

log = logging.getLogger(__name__)

INPUT_TOPICS = ("predictions", "labels", "metrics")


@dataclass(frozen=True, slots=True)
class ReplayEvent:
    topic: str
    value: dict[str, Any]
    input_index: int

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"topic": self.topic, "value": self.value, "input_index": self.input_index}
        )


def instant_deployment(req: RetrainRequest) -> DeploymentEvent:
    """The deployment the seed loop assumes: retrained and live at once."""
    return DeploymentEvent(
        deployment_id="dep-" + req.request_id.removeprefix("rr-"),
        model_id=req.model_id,
        version=candidate_version(req.request_id),
        action="promote",
        ts=req.ts,
        request_id=req.request_id,
        previous_version=req.model_version,
    )


def replay(
    lines: Iterable[bytes],
    book: PolicyBook | None = None,
    retrain_for_real: bool = False,
) -> Iterator[ReplayEvent]:
    """Yield the events the live worker would emit for these input lines."""
    monitors = Monitors(book)
    registry = (
        FileRegistry(tempfile.mkdtemp(prefix="streamproc-replay-")) if retrain_for_real else None
    )
    offsets = dict.fromkeys((*INPUT_TOPICS, "deployments", "retrain-results"), 0)
    last_ts = 0.0
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        topic, raw, received, problem = _split(line)
        src = SourceRef(topic if topic in offsets else "input", 0, index)
        if problem:
            yield ReplayEvent("dead-letters", _dead(src, problem, line, last_ts), index)
            continue
        offsets[topic] += 1
        # A batched value is many events: one outcome each, applied in order, each followed
        # by its aftermath before the next (as if the events had come one per line).
        source = SourceRef(topic, 0, offsets[topic])
        for out in iter_record(monitors, topic, raw, source, received):
            if out.dead_letter is not None:
                dl = to_dict(out.dead_letter)
                dl["source"] = to_dict(replace(src, index=out.dead_letter.source.index))
                yield ReplayEvent("dead-letters", dl, index)
            for req in out.requests:
                last_ts = max(last_ts, req.ts)
                yield ReplayEvent("retrain-requests", to_dict(req), index)
                for follow_topic, follow in _aftermath(req, monitors, registry):
                    offsets[follow_topic] += 1
                    route(
                        monitors,
                        follow_topic,
                        encode(follow),
                        SourceRef(follow_topic, 0, offsets[follow_topic]),
                        req.ts,
                    )
                    yield ReplayEvent(follow_topic, to_dict(follow), index)


def _aftermath(
    req: RetrainRequest, monitors: Monitors, registry: FileRegistry | None
) -> list[tuple[str, Any]]:
    if registry is None:
        return [("deployments", instant_deployment(req))]
    mon = monitors.get(req.model_id)
    outcome = retrain(req, mon.training_examples(), mon.version, registry, now=req.ts)
    out: list[tuple[str, Any]] = [("retrain-results", outcome.result)]
    if outcome.deployment is not None:
        out.append(("deployments", outcome.deployment))
    return out


def _split(line: bytes) -> tuple[str, bytes, float, str | None]:
    """(topic, raw value, broker receive time or 0, problem) of one input line."""
    shape = (
        'input line must be {"topic": "predictions" | "labels" | "metrics", "value": {...}}; '
        "fix the record."
    )
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return (
            "",
            b"",
            0.0,
            f"input line is not valid JSON ({exc}); write one JSON object per line.",
        )
    if not isinstance(rec, dict) or rec.get("topic") not in INPUT_TOPICS:
        return "", b"", 0.0, shape
    received = rec.get("kafka_ts", 0.0)
    received = float(received) if isinstance(received, int | float) else 0.0
    if isinstance(rec.get("raw"), str):
        return rec["topic"], rec["raw"].encode(), received, None  # was not JSON on the wire
    if "value" not in rec:
        return "", b"", 0.0, shape
    return rec["topic"], orjson.dumps(rec["value"]), received, None


def _dead(src: SourceRef, problem: str, line: bytes, ts: float) -> dict[str, Any]:
    return to_dict(dead_letter(src, problem, line, ts))


def replay_file(
    input_path: str | Path,
    out_path: str | Path | None,
    book: PolicyBook | None = None,
    retrain_for_real: bool = False,
) -> dict[str, int]:
    """Replay a JSONL file; write OUT (or nothing) and return counts per emitted topic."""
    counts: dict[str, int] = {}
    with open(input_path, "rb") as src:
        sink = open(out_path, "wb") if out_path else None  # noqa: SIM115
        try:
            for ev in replay(src, book, retrain_for_real):
                counts[ev.topic] = counts.get(ev.topic, 0) + 1
                if sink:
                    sink.write(ev.to_json() + b"\n")
        finally:
            if sink:
                sink.close()
    return counts
