"""The closed loop, offline, on the same core as the live worker.

:func:`closed_loop` plays a world (:mod:`streamproc.sim.worlds`) through the whole loop with one
strategy: an inference server predicts with its model, labels arrive ``lag`` events later, the
strategy decides when to retrain,
:func:`streamproc.core.retrain.retrain` trains and gates a candidate, and a deployment swaps the
served model. Strategies: ``never``; ``periodic`` (every ``period`` events); ``seed_threshold``
(the seed's rule on a reported metric: error rate of the last 100 labels minus the version's
reference rate, above 0.1); ``default`` (the default policy, through :class:`ModelMonitor`);
``oracle`` (knows each true drift and retrains on post-drift data as soon as there are enough
labels for the trainer and the gate's minimum holdout: the ceiling).
"""

from __future__ import annotations

import functools
import pickle
import statistics
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamproc.core.events import (
    DeploymentEvent,
    LabelEvent,
    MetricEvent,
    PredictionEvent,
    Reason,
    RetrainRequest,
)
from streamproc.core.monitor import ModelMonitor, error_of
from streamproc.core.policy import DEFAULT_POLICY, MIN_HOLDOUT, Policy, load_policy_text
from streamproc.core.registry import FileRegistry
from streamproc.core.retrain import Candidate, TrainingJob, builtin_trainer, retrain
from streamproc.core.training import TrainedModel
from streamproc.sim.worlds import SCHEDULES, Schedule, World

__all__ = ["SCHEDULES", "STRATEGIES", "LoopResult", "World", "closed_loop"]

MODEL = "sim"
STRATEGIES = ("never", "periodic", "seed_threshold", "default", "oracle")


@dataclass
class LoopResult:
    strategy: str
    stream: str
    events: int = 0
    correct: int = 0
    retrains: int = 0
    deployments: list[tuple[int, str]] = field(default_factory=list)
    requests_at: list[int] = field(default_factory=list)
    onset_delays: list[int] = field(default_factory=list)  # drift onset -> first deployment
    false_retrains: int = 0  # requests in stationary stretches
    # Requests more than SETTLE events after an onset, while the model served at the onset is
    # still significantly worse than before it: late detections, not stationary retrains.
    late_retrains: int = 0
    abs_error: float = 0.0  # regression: sum of |prediction - label|
    # Error and label alarms after a known change: (true change, estimate, alarm), label time.
    change_points: list[tuple[float, float, float]] = field(default_factory=list)
    stationary_events: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.events if self.events else float("nan")

    @property
    def mae(self) -> float:
        """Mean absolute error of the served predictions (regression worlds)."""
        return self.abs_error / self.events if self.events else float("nan")


SEED_POLICY = load_policy_text(
    "[default]\nerror = false\ndrift = false\nrefit_examples = 0\nmetric_change = false\n"
    'metrics = [{ name = "drift", above = 0.1 }]\n'
).default
# Periodic and never: no detectors, no refits. The oracle refits as the default policy does.
QUIET_POLICY = load_policy_text(
    "[default]\nerror = false\ndrift = false\nmetrics = []\nrefit_examples = 0\n"
).default
ORACLE_POLICY = load_policy_text("[default]\nerror = false\ndrift = false\nmetrics = []\n").default
SETTLE = 2000  # events after an onset that still belong to it (not a stationary stretch)
# A later request still answers the onset while the model served at it is this many standard
# errors worse than before it (one-sided two-sample z on the served errors, the variance pooled
# as under no change; 2.58 is p = 0.005).
DEGRADED_Z = 2.58
DEGRADED_BEFORE = 10_000  # at most this many served events before the onset are its baseline
DEGRADED_MIN = 500  # served events needed on each side (a short baseline decides nothing)


def closed_loop(
    schedule: Schedule,
    strategy: str,
    lag: int = 50,
    period: int = 2000,
    seed: int = 1,
    length: int | None = None,
    on_step: Callable[[LoopResult, int], None] | None = None,
    learner: str = "logistic",
) -> LoopResult:
    """Play a world through the loop with one strategy; see the module docstring.

    ``learner``: the built-in classifier every strategy trains with, the warm start's too
    (:data:`streamproc.core.training.LEARNERS`; regression worlds always get the ridge fit).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; use one of {STRATEGIES}.")
    world = World(schedule, seed)
    policies = {"default": DEFAULT_POLICY, "seed_threshold": SEED_POLICY, "oracle": ORACLE_POLICY}
    policy = policies.get(strategy, QUIET_POLICY)
    with tempfile.TemporaryDirectory(prefix="streamproc-sim-") as registry:
        loop = _Loop(schedule, strategy, policy, world.warm_start(learner=learner), lag, period,
                     registry)  # fmt: skip
        loop.trainer = functools.partial(builtin_trainer, learner=learner)
        for i, feats, y in world:
            if length is not None and i >= length:
                break
            loop.step(i, feats, y)
            if on_step is not None:
                on_step(loop.result, i)
    return loop.result


class _Loop:
    """One inference server, its monitor and its retrainer, in event time (1 event = 1 s)."""

    def __init__(self, schedule: Schedule, strategy: str, policy: Policy, model: TrainedModel,
                 lag: int, period: int, registry: str) -> None:  # fmt: skip
        self.schedule = schedule
        self.strategy = strategy
        self.mon = ModelMonitor(MODEL, policy)
        self.model, self.version = model, "v0"
        self.registry = FileRegistry(registry)  # a folder the caller removes
        self.lag, self.period = lag, period
        self.labels: deque[tuple[int, LabelEvent]] = deque()
        self.result = LoopResult(strategy, schedule.name)
        self.recent: deque[float] = deque(maxlen=100)  # for the seed's reported metric
        self.reference: list[float] = []
        self.oracle_due: list[int] = list(schedule.drifts)
        self.last_onset: int | None = None
        self.served_errors: list[float] = []  # the served prediction's error, per event
        self.deployed_at = 0  # the first event the served model answered
        self.kind_of_version: dict[str, str] = {}  # a deployed version's request's kind
        self.trainer: Callable[[TrainingJob], Candidate] = builtin_trainer

    def step(self, i: int, feats: dict[str, Any], y: Any) -> None:
        r = self.result
        pred = self.model.predict(feats)
        r.events += 1
        r.correct += int(pred == y)
        if self.schedule.task == "regression":
            r.abs_error += abs(float(pred) - float(y))
            self.served_errors.append(abs(float(pred) - float(y)))
        else:
            self.served_errors.append(float(pred != y))
        if self._stationary(i):
            r.stationary_events += 1
        ts = float(i)
        ev = PredictionEvent(f"e{i}", MODEL, self.version, ts, prediction=pred, features=feats)
        self._act(self.mon.on_prediction(ev, None), i)
        self.labels.append((i + self.lag, LabelEvent(f"e{i}", MODEL, ts + self.lag, label=y)))
        while self.labels and self.labels[0][0] <= i:
            _, label = self.labels.popleft()
            self._act(self.mon.on_label(label, None), i)
            self._after_label(label, i)
        self._strategy_tick(i)

    def _stationary(self, i: int) -> bool:
        if self.schedule.gradual:
            return False
        return all(not (o <= i < o + SETTLE) for o in self.schedule.drifts)

    def _after_label(self, label: LabelEvent, i: int) -> None:
        if self.strategy != "seed_threshold":
            return
        err = self._served_error()
        if len(self.reference) < 500:
            self.reference.append(err)
        self.recent.append(err)

    def _served_error(self) -> float:
        ex = self.mon.examples[-1] if self.mon.examples else None
        return 1.0 if ex is None else error_of(ex.prediction, ex.label)

    def _strategy_tick(self, i: int) -> None:
        s = self.strategy
        if s == "periodic" and i > 0 and i % self.period == 0:
            self._act(self._manual(i, "periodic", i), i)
        elif s == "seed_threshold" and i % 100 == 0 and len(self.reference) >= 500:
            drift = sum(self.recent) / len(self.recent) - sum(self.reference) / len(self.reference)
            self._act(self.mon.on_metric(MetricEvent(MODEL, float(i), "drift", drift), None), i)
        elif s == "oracle" and self.oracle_due and i >= self.oracle_due[0]:
            onset = self.oracle_due[0]
            since = sum(1 for ex in self.mon.examples if ex.ts >= onset + self.lag)
            if since >= self.mon.policy.min_train_examples + MIN_HOLDOUT:
                self.oracle_due.pop(0)
                self.mon.last_change_ts = float(onset + self.lag)  # what a detector estimates
                self._act(self._manual(i, "oracle", i, change_ts=float(onset + self.lag)), i)

    def _manual(
        self, i: int, signal: str, n: int, change_ts: float | None = None
    ) -> RetrainRequest:
        details = {"change_ts": change_ts} if change_ts is not None else {}
        reason = Reason(signal, signal, 1.0, 1.0, n, details)
        return RetrainRequest(f"{signal}-{i}", MODEL, self.version, float(i), (reason,))

    def _act(self, emitted: Any, i: int) -> None:
        if isinstance(emitted, DeploymentEvent):  # a rollback
            self._deploy(emitted, i)
            return
        if not isinstance(emitted, RetrainRequest):
            return
        self.mon.request_sent(emitted.request_id)  # handled at once: never an outbox entry
        r = self.result
        r.requests_at.append(i)
        self._record_change_point(emitted)
        kind = self._count_stationary(emitted, i)
        outcome = retrain(emitted, self.mon.training_examples(), self.mon.version, self.registry,
                          now=float(i), trainer=self.trainer)  # fmt: skip
        r.retrains += 1
        if outcome.deployment is None:
            self.mon.on_result(outcome.result)
            return
        self.kind_of_version[outcome.deployment.version] = kind  # what its refit counts as
        self._deploy(outcome.deployment, i)

    def _count_stationary(self, req: RetrainRequest, i: int) -> str:
        """Count a request in a stationary stretch as false, or as a late detection, and
        return its kind (``onset``, ``late`` or ``stationary``).

        A request more than :data:`SETTLE` events after the last onset is a late detection of
        it when the model served at the onset is still serving and its errors since the onset
        are significantly above its errors before (:data:`DEGRADED_Z`); a refit request is
        counted as the request whose deployment it refits. Any other request there is a
        stationary retrain.
        """
        if all(reason.signal == "refit" for reason in req.reasons):
            kind = self.kind_of_version.get(req.model_version, "stationary")
        else:
            kind = self._request_kind(i)
        if kind == "late":
            self.result.late_retrains += 1
        elif kind == "stationary":
            self.result.false_retrains += 1
        return kind

    def _request_kind(self, i: int) -> str:
        """``onset`` (within SETTLE of one), ``late`` or ``stationary``."""
        if not self._stationary(i):
            return "onset"
        onsets = [o for o in self.schedule.drifts if o <= i]
        return "late" if onsets and self._still_degraded(onsets[-1], i) else "stationary"

    def _still_degraded(self, onset: int, i: int) -> bool:
        if self.deployed_at > onset:
            return False  # the served model was fitted after the onset
        before = self.served_errors[max(self.deployed_at, onset - DEGRADED_BEFORE) : onset]
        after = self.served_errors[onset:i]
        if len(before) < DEGRADED_MIN or len(after) < DEGRADED_MIN:
            return False
        return pooled_z(after, before) > DEGRADED_Z

    def _record_change_point(self, req: RetrainRequest) -> None:
        """Error and label alarms' change-point estimates against the true change (label time)."""
        truth = [float(o + self.lag) for o in self.schedule.drifts if o + self.lag <= req.ts]
        for reason in req.reasons:
            est = reason.details.get("change_ts")
            recent = bool(truth) and req.ts - truth[-1] <= SETTLE
            if reason.signal in ("error", "label") and recent and isinstance(est, int | float):
                self.result.change_points.append((truth[-1], float(est), req.ts))

    def _deploy(self, dep: DeploymentEvent, i: int) -> None:
        model = (
            pickle.loads(self.registry.load(MODEL, dep.version))
            if dep.action == "promote"
            else None
        )
        if model is None:
            return  # a rollback to a version this simulation did not register: keep serving
        self.model, self.version = model, dep.version
        self.deployed_at = i + 1  # event i was answered before this deployment
        self.mon.on_deployment(dep)
        self.reference.clear()
        self.recent.clear()
        r = self.result
        r.deployments.append((i, dep.version))
        onsets = [o for o in self.schedule.drifts if o <= i]
        if onsets and onsets[-1] != self.last_onset:
            self.last_onset = onsets[-1]
            r.onset_delays.append(i - onsets[-1])


def pooled_z(a: list[float], b: list[float]) -> float:
    """The two-sample z statistic of mean(a) - mean(b), its variance pooled over both samples
    (as under no difference: for 0/1 errors, the two-proportion z-test).

    >>> round(pooled_z([1.0, 0.0] * 50, [0.0] * 99 + [1.0]), 2)
    7.93
    >>> pooled_z([0.0] * 10, [0.0] * 10)
    0.0
    """
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    var = statistics.variance([*a, *b])
    se = (var / len(a) + var / len(b)) ** 0.5
    if se == 0.0:
        return 0.0
    return (ma - mb) / se
