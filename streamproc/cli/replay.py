"""Offline replay: run recorded traffic through the same core the live drift agent runs.

INPUT is JSON Lines, ``{"topic": "predictions" | "labels" | "metrics", "value": {...}}``, in
arrival order; a value may be a batched record (:mod:`streamproc.core.batches`), replayed event
by event. Every emitted event is written as ``{"topic", "value", "input_index"}``. By
default each retrain request counts as retrained and deployed at once (monitoring resumes against
a fresh reference); ``retrain=True`` runs the built-in trainer and gate for real instead.

Recorded traffic keeps the versions it was recorded with: after a simulated deployment the
recorded predictions still say, say, ``v1``, and replay keeps monitoring them (against a fresh
reference) as the traffic of the newly deployed model, so every decision the policy would make
shows. The emitted deployment names the candidate the live loop would deploy; inside the replay
the monitored version keeps following the versions the recorded traffic reports (a recorded
switch to ``v2`` is followed as before any deployment). A rollback needs the new model's live
errors, which a recording does not have: replay never rolls back.

:class:`ReplaySummary` counts what happened: input records by topic, joins and evictions, stale
metrics and joins, dead letters, and what was emitted.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
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
from streamproc.core.topics import (
    DEAD_LETTERS,
    DEPLOYMENTS,
    RETRAIN_REQUESTS,
    RETRAIN_RESULTS,
    SOURCE_TOPICS,
)

__all__ = ["ReplayEvent", "ReplaySummary", "replay", "replay_file"]

log = logging.getLogger(__name__)

INPUT_TOPICS = SOURCE_TOPICS


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


@dataclass
class ReplaySummary:
    """What a replay saw and did, filled in by :func:`replay` as it runs."""

    inputs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(INPUT_TOPICS, 0))
    emitted: dict[str, int] = field(default_factory=dict)
    monitored: dict[str, int] = field(default_factory=dict)  # join and monitor counters

    def take(self, monitors: Monitors) -> None:
        """Sum the counters of every model's monitor."""
        totals = dict.fromkeys(_MONITORED, 0)
        for mon in monitors.live.values():
            counts = {**mon.counts, **mon.join.counts}
            for key in totals:
                totals[key] += int(counts.get(key, 0))
        self.monitored = totals

    def lines(self) -> list[str]:
        """``name<TAB>count`` lines, then a sentence if no retrain was requested."""
        out = [f"input {t}\t{n}" for t, n in self.inputs.items()]
        out += [f"{label}\t{self.monitored.get(key, 0)}" for key, label in _MONITORED.items()]
        for topic in (DEAD_LETTERS, RETRAIN_REQUESTS, DEPLOYMENTS, RETRAIN_RESULTS):
            out.append(f"{topic}\t{self.emitted.get(topic, 0)}")
        if not self.emitted.get(RETRAIN_REQUESTS):
            out.append("no retrain request: no signal met its policy on this traffic.")
        return out


_MONITORED = {
    "joined": "joined",
    "evicted_predictions": "evicted predictions",
    "evicted_labels": "evicted labels",
    "evicted_for_bytes": "evicted for bytes (join)",
    "window_evicted_for_bytes": "evicted for bytes (training window)",
    "stale_metrics": "stale metrics",
    "stale_joins": "stale joins",
}


def _scratch_registry() -> FileRegistry:
    """A registry in a temporary folder, removed when the registry is garbage collected."""
    path = tempfile.mkdtemp(prefix="streamproc-replay-")
    registry = FileRegistry(path)
    weakref.finalize(registry, shutil.rmtree, path, ignore_errors=True)
    return registry


def replay(
    lines: Iterable[bytes],
    book: PolicyBook | None = None,
    retrain_for_real: bool = False,
    summary: ReplaySummary | None = None,
) -> Iterator[ReplayEvent]:
    """Yield the events the live worker would emit for these input lines.

    ``summary``, if given, counts the inputs and emitted events as they pass, and the monitors'
    counters once the input is exhausted.
    """
    if summary is None:
        summary = ReplaySummary()
    for ev in _replay(lines, book, retrain_for_real, summary):
        summary.emitted[ev.topic] = summary.emitted.get(ev.topic, 0) + 1
        yield ev


def _replay(
    lines: Iterable[bytes],
    book: PolicyBook | None,
    retrain_for_real: bool,
    summary: ReplaySummary,
) -> Iterator[ReplayEvent]:
    monitors = Monitors(book)
    registry = _scratch_registry() if retrain_for_real else None
    offsets = dict.fromkeys((*INPUT_TOPICS, DEPLOYMENTS, RETRAIN_RESULTS), 0)
    last_ts = 0.0
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        topic, raw, received, problem = _split(line)
        src = SourceRef(topic if topic in offsets else "input", 0, index)
        if topic:
            summary.inputs[topic] += 1
        if problem:
            yield ReplayEvent(DEAD_LETTERS, _dead(src, problem, line, last_ts), index)
            continue
        offsets[topic] += 1
        # The record's offset, as the monitors see it: its line on the input topics (it grows
        # per topic as an offset does, and a label that waits for its prediction keeps it: its
        # letter names that line); a count on the topics the replay writes to as well.
        at = index if topic in INPUT_TOPICS else offsets[topic]
        # A batched value is many events: one outcome each, applied in order, each followed
        # by its aftermath before the next (as if the events had come one per line).
        source = SourceRef(topic, 0, at)
        for out in iter_record(monitors, topic, raw, source, received):
            if out.dead_letter is not None:
                dl = to_dict(out.dead_letter)
                if out.dead_letter.source.topic == topic:  # else an early label's: its line
                    dl["source"] = to_dict(replace(src, index=out.dead_letter.source.index))
                yield ReplayEvent(DEAD_LETTERS, dl, index)
                if out.model_id is None:
                    continue  # not applied; else applied (a label_type_mismatch) and goes on
            for req in out.requests:
                last_ts = max(last_ts, req.ts)
                yield ReplayEvent(RETRAIN_REQUESTS, to_dict(req), index)
                monitors.sent(req)  # written out: as a worker's ack, it leaves the outbox
                for follow_topic, follow in _aftermath(req, monitors, registry):
                    offsets[follow_topic] += 1
                    mon = monitors.get(req.model_id)
                    recorded = isinstance(follow, DeploymentEvent)
                    route(
                        monitors,
                        follow_topic,
                        encode(_as_recorded(follow, mon.version) if recorded else follow),
                        SourceRef(follow_topic, 0, offsets[follow_topic]),
                        req.ts,
                    )
                    if recorded:
                        # The recorded predictions never carry the candidate's version: the
                        # version they report stays the monitored one (as before any deployment).
                        mon.version_deployed = False
                    yield ReplayEvent(follow_topic, to_dict(follow), index)
    summary.take(monitors)


def _as_recorded(dep: DeploymentEvent, version: str) -> DeploymentEvent:
    """The simulated deployment as the monitor sees it: the recorded traffic's version, live
    anew (fresh detectors, a new reference, the cooldown), with no rollback watch."""
    return replace(dep, version=version, previous_version=version)


def _aftermath(
    req: RetrainRequest, monitors: Monitors, registry: FileRegistry | None
) -> list[tuple[str, Any]]:
    if registry is None:
        return [(DEPLOYMENTS, instant_deployment(req))]
    mon = monitors.get(req.model_id)
    examples, task = mon.training_examples(), mon.scorer.task
    outcome = retrain(req, examples, mon.version, registry, now=req.ts, task=task)
    out: list[tuple[str, Any]] = [(RETRAIN_RESULTS, outcome.result)]
    if outcome.deployment is not None:
        out.append((DEPLOYMENTS, outcome.deployment))
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
    summary: ReplaySummary | None = None,
) -> dict[str, int]:
    """Replay a JSONL file; write OUT (or nothing) and return counts per emitted topic."""
    counts: dict[str, int] = {}
    with open(input_path, "rb") as src:
        sink = open(out_path, "wb") if out_path else None  # noqa: SIM115
        try:
            for ev in replay(src, book, retrain_for_real, summary):
                counts[ev.topic] = counts.get(ev.topic, 0) + 1
                if sink:
                    sink.write(ev.to_json() + b"\n")
        finally:
            if sink:
                sink.close()
    return counts
