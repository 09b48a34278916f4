"""Retraining: one job per model at a time, each request handled once, candidates gated.

:class:`RetrainLedger` is the per-model bookkeeping that makes delivery at-least-once safe: it
remembers the request ids it has handled (a redelivered or duplicated request is ignored), the
request in flight (a request arriving meanwhile is coalesced into it), and is snapshotted like
every other piece of core state. :func:`retrain` runs one job: train on the model's recent
labelled examples, gate the candidate against the deployed version, register it, and say what to
publish.

Examples
--------
>>> ledger = RetrainLedger()
>>> ledger.admit("rr-1"), ledger.admit("rr-2")
('start', 'coalesce')
>>> ledger.finish("rr-1")  # the coalesced request is handled by this job
['rr-2']
>>> ledger.admit("rr-1"), ledger.admit("rr-2")
('duplicate', 'duplicate')
>>> RetrainLedger.from_state(ledger.state()).state() == ledger.state()
True
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from streamproc.core.events import DeploymentEvent, RetrainRequest, RetrainResult
from streamproc.core.gate import current_error, decide, split_holdout
from streamproc.core.registry import FileRegistry
from streamproc.core.training import train

__all__ = ["RetrainLedger", "RetrainOutcome", "candidate_version", "retrain"]

log = logging.getLogger(__name__)

Admission = Literal["start", "resume", "coalesce", "duplicate"]


class RetrainLedger:
    """Handled request ids and the request in flight, for one model."""

    def __init__(self, remember: int = 1000) -> None:
        self.handled: deque[str] = deque(maxlen=remember)
        self.in_flight: str | None = None
        self.coalesced: list[str] = []

    def admit(self, request_id: str) -> Admission:
        """What to do with a request: start it, resume it (seen before a crash), or skip it."""
        if request_id in self.handled:
            return "duplicate"
        if self.in_flight == request_id:
            return "resume"
        if self.in_flight is not None:
            if request_id not in self.coalesced:
                self.coalesced.append(request_id)
            return "coalesce"
        self.in_flight = request_id
        return "start"

    def finish(self, request_id: str) -> list[str]:
        """Mark the job done; returns the request ids that were coalesced into it."""
        merged = self.coalesced if self.in_flight == request_id else []
        for rid in (request_id, *merged):
            if rid not in self.handled:
                self.handled.append(rid)
        if self.in_flight == request_id:
            self.in_flight = None
            self.coalesced = []
        return merged

    def state(self) -> dict[str, Any]:
        return {
            "handled": list(self.handled),
            "remember": self.handled.maxlen,
            "in_flight": self.in_flight,
            "coalesced": self.coalesced,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> RetrainLedger:
        led = cls(remember=s["remember"])
        led.handled.extend(s["handled"])
        led.in_flight = s["in_flight"]
        led.coalesced = list(s["coalesced"])
        return led


@dataclass(frozen=True, slots=True)
class RetrainOutcome:
    result: RetrainResult
    deployment: DeploymentEvent | None


def candidate_version(request_id: str) -> str:
    """Deterministic, so a job re-run after a crash registers and deploys the same version."""
    return "v-" + hashlib.sha256(request_id.encode()).hexdigest()[:10]


def retrain(
    request: RetrainRequest,
    examples: Sequence[Sequence[Any]],
    deployed_version: str,
    registry: FileRegistry,
    now: float,
    margin: float = 0.0,
    min_examples: int = 50,
) -> RetrainOutcome:
    """Train, gate and register a candidate for ``request``; never raises for bad data.

    ``examples`` are ``[features, label, prediction, version, ts]``, oldest first.
    """
    rid, mid = request.request_id, request.model_id
    if len(examples) < min_examples:
        return _failed(
            request,
            now,
            f"only {len(examples)} labelled examples for {mid} (< {min_examples}); send labels "
            "for its predictions, or lower the minimum",
        )
    examples = training_span(request, examples, min_examples)
    train_set, holdout = split_holdout(examples)
    try:
        model = train(train_set)
    except (ValueError, TypeError) as exc:
        return _failed(request, now, f"training failed: {exc}")
    cand_err = model.error(holdout)
    cur_err, n_cur = current_error(holdout, deployed_version)
    verdict = decide(cand_err, cur_err, n_cur, margin)
    version = candidate_version(rid)
    metrics = {
        "candidate_error": cand_err,
        "current_error": cur_err,
        "holdout": len(holdout),
        "holdout_current": n_cur,
        "train": len(train_set),
        "task": model.task,
        "gate": verdict.why,
    }
    if not verdict.promote:
        log.info("model %s: candidate %s rejected (%s)", mid, version, verdict.why)
        result = RetrainResult(rid, mid, "rejected", now, version, metrics)
        return RetrainOutcome(result, None)
    mv = registry.register(
        mid,
        version,
        pickle.dumps(model),
        created_ts=now,
        parent_version=deployed_version,
        request_id=rid,
        metrics=metrics,
    )
    result = RetrainResult(rid, mid, "succeeded", now, version, metrics)
    deployment = DeploymentEvent(
        deployment_id="dep-" + rid.removeprefix("rr-"),
        model_id=mid,
        version=version,
        action="promote",
        ts=now,
        request_id=rid,
        previous_version=deployed_version,
        artifact_uri=mv.artifact_uri,
        metrics=metrics,
    )
    return RetrainOutcome(result, deployment)


def training_span(
    request: RetrainRequest, examples: Sequence[Sequence[Any]], min_examples: int
) -> Sequence[Sequence[Any]]:
    """The examples to learn from: those since the estimated change point, when there are enough.

    Training on the whole window after an abrupt change would teach the old concept again.
    """
    onsets = [r.details.get("change_ts") for r in request.reasons]
    onset = min((t for t in onsets if isinstance(t, int | float)), default=None)
    if onset is None:
        return examples
    recent = [ex for ex in examples if ex[4] >= onset]
    return recent if len(recent) >= min_examples else examples[-min_examples:]


def _failed(request: RetrainRequest, now: float, error: str) -> RetrainOutcome:
    log.warning("model %s: retrain %s failed: %s", request.model_id, request.request_id, error)
    result = RetrainResult(request.request_id, request.model_id, "failed", now, error=error)
    return RetrainOutcome(result, None)
