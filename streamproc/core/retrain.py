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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from streamproc.core.errors import errors_of, infer_task
from streamproc.core.events import (
    DeploymentEvent,
    RetrainRequest,
    RetrainResult,
    parse_retrain_request,
    to_dict,
)
from streamproc.core.example import Example, as_examples
from streamproc.core.exceptions import StreamprocError
from streamproc.core.gate import MIN_HOLDOUT, current_error, decide, split_holdout
from streamproc.core.registry import Registry
from streamproc.core.training import train

__all__ = [
    "Candidate",
    "RetrainLedger",
    "RetrainOutcome",
    "TrainerError",
    "TrainingJob",
    "builtin_trainer",
    "candidate_version",
    "failed",
    "holdout_errors",
    "judge",
    "prepare",
    "retrain",
    "unexpected",
]

log = logging.getLogger(__name__)

Admission = Literal["start", "resume", "coalesce", "duplicate"]

# How long a job may stay in flight before a new request for the model replaces it (and the
# old one gets a ``failed`` result): a worker killed mid-job whose request is not delivered
# again must not leave the model "in flight" forever, every later request coalesced into it.
RUN_DEADLINE_S = 3600.0

# Marks the results streamproc publishes, to tell them from an external trainer's answers.
OURS: Mapping[str, Any] = {"by": "streamproc"}


class RetrainLedger:
    """Handled request ids and the request in flight, for one model."""

    def __init__(self, remember: int = 1000) -> None:
        self.handled: deque[str] = deque(maxlen=remember)
        self.in_flight: str | None = None
        self.coalesced: list[str] = []
        # For a job handed to an external trainer: its job (to judge the answer) and deadline.
        self.waiting: dict[str, Any] | None = None
        self.deadline: float | None = None
        self.expired: str | None = None

    def admit(
        self, request_id: str, now: float | None = None, run_s: float = RUN_DEADLINE_S
    ) -> Admission:
        """What to do with a request: start it, resume it (seen before a crash), or skip it.

        A job past its deadline no longer blocks the model: the new request starts, and
        :attr:`expired` names the abandoned one (its ``failed`` result is the caller's to send).
        A started job's deadline is ``now + run_s`` (none without ``now``); an external
        trainer's job gets its own (:meth:`wait_for_external`).

        >>> led = RetrainLedger()
        >>> led.admit("rr-1", now=0.0), led.admit("rr-2", now=10.0)
        ('start', 'coalesce')
        >>> led.admit("rr-3", now=RUN_DEADLINE_S + 1), led.expired
        ('start', 'rr-1')
        """
        self.expired = None
        if request_id in self.handled:
            return "duplicate"
        if self.in_flight == request_id:
            return "resume"
        if self.in_flight is not None and not self._overdue(now):
            if request_id not in self.coalesced:
                self.coalesced.append(request_id)
            return "coalesce"
        if self.in_flight is not None:
            self.expired = self.in_flight
            self.finish(self.in_flight)
        self.in_flight = request_id
        self.deadline = None if now is None else now + run_s
        return "start"

    def _overdue(self, now: float | None) -> bool:
        return now is not None and self.deadline is not None and now > self.deadline

    def wait_for_external(self, job: dict[str, Any], deadline: float) -> None:
        """The in-flight job now waits for an external trainer's result until ``deadline``."""
        self.waiting = job
        self.deadline = deadline

    def finish(self, request_id: str) -> list[str]:
        """Mark the job done; returns the request ids that were coalesced into it."""
        merged = self.coalesced if self.in_flight == request_id else []
        for rid in (request_id, *merged):
            if rid not in self.handled:
                self.handled.append(rid)
        if self.in_flight == request_id:
            self.in_flight = None
            self.coalesced = []
            self.waiting = None
            self.deadline = None
        return merged

    def state(self) -> dict[str, Any]:
        return {
            "handled": list(self.handled),
            "in_flight": self.in_flight,
            "coalesced": list(self.coalesced),
            "waiting": self.waiting,
            "deadline": self.deadline,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any], remember: int = 1000) -> RetrainLedger:
        """Rebuild from :meth:`state`; ``remember`` in a ledger saved before issue 15 is
        ignored (the bound is the code's, not the state's)."""
        led = cls(remember=remember)
        led.handled.extend(s["handled"])
        led.in_flight = s["in_flight"]
        led.coalesced = list(s["coalesced"])
        led.waiting = s.get("waiting")
        led.deadline = s.get("deadline")
        return led


@dataclass(frozen=True, slots=True)
class RetrainOutcome:
    result: RetrainResult
    deployment: DeploymentEvent | None


@dataclass(frozen=True, slots=True)
class TrainingJob:
    """What a trainer receives: the request, examples to learn from, and a holdout to predict.

    Examples (:class:`~streamproc.core.example.Example`) are oldest first. The trainer never
    learns from the holdout; it returns its predictions for it, and the gate scores them.
    """

    request: RetrainRequest
    deployed_version: str
    train: tuple[Example, ...]
    holdout: tuple[Example, ...]
    # "classification" or "regression" (the monitor's, streamproc.core.errors); None: inferred
    task: str | None = None

    def resolved_task(self) -> str:
        """The job's task, or the one its examples show (all of them, forced if ambiguous)."""
        if self.task is not None:
            return self.task
        return infer_task((ex.prediction, ex.label) for ex in (*self.train, *self.holdout))

    def state(self) -> dict[str, Any]:
        """What must survive a restart while an external trainer works: enough to judge it."""
        return {
            "request": to_dict(self.request),
            "deployed_version": self.deployed_version,
            "holdout": [ex.row() for ex in self.holdout],
            "task": self.task,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> TrainingJob:
        request = parse_retrain_request(orjson.dumps(s["request"]))
        holdout = tuple(Example.from_row(row) for row in s["holdout"])
        return cls(request, s["deployed_version"], (), holdout, s.get("task"))

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "request": to_dict(self.request),
            "deployed_version": self.deployed_version,
            "task": self.resolved_task(),
            "train": [
                {"features": ex.features, "label": ex.label, "ts": ex.ts} for ex in self.train
            ],
            "holdout": [{"features": ex.features} for ex in self.holdout],
        }


@dataclass(frozen=True, slots=True)
class Candidate:
    """A trainer's answer: the artifact (bytes, or the URI it lives at) and holdout predictions."""

    holdout_predictions: tuple[Any, ...]
    artifact: bytes | None = None
    artifact_uri: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)


class TrainerError(StreamprocError, RuntimeError):
    """Training did not produce a candidate. ``transient`` failures are retried with backoff."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


def candidate_version(request_id: str) -> str:
    """Deterministic, so a job re-run after a crash registers and deploys the same version."""
    return "v-" + hashlib.sha256(request_id.encode()).hexdigest()[:10]


def prepare(
    request: RetrainRequest,
    examples: Sequence[Example] | Sequence[Sequence[Any]],
    deployed_version: str,
    min_examples: int = 50,
    task: str | None = None,
) -> TrainingJob:
    """Choose the examples to learn from and the holdout to judge on.

    ``examples`` are :class:`~streamproc.core.example.Example` (or rows in its field order,
    converted). ``task`` is the model's task as its monitor knows it (None: inferred from the
    examples).

    Raises
    ------
    TrainerError
        When there are too few labelled examples to train and judge a candidate.
    """
    if len(examples) < min_examples:
        raise TrainerError(
            f"only {len(examples)} labelled examples for {request.model_id} (< {min_examples}); "
            "send labels for its predictions, or lower the minimum"
        )
    span = training_span(request, as_examples(examples), min_examples)
    train_set, holdout = split_holdout(span, min_holdout=MIN_HOLDOUT)
    return TrainingJob(request, deployed_version, tuple(train_set), tuple(holdout), task)


def builtin_trainer(job: TrainingJob, learner: str = "logistic") -> Candidate:
    """The built-in trainer: a river model fit on the job's examples, pickled.

    ``learner`` is the classifier (:data:`streamproc.core.training.LEARNERS`); regression
    always gets the ridge fit.
    """
    try:
        model = train(job.train, task=job.resolved_task(), learner=learner)
    except (ValueError, TypeError) as exc:
        raise TrainerError(f"training failed: {exc}") from None
    answers = tuple(model.predict(ex.features) for ex in job.holdout)
    metrics = {"task": model.task, "learner": model.learner}
    return Candidate(answers, artifact=pickle.dumps(model), metrics=metrics)


def judge(
    job: TrainingJob,
    candidate: Candidate,
    registry: Registry,
    now: float,
    margin: float = 0.0,
) -> RetrainOutcome:
    """Gate the candidate against the deployed version; register and deploy it if it wins."""
    req = job.request
    rid, mid = req.request_id, req.model_id
    if len(candidate.holdout_predictions) != len(job.holdout):
        return failed(
            req,
            now,
            f"trainer answered {len(candidate.holdout_predictions)} holdout predictions for "
            f"{len(job.holdout)} holdout examples; return one prediction per holdout example",
        )
    task = job.resolved_task()
    cand_err, bad = holdout_errors(job.holdout, candidate.holdout_predictions, task)
    if bad:
        # Never judge on mismatched types: a wrong type is not a wrong answer.
        return failed(
            req,
            now,
            f"{bad} of {len(job.holdout)} holdout predictions of the candidate cannot be compared "
            f"with their labels (the model's task is {task}); return predictions of the labels' "
            "type (numbers for numeric labels, the same class names for classes)",
        )
    cur_err, n_cur = current_error(job.holdout, job.deployed_version, task)
    verdict = decide(cand_err, cur_err, n_cur, margin)
    version = candidate_version(rid)
    metrics = {
        **candidate.metrics,
        "candidate_error": cand_err,
        "current_error": cur_err,
        "holdout": len(job.holdout),
        "holdout_current": n_cur,
        "train": len(job.train),
        "task": task,
        "gate": verdict.why,
    }
    if not verdict.promote:
        log.info("model %s: candidate %s rejected (%s)", mid, version, verdict.why)
        rejected = RetrainResult(rid, mid, "rejected", now, version, metrics, extra=OURS)
        return RetrainOutcome(rejected, None)
    uri = candidate.artifact_uri
    if candidate.artifact is not None:
        mv = registry.register(
            mid,
            version,
            candidate.artifact,
            created_ts=now,
            parent_version=job.deployed_version,
            request_id=rid,
            metrics=metrics,
        )
        uri = mv.artifact_uri
    result = RetrainResult(rid, mid, "succeeded", now, version, metrics, extra=OURS)
    deployment = DeploymentEvent(
        deployment_id="dep-" + rid.removeprefix("rr-"),
        model_id=mid,
        version=version,
        action="promote",
        ts=now,
        request_id=rid,
        previous_version=job.deployed_version,
        artifact_uri=uri,
        metrics=metrics,
    )
    return RetrainOutcome(result, deployment)


def retrain(
    request: RetrainRequest,
    examples: Sequence[Example] | Sequence[Sequence[Any]],
    deployed_version: str,
    registry: Registry,
    now: float,
    margin: float = 0.0,
    trainer: Callable[[TrainingJob], Candidate] = builtin_trainer,
    task: str | None = None,
) -> RetrainOutcome:
    """Prepare, train, gate and register in one call; a failure becomes a ``failed`` result.

    Any exception (a trainer's bug, a registry that cannot write) is such a failure too.
    """
    try:
        job = prepare(request, examples, deployed_version, task=task)
        candidate = trainer(job)
    except TrainerError as exc:
        return failed(request, now, str(exc))
    except Exception as exc:  # a bad job must not stop its caller
        log.exception("model %s: retrain %s raised", request.model_id, request.request_id)
        return failed(request, now, unexpected(exc))
    try:
        return judge(job, candidate, registry, now, margin)
    except Exception as exc:  # registering: the disk, the registry's store
        log.exception("model %s: judging %s raised", request.model_id, request.request_id)
        return failed(request, now, unexpected(exc))


def holdout_error(
    holdout: Sequence[Example], predictions: Sequence[Any], task: str | None = None
) -> float:
    """Mean error of ``predictions`` against the holdout labels (0/1, or absolute)."""
    return holdout_errors(holdout, predictions, task)[0]


def holdout_errors(
    holdout: Sequence[Example], predictions: Sequence[Any], task: str | None = None
) -> tuple[float, int]:
    """Mean error of the comparable ``predictions`` and how many were not comparable.

    ``task`` None infers it from the holdout's production pairs.
    """
    if not holdout:
        return float("nan"), 0
    pairs = [(p, ex.label) for p, ex in zip(predictions, holdout, strict=True)]
    task = task or infer_task(
        (ex.prediction, ex.label) for ex in holdout if ex.prediction is not None
    )
    errs, bad = errors_of(pairs, task)
    return (sum(errs) / len(errs) if errs else float("nan")), bad


def training_span(
    request: RetrainRequest, examples: Sequence[Example], min_examples: int
) -> Sequence[Example]:
    """The examples to learn from: those since the estimated change point, when there are enough.

    Training on the whole window after an abrupt change would teach the old concept again.
    """
    onsets = [r.details.get("change_ts") for r in request.reasons]
    onset = min((t for t in onsets if isinstance(t, int | float)), default=None)
    if onset is None:
        return examples
    recent = [ex for ex in examples if ex.ts >= onset]
    return recent if len(recent) >= min_examples else examples[-min_examples:]


def unexpected(exc: BaseException) -> str:
    """The error of a job that raised: what was raised, and what to do.

    >>> unexpected(OSError(36, "File name too long")).split(";")[0]
    'training or registering raised OSError: [Errno 36] File name too long'
    """
    text = str(exc)
    if len(text) > 300:
        text = text[:300] + "..."
    return (
        f"training or registering raised {type(exc).__name__}: {text}; see the worker's log "
        "for the stack, fix the cause, and ask for a retrain again"
    )


def failed(request: RetrainRequest, now: float, error: str) -> RetrainOutcome:
    """A ``failed`` result carrying the error, and no deployment."""
    log.warning("model %s: retrain %s failed: %s", request.model_id, request.request_id, error)
    result = RetrainResult(
        request.request_id, request.model_id, "failed", now, error=error, extra=OURS
    )
    return RetrainOutcome(result, None)
