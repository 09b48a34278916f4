"""Per-model monitoring: events in, retrain requests out.

A :class:`ModelMonitor` holds everything one model needs to decide when it must be retrained:
the deployed version, one detector per signal, the label join, a window of recent labelled
examples for training, the trigger's clocks (:mod:`streamproc.core.trigger`), a rollback watch
after a promotion, and the last offset applied from each source partition (so a record
delivered twice is applied once). Versions served beside the current one (canary, shadow) keep
their own signals (:mod:`streamproc.core.versions`); a model still degraded after a retrain
that did not deploy is asked about again (:mod:`streamproc.core.degraded`).

Signals: ``error`` (predictions joined with their labels), ``label`` (a classifier's label
class frequencies, policy ``label_shift``: label shift, which can leave the error unchanged),
``feature:<name>`` (each watched input's distribution, label-free), ``prediction`` and
``score`` (the model's outputs, label-free), ``metric:<name>`` (reported metrics against
thresholds) and ``metric_change:<name>`` (a change in a reported metric's own series, policy
``metric_change``).

It reads no clock: time is the ``ts`` of the events. Its whole state round-trips through
:meth:`snapshot` / :meth:`restore`.

Examples
--------
>>> from streamproc.core.events import MetricEvent, SourceRef
>>> mon = ModelMonitor("m1")
>>> steps = [0.02, 0.05, 0.12]
>>> out = [mon.on_metric(MetricEvent("m1", 60.0 * i, "drift", v), SourceRef("metrics", 0, i))
...        for i, v in enumerate(steps)]
>>> [r is not None for r in out]
[False, False, True]
>>> out[2].reasons[0].signal, out[2].reasons[0].value, out[2].reasons[0].threshold
('metric:drift', 0.12, 0.1)
>>> ModelMonitor.restore(mon.snapshot()).snapshot() == mon.snapshot()
True
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, NamedTuple

import orjson

from streamproc.core.batchmonitor import apply_predictions
from streamproc.core.changepoint import estimate_change
from streamproc.core.degraded import DegradedWatch
from streamproc.core.detect import Detector, make_detector, restore
from streamproc.core.detect.multinomial import cell_key
from streamproc.core.errors import ErrorScorer, ScoredError, errors_of, infer_task
from streamproc.core.events import (
    DeploymentEvent,
    LabelEvent,
    MetricEvent,
    PredictionEvent,
    Reason,
    RetrainRequest,
    RetrainResult,
    SourceRef,
    parse_retrain_request,
    to_dict,
)
from streamproc.core.example import Example
from streamproc.core.gate import holdout_size
from streamproc.core.identifiers import LENGTH_SUFFIX, IdentifierScreen
from streamproc.core.labelbatch import apply_labels
from streamproc.core.labeljoin import Joined, LabelJoin
from streamproc.core.labelwait import LabelWait
from streamproc.core.policy import DEFAULT_POLICY, MIN_HOLDOUT, DriftRule, Policy
from streamproc.core.rollback import RollbackWatch
from streamproc.core.timeline import Firing, SignalStatus
from streamproc.core.trigger import Trigger
from streamproc.core.versions import OtherVersions, TrafficShare, VersionSignals, VersionStatus
from streamproc.core.window import TrainingWindow

__all__ = ["UNKNOWN_VERSION", "Example", "ModelMonitor"]

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT: Final = 1
UNKNOWN_VERSION: Final = "unknown"
ERROR_SIGNAL: Final = "error"
LABEL_SIGNAL: Final = "label"  # the class frequencies of the labels (policy drift.labels)
_LABELLED: Final = frozenset({ERROR_SIGNAL, LABEL_SIGNAL})
LABEL_ARL_FACTOR: Final = 100.0  # the label signal's ARL, in units of the drift rule's
_OUTPUTS: Final = frozenset({"prediction", "score"})
_FLOAT_MAX: Final = 1.7976931348623157e308

# What one record can make a monitor emit: a retrain request, or a rollback deployment.
Emitted = RetrainRequest | DeploymentEvent | None


def _screen(policy: Policy) -> IdentifierScreen:
    rule = policy.drift or DriftRule()
    return IdentifierScreen(rule.identifier_probe, rule.identifier_distinct, rule.identifiers)


def error_of(prediction: Any, label: Any) -> float:
    """0/1 error for classes, absolute error when both sides are non-integral numbers.

    Task-unaware, from one pair (an integer regression is scored as classes): kept for
    compatibility only. The monitor, gate and retrain score with :mod:`streamproc.core.errors`.

    >>> error_of("cat", "dog"), error_of(1, 1), error_of(2.5, 2.0)
    (1.0, 0.0, 0.5)
    """
    if (
        isinstance(prediction, float)
        and isinstance(label, int | float)
        and not isinstance(label, bool)
        and not (prediction.is_integer() and float(label).is_integer())
    ):
        return abs(prediction - float(label))
    return 0.0 if prediction == label else 1.0


def request_id_for(model_id: str, version: str, evidence: str, reasons: tuple[Reason, ...]) -> str:
    """Deterministic id: the same evidence yields the same id, so duplicates can be dropped."""
    fired = "|".join(f"{r.signal}/{r.detector}/{r.n}" for r in reasons)
    digest = hashlib.sha256(f"{model_id}|{version}|{evidence}|{fired}".encode()).hexdigest()
    return f"rr-{digest[:24]}"


MAX_LATENCIES: Final = 10_000
MAX_METRIC_SERIES: Final = 32  # reported metrics per model with a metric_change detector
MAX_UNSENT: Final = 8  # outbox bound: a live worker confirms each request within its batch


def detection_config(policy: Policy) -> str:
    """A digest of the rules that build a model's detectors (saved with its snapshot).

    Kept per policy object (a frozen dataclass): every snapshot asks for it, and the repr of
    the rules took a tenth of a small model's snapshot.
    """
    held = _CONFIG_DIGESTS.get(id(policy))
    if held is not None and held[0] is policy:
        return held[1]
    rules = repr((policy.metric_rules, policy.error, policy.drift))
    digest = hashlib.sha256(rules.encode()).hexdigest()[:16]
    if len(_CONFIG_DIGESTS) >= 1024:  # policies come from a file: a few; bound it anyway
        _CONFIG_DIGESTS.clear()
    _CONFIG_DIGESTS[id(policy)] = (policy, digest)  # the policy kept: its id is not reused
    return digest


_CONFIG_DIGESTS: dict[int, tuple[Policy, str]] = {}


def _finite(v: float) -> float:
    """Evidence numbers are finite (the request parser refuses others): +-inf is clipped."""
    v = float(v)
    if math.isfinite(v):
        return v
    return 0.0 if v != v else math.copysign(_FLOAT_MAX, v)


def _finite_details(d: Any) -> Any:
    """A detector's details with every non-finite number replaced by null (not a number)."""
    if isinstance(d, float):
        return d if math.isfinite(d) else None
    if isinstance(d, dict):
        return {k: _finite_details(v) for k, v in d.items()}
    if isinstance(d, list | tuple):
        return [_finite_details(v) for v in d]
    return d


class Mismatch(NamedTuple):
    """A label whose type does not match its prediction's: the router's dead letter."""

    message: str  # what was wrong and what to send instead
    # A label that came before its prediction was applied with an earlier record: where it
    # came from and the label itself, which the letter names instead of the prediction.
    label_source: SourceRef | None = None
    label: dict[str, Any] | None = None


def _where(s: SourceRef) -> tuple[str, int, int, int | None]:
    return s.topic, s.partition, s.offset, s.index


def origin_of(source: SourceRef | None) -> list[Any] | None:
    """Where a label came from, as an early label keeps it (for the dead letter of a type
    mismatch found when its prediction arrives)."""
    return None if source is None else [*_where(source)]


class ModelMonitor:
    """Signals, detectors and trigger policy for one model.

    Parameters
    ----------
    model_id
        The model this monitor watches.
    policy
        The trigger policy that applies to it.
    """

    def __init__(self, model_id: str, policy: Policy = DEFAULT_POLICY):
        self.model_id = model_id
        self.policy = policy
        self.version = UNKNOWN_VERSION
        self.version_deployed = False  # True once a deployment event set the version
        self.detectors: dict[str, Detector] = {}
        lim = policy.join
        self.join = LabelJoin(lim.max_pending, lim.ttl_s, lim.max_early, lim.max_bytes, model_id)
        self.examples = TrainingWindow(
            policy.training_window, policy.training_window_bytes, self._count, model_id
        )
        self.trigger = Trigger(policy)
        self.samples: dict[str, int] = {}  # per signal, for confirmation
        self.watch: RollbackWatch | None = None
        self.refit_due = 0  # labelled examples after which the current version is refit
        self.last_refit_id: str | None = None
        self.own_examples = 0  # labelled examples the current version answered
        self.last_change_ts: float | None = None
        self.last_deployment_id: str | None = None
        # The last good error level while a change-based retrain is in flight or failed.
        self.degraded: DegradedWatch | None = None
        # A label-free alarm held until labels of predictions made after it exist.
        self.label_wait: LabelWait | None = None
        # Versions served beside the current one (canary, shadow), each with its own signals,
        # and the share of recent traffic each carries (streamproc.core.versions).
        self.others = OtherVersions()
        self.traffic = TrafficShare()
        self.offsets: dict[str, int] = {}
        self.batch_pos: dict[str, int] = {}  # per source partition: see _later_in_batch
        # Requests made and not yet confirmed on the requests topic (the outbox): a snapshot
        # saying a request was made must be able to make it again (see unsent_requests).
        self.unsent: dict[str, RetrainRequest] = {}
        self.counts: dict[str, int] = {}
        self.last_ts = 0.0
        # Joins and (up to MAX_LATENCIES of) their label delays since the worker last read them
        # (for its metrics); not part of the state.
        self.joins_unread = 0
        self.join_latencies: list[float] = []
        self.screen = _screen(policy)
        # Detectors that fired since the worker last read them (for its plots: a detector is
        # reset when it fires, so a later sample would not show the value); not in the state.
        self.firings: list[Firing] = []
        # Task and error scoring (streamproc.core.errors); type mismatches found while applying
        # the current record, for the router to dead-letter (not part of the state).
        self.scorer = ErrorScorer(policy.task, policy.error.loss if policy.error else "absolute")
        self.mismatches: list[Mismatch] = []
        self._fresh_detectors()

    # ------------------------------------------------------------------ intake

    def accept(self, source: SourceRef | None) -> bool:
        """False if this record was applied already (a redelivery after a crash)."""
        if source is None:
            return True
        key = f"{source.topic}/{source.partition}"
        last = self.offsets.get(key, -1)
        if source.offset < last or (
            source.offset == last and not self._later_in_batch(key, source)
        ):
            self._count("redelivered")
            return False
        self.offsets[key] = source.offset
        if source.index is None:
            self.batch_pos.pop(key, None)
        else:
            self.batch_pos[key] = source.index
        return True

    def _later_in_batch(self, key: str, source: SourceRef) -> bool:
        """Whether an event of the record last applied comes after its last applied event.

        Events of one batched record share its offset: the 2nd..nth are new, a redelivered
        record's are not. ``batch_pos`` holds the index last applied at ``offsets[key]`` (none
        when that record was a single event, applied whole).
        """
        done = self.batch_pos.get(key)
        return source.index is not None and done is not None and source.index > done

    def on_prediction(
        self, ev: PredictionEvent, source: SourceRef | None, done: Mapping[str, bool] | None = None
    ) -> Emitted:
        """Apply one prediction; ``done``: detectors the batch path already updated with it
        (signal -> what its update returned; :mod:`streamproc.core.batchmonitor`)."""
        self._seen(ev.ts, "predictions")
        self._observe_version(ev.model_version)
        request = None
        if ev.model_version == self.version:
            self.trigger.events += 1
            request = (
                self._watch_distributions(ev, source, done)
                or self._scheduled(ev.ts, source)
                or self._label_wait_expired(ev.ts, source)
            )
        else:
            self._other_prediction(ev)
        joined = self.join.add_prediction(
            ev.event_id, ev.ts, ev.model_version, ev.prediction, dict(ev.features)
        )
        emitted = self._on_joined(joined, source) if joined else None
        return request or emitted

    def on_predictions(
        self, events: Sequence[PredictionEvent], sources: Sequence[SourceRef | None] | None = None
    ) -> Iterator[tuple[int, Emitted]]:
        """A batch of this model's predictions at once, lazily: ``(i, emitted)`` per event,
        identical to :meth:`on_prediction` one by one (:mod:`streamproc.core.batchmonitor`)."""
        return apply_predictions(self, events, sources)

    def on_labels(
        self, events: Sequence[LabelEvent], sources: Sequence[SourceRef | None] | None = None
    ) -> Iterator[tuple[int, Emitted]]:
        """A batch of this model's labels at once, lazily: ``(i, emitted)`` per event,
        identical to :meth:`on_label` one by one (:mod:`streamproc.core.labelbatch`)."""
        return apply_labels(self, events, sources)

    def on_label(self, ev: LabelEvent, source: SourceRef | None) -> Emitted:
        self._seen(ev.ts, "labels")
        joined = self.join.add_label(ev.event_id, ev.ts, ev.label, origin_of(source))
        return self._on_joined(joined, source) if joined else None

    def on_metric(self, ev: MetricEvent, source: SourceRef | None) -> RetrainRequest | None:
        self._seen(ev.ts, "metrics")
        if ev.model_version is not None and ev.model_version != self.version:
            if not self.version_deployed and self.version == UNKNOWN_VERSION:
                self._observe_version(ev.model_version)
            else:
                # About a version that is no longer (or not yet) the deployed one.
                self._count("stale_metrics")
                return None
        signal = f"metric:{ev.name}"
        det = self.detectors.get(signal)
        fired, request = False, None
        if det is not None and self._update(signal, det, ev.value):
            evidence = f"{signal}@{ev.ts!r}={ev.value!r}"
            fired, request = True, self._fired(signal, det, ev.value, ev.ts, evidence, source)
        # The metric's own series, besides its thresholds (policy metric_change).
        change = self._metric_change_detector(ev.name)
        if change is not None and self._update(change[0], change[1], ev.value):
            evidence = f"{change[0]}@{ev.ts!r}={ev.value!r}"
            req = self._fired(change[0], change[1], ev.value, ev.ts, evidence, source)
            fired, request = True, request or req
        return request if fired else self._scheduled(ev.ts, source)

    def _metric_change_detector(self, name: str) -> tuple[str, Detector] | None:
        """The change detector of metric ``name``'s series, made on its first value."""
        rule = self.policy.metric_change
        if rule is None or not rule.watches(name):
            return None
        signal = f"metric_change:{name}"
        det = self.detectors.get(signal)
        if det is None:
            # Metric names come from producers: bound the series watched per model (state,
            # exported gauges); the rest are counted, not watched.
            if (
                sum(1 for s in self.detectors if s.startswith("metric_change:"))
                >= MAX_METRIC_SERIES
            ):
                self._count("metric_change_over_limit")
                return None
            det = self.detectors[signal] = rule.make()
        return signal, det

    def on_deployment(self, ev: DeploymentEvent) -> None:
        """A new version is live: monitoring resumes against it with fresh detectors.

        After a promotion, the new version's live error is watched against the previous
        version's recent error, and a rollback follows if it is significantly worse.
        """
        if ev.deployment_id == self.last_deployment_id:
            return
        self._seen(ev.ts, "deployments")
        self.watch = None
        rule = self.policy.rollback
        previous = ev.previous_version or self.version
        if rule and ev.action == "promote" and previous not in (ev.version, UNKNOWN_VERSION):
            baseline = self._recent_errors(previous, rule.baseline_n)
            if len(baseline) >= 30:
                self.watch = RollbackWatch.from_errors(
                    previous,
                    baseline,
                    min_samples=rule.min_samples,
                    max_samples=rule.max_samples,
                    z=rule.z,
                )
        # A model retrained after an alarm learned from the little data since the change (or a
        # mix across it): refit it once it has answered enough labels of its own. A refit's
        # own deployment is not refit again, nor is a version already trained on that many.
        trained_on = ev.metrics.get("train")
        retrained = isinstance(trained_on, int) and trained_on < self.policy.refit_examples
        refit = retrained and ev.action == "promote" and ev.request_id != self.last_refit_id
        self.refit_due = self.policy.refit_examples if refit else 0
        self.degraded = None
        self.label_wait = None
        self.own_examples = 0
        self.last_deployment_id = ev.deployment_id
        if ev.version != self.version and self.version != UNKNOWN_VERSION:
            self.others.park(self.version, VersionSignals(self.detectors), ev.ts)
        self.others.take(ev.version)
        self.version = ev.version
        self.version_deployed = True
        self.trigger.deployed(ev.ts)
        self._fresh_detectors()
        log.info("model %s: monitoring resumes against version %s", self.model_id, ev.version)

    def on_result(self, ev: RetrainResult) -> None:
        """A retrain that ended without deployment stops muting new requests."""
        if ev.status != "succeeded" and self.trigger.ended_without_deployment(ev.request_id):
            self._count(f"retrain_{ev.status}")
        if ev.status != "succeeded" and self.degraded is not None:
            # A candidate that lost on few post-change examples: the next one waits for a
            # refit's training set (one that deployed on fewer would be refit anyway). A failed
            # one was never judged: retry on the plain backoff.
            floor = self._refit_labels() if ev.status == "rejected" else 0
            self.degraded.ended(ev.request_id, ev.status, at_least=floor)

    def _refit_labels(self) -> int:
        """Post-change labels whose training set (the holdout aside) has ``refit_examples`` (a
        version trained on fewer is refit once it has answered that many labels), or that fill
        the training window if it cannot hold that many: the largest set a retry can have."""
        want = self.policy.refit_examples
        if want <= 0:
            return 0
        n, room = want, self.examples.capacity()
        while n < room and n - holdout_size(n, min_holdout=MIN_HOLDOUT) < want:
            n += 1
        return min(n, room)

    # ------------------------------------------------------------------ decisions

    def _on_joined(self, j: Joined, source: SourceRef | None) -> Emitted:
        self.joins_unread += 1
        if len(self.join_latencies) < MAX_LATENCIES:
            self.join_latencies.append(j.latency_s)
        scored = self.scorer.add(j.event_id, j.version, j.prediction, j.label, j.label_ts)
        for event_id, msg in scored.mismatches:
            self._count("label_type_mismatch")
            self.mismatches.append(self._mismatch(msg, j, event_id))
        if not scored.comparable:
            return None  # never scored, never a training or gate example
        self._error_detector()  # exists from the moment the task is known
        self.examples.append(Example(j.features, j.label, j.prediction, j.version, j.label_ts))
        emitted: Emitted = None
        for s in scored.ready:  # this pair, or those held until the task was known
            out = self._on_error(s, source)
            emitted = emitted or out
        if self.label_wait is not None and j.version == self.version:
            out = self._label_wait_over(j, source)
            emitted = emitted or out
        out = self._watch_label(j, source)
        return emitted or out

    def _watch_label(self, j: Joined, source: SourceRef | None) -> Emitted:
        """A classifier's label frequencies (policy ``label_shift``), with the detector of
        ``drift.categorical`` (the multinomial CUSUM by default)."""
        rule = self.policy.drift
        if (
            rule is None
            or not self.policy.label_shift
            or self.scorer.task != "classification"
            or j.version != self.version
        ):
            return None
        det = self.detectors.get(LABEL_SIGNAL)
        if det is None:  # classes are categories, whatever their type
            spec = dict(rule.categorical)
            if "arl" in spec:
                # A backstop for what the error cannot see, so asked rarely: the labels of
                # two-class worlds gave the CUSUM a heavier tail than its bound (mixed, seed 3: a
                # false alarm at 27,503 of 40,000 with arl 1e6); their real shifts (54% -> 20%
                # positives) are found ~20 labels later with 100 times the arl.
                spec["arl"] = float(spec["arl"]) * LABEL_ARL_FACTOR
            det = self.detectors[LABEL_SIGNAL] = make_detector(spec.pop("detector"), **spec)
        if not self._update(LABEL_SIGNAL, det, j.label):
            return None
        evidence = f"{LABEL_SIGNAL}@{j.event_id}"
        return self._fired(LABEL_SIGNAL, det, det.statistic, j.label_ts, evidence, source)

    def _on_error(self, s: ScoredError, source: SourceRef | None) -> Emitted:
        err = s.error
        if s.version != self.version:
            self._count("stale_joins")  # answered a prediction by another version
            self._other_label(s)
            return None
        if self.watch is not None and self.watch.update(err):
            return self._rollback(s)
        self.own_examples += 1
        if self.refit_due and self.own_examples >= self.refit_due:
            return self._refit(s, source)
        if self.degraded is not None and self.degraded.due():
            asked = self._ask_again(s, source)
            if asked is not None:
                return asked
        det = self._error_detector()
        if det is None:
            return None
        if self._update(ERROR_SIGNAL, det, err):
            return self._fired(ERROR_SIGNAL, det, err, s.label_ts, f"label:{s.event_id}", source)
        return None

    def _error_detector(self) -> Detector | None:
        """The error detector, made once the task is known (it depends on the task)."""
        det = self.detectors.get(ERROR_SIGNAL)
        if det is None and self.policy.error is not None and self.scorer.task is not None:
            det = self.detectors[ERROR_SIGNAL] = self._make_error_detector()
        return det

    def _make_error_detector(self) -> Detector:
        """A fresh error detector for the model's (known) task."""
        rule, task = self.policy.error, self.scorer.task
        assert rule is not None and task is not None
        numeric = self.policy.drift.numeric if self.policy.drift else None
        return rule.make(task, numeric)

    def _mismatch(self, message: str, j: Joined, event_id: str) -> Mismatch:
        """A mismatch, blamed on the early label when a prediction completed this pair (a held
        pair's, found when this one decided the task, names the record being applied)."""
        if j.early_origin is None or event_id != j.event_id:
            return Mismatch(message)
        label = {"event_id": j.event_id, "model_id": self.model_id, "ts": j.label_ts}
        return Mismatch(message, SourceRef(*j.early_origin), {**label, "label": j.label})

    def take_mismatches(self) -> list[Mismatch]:
        """Type mismatches found by the last record (to dead-letter), and forget them."""
        out, self.mismatches = self.mismatches, []
        return out

    def _watch_distributions(
        self, ev: PredictionEvent, source: SourceRef | None, done: Mapping[str, bool] | None = None
    ) -> Emitted:
        """Label-free signals: each watched feature, the prediction and the score."""
        rule = self.policy.drift
        if rule is None:
            return None
        fired = None
        for signal, value in self._distribution_values(ev):
            det = self.detectors.get(signal)
            if det is None:
                if value is None:
                    continue  # the kind of test is chosen on the first real value
                det = self.detectors[signal] = rule.make(value, output=signal in _OUTPUTS)
            hit = done[signal] if done and signal in done else self._update(signal, det, value)
            if hit and fired is None and self._significant(det):
                evidence = f"{signal}@{ev.event_id}"
                fired = self._fired(signal, det, det.statistic, ev.ts, evidence, source)
        return fired

    def _screen(self, signal: str, value: Any) -> tuple[str, Any] | None:
        """Text features pass the identifier screen first: an identifier-like one is never
        watched as a category (its state would be a copy of the identifiers)."""
        if not (isinstance(value, str) and signal.startswith("feature:")):
            return signal, value
        known = signal in self.screen.verdicts
        out = self.screen.check(signal, value)
        if not known and signal in self.screen.verdicts:
            log.info("model %s: %s is %s-like", self.model_id, signal, self.screen.verdicts[signal])
            self._count(f"{self.screen.verdicts[signal]}:{signal}")
        if out is None and self.screen.verdicts.get(signal) == "identifier":
            self._count(f"identifier_skipped:{signal}")
        return out

    def _distribution_values(self, ev: PredictionEvent) -> list[tuple[str, Any]]:
        """The label-free signals' values of one prediction, through the identifier screen."""
        rule = self.policy.drift
        if rule is None:
            return []
        values: list[tuple[str, Any]] = [
            (f"feature:{k}", v) for k, v in ev.features.items() if rule.watches(k)
        ]
        if len(values) < self._feature_signals():
            values.extend(self._left_out(ev.features))
        if rule.outputs:
            values.append(("prediction", ev.prediction))
            if ev.score is not None:
                values.append(("score", ev.score))
        screened = (self._screen(signal, value) for signal, value in values)
        return [pair for pair in screened if pair is not None]

    def _other_prediction(self, ev: PredictionEvent) -> None:
        """A prediction by a version that is not current feeds that version's own signals."""
        vs = self.others.get(ev.model_version, ev.ts)
        vs.predictions += 1
        rule = self.policy.drift
        for signal, value in self._distribution_values(ev):
            if rule is None or (value is None and signal not in vs.detectors):
                continue
            make = functools.partial(rule.make, value, output=signal in _OUTPUTS)
            if vs.update(signal, value, make):
                self._count("other_version_alarms")

    def _other_label(self, s: ScoredError) -> None:
        vs = self.others.get(s.version, s.label_ts)
        vs.labels += 1
        if self.policy.error is None or self.scorer.task is None:
            return
        if vs.update(ERROR_SIGNAL, s.error, self._make_error_detector):
            self._count("other_version_alarms")

    def _feature_signals(self) -> int:
        """How many feature detectors exist."""
        return sum(1 for s in self.detectors if s.startswith("feature:"))

    def _left_out(self, features: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """Watched features whose key this record left out: missing, exactly like ``null``."""
        gone = self._left_out_signals(features)
        if gone:
            self.counts["missing_keys"] = self.counts.get("missing_keys", 0) + len(gone)
        return gone

    def _left_out_signals(self, features: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """:meth:`_left_out` without its counter."""
        return [
            (s, None)
            for s in self.detectors
            if s.startswith("feature:") and s[8:].removesuffix(LENGTH_SUFFIX) not in features
        ]

    def _significant(self, det: Detector) -> bool:
        """Bonferroni across the model's watched distributions: many tests, one alarm budget.

        A detector that falls short keeps its state: a CUSUM goes on accumulating evidence.
        """
        tests = sum(1 for s in self.detectors if s.startswith("feature:")) or 1
        p = getattr(det, "p_value", None)
        alpha = getattr(det, "alpha", None)
        if p is not None and alpha is not None:
            ok = p * tests <= alpha
        else:
            ok = det.statistic >= det.threshold + math.log(tests)
        if not ok:
            self._count("not_significant_after_correction")
        return bool(ok)

    def _refit(self, j: ScoredError, source: SourceRef | None) -> RetrainRequest | None:
        """Retrain once a version retrained after an alarm has answered enough labels itself."""
        self.refit_due = 0
        details = {"change_ts": self.last_change_ts} if self.last_change_ts is not None else {}
        n = self.own_examples
        reason = Reason("refit", "examples", n, self.policy.refit_examples, n, details)
        reasons = self.trigger.ask_scheduled(reason, j.label_ts)
        if not reasons:
            return None
        req = self._request(reasons, j.label_ts, f"refit@{j.event_id}", source)
        self.last_refit_id = req.request_id
        return req

    def _ask_again(self, j: ScoredError, source: SourceRef | None) -> RetrainRequest | None:
        """Re-request for a model still degraded after a retrain that did not deploy."""
        watch = self.degraded
        assert watch is not None
        # The latest post-change errors only: a model that recovered by itself is left alone.
        errors = self._recent_errors(self.version, 200, since=watch.change_ts, fallback=False)
        if not watch.still_degraded(errors):
            self._count("recovered_without_retrain")
            self.degraded = None
            return None
        mean = sum(errors) / len(errors)
        examples = self._examples_since(watch.change_ts)
        if not watch.grown(examples):
            self._give_up(watch, mean, examples)
            return None
        details = watch.evidence(mean)
        reason = Reason("degraded", "backoff", mean, watch.good_level, watch.labels, details)
        reasons = self.trigger.ask_scheduled(reason, j.label_ts)
        if not reasons:
            watch.postpone()
            return None
        self._count("asked_again")
        req = self._request(reasons, j.label_ts, f"degraded@{j.event_id}", source)
        watch.asked(req.request_id, examples)
        return req

    def _give_up(self, watch: DegradedWatch, mean: float, examples: int) -> None:
        """The training window is full of post-change examples and the last candidate, trained
        on all of them, did not deploy: more labels only replace them with more of the same."""
        self._count("degraded_window_full")
        self.degraded = None
        log.warning(
            "model %s: still degraded (error %.4g against %.4g before the change) after %d "
            "retrains that did not deploy, the last trained on the whole window (%d post-change "
            "examples); not asking again for this change: the trainer may not fit the new data. "
            "Retrain by hand (another trainer, or more data: raise training_window) or roll "
            "back; a new change is still detected",
            self.model_id,
            mean,
            watch.good_level,
            watch.attempts,
            examples,
        )

    def _scheduled(self, ts: float, source: SourceRef | None) -> RetrainRequest | None:
        reason = self.trigger.schedule_due(ts)
        if reason is None:
            return None
        reasons = self.trigger.ask_scheduled(reason, ts)
        return self._request(reasons, ts, f"schedule@{ts!r}", source) if reasons else None

    def _update(self, signal: str, det: Detector, value: Any) -> bool:
        self.samples[signal] = self.samples.get(signal, 0) + 1
        return det.update(value)

    def _fired(
        self,
        signal: str,
        det: Detector,
        value: float,
        ts: float,
        evidence: str,
        source: SourceRef | None,
    ) -> RetrainRequest | None:
        details = det.details()
        if signal in _LABELLED:
            # Estimated over the errors (or the label class that moved most) themselves; a
            # detector's own count of samples since the change is only the fallback.
            since = int(details.get("since_change") or 0)
            details["change_ts"] = (
                self._change_ts(since)
                if signal == ERROR_SIGNAL
                else self._label_change_ts(details, since)
            )
            need = self.policy.min_train_examples + MIN_HOLDOUT
            if self._examples_since(details["change_ts"]) < need:
                # Keep the alarm (no reset): ask once the new concept has enough examples.
                self._count("waiting_for_examples")
                return None
            if self._change_answered(details["change_ts"]) or (
                signal == LABEL_SIGNAL and self._error_fell(details["change_ts"])
            ):
                det.reset()
                return None
            self.last_change_ts = details["change_ts"]
        self._count(f"fired:{signal}")
        reason = Reason(
            signal=signal,
            detector=det.kind,
            value=_finite(value if det.kind == "threshold" else det.statistic),
            threshold=_finite(det.threshold),
            n=det.n,
            details=_finite_details(details),
        )
        if len(self.firings) < MAX_LATENCIES:
            self.firings.append(Firing(signal, ts, reason.value, reason.threshold))
        det.reset()
        if det.n < self.policy.min_samples and reason.n < self.policy.min_samples:
            self._count("suppressed")
            return None
        if not self.trigger.confirmed(signal, self.samples.get(signal, 0)):
            self._count("unconfirmed")
            return None
        if self._hold_for_labels(signal, reason, ts, evidence):
            return None
        reasons = self._offer(reason, ts)
        if reasons is None:
            return None
        req = self._request(reasons, ts, evidence, source)
        if signal in _LABELLED and isinstance(details.get("change_ts"), int | float):
            level = float(details.get("reference_level", math.nan))
            if signal == LABEL_SIGNAL:  # the version's error before the label shift
                good = self._good_level(details["change_ts"])
                level = math.nan if good is None else good
            if math.isfinite(level):
                n = self._examples_since(details["change_ts"])
                self.degraded = DegradedWatch.start(req.request_id, level, details["change_ts"], n)
        return req

    def _error_fell(self, change_ts: float | None, z: float = 3.0) -> bool:
        """Whether the error since a label shift is significantly below the error before it:
        the version serves the new labels better than the old ones, nothing to retrain for."""
        good = None if change_ts is None else self._good_level(change_ts)
        if good is None:
            return False
        after = self._recent_errors(self.version, self.policy.training_window, since=change_ts,
                                    fallback=False)  # fmt: skip
        if len(after) < MIN_HOLDOUT:
            return False
        p = min(max(good, 0.01), 0.99)
        fell = sum(after) / len(after) < good - z * math.sqrt(p * (1 - p) / len(after))
        if fell:
            self._count("label_shift_with_lower_error")
        return fell

    def _change_answered(self, change_ts: float | None) -> bool:
        """An alarm about a change already asked about, whose retrain did not deploy.

        The error and label signals often both see one change; when the first request is
        rejected, the second alarm is the same evidence again. It is left to the backoff of
        :mod:`streamproc.core.degraded` (ask again as the post-change examples double), not
        asked about at once.
        """
        watch, asked = self.degraded, self.trigger.last_request_ts
        if watch is None or not watch.armed or change_ts is None or asked is None:
            return False
        if change_ts >= asked:
            return False  # a change after that request: new evidence
        self._count("alarm_of_an_answered_change")
        return True

    def _hold_for_labels(self, signal: str, reason: Reason, ts: float, evidence: str) -> bool:
        """A label-free alarm of a labelled model waits for labels of post-alarm predictions.

        See :mod:`streamproc.core.labelwait`; a model with no labels in its window asks at once.
        """
        if not (signal in _OUTPUTS or signal.startswith("feature:")):
            return False
        if not self.examples or self.policy.min_train_examples <= 0:
            return False
        if self.label_wait is None:
            need = self.policy.min_train_examples + MIN_HOLDOUT
            self.label_wait = LabelWait.start(reason, ts, evidence, need)
        self._count("waiting_for_post_change_labels")
        return True

    def _offer(self, reason: Reason, ts: float) -> tuple[Reason, ...] | None:
        # Quorum "all" waits for the policy's signals, not for every metric's change detector
        # (on by default, one per metric name): they add evidence when they fire.
        signals = sum(1 for s in self.detectors if not s.startswith("metric_change:"))
        reasons = self.trigger.offer(reason, ts, signals=signals)
        if reasons is None:
            self._count("suppressed")
        return reasons

    def _label_wait_over(self, j: Joined, source: SourceRef | None) -> RetrainRequest | None:
        """Ask for the held label-free alarm once enough post-alarm labels exist, if they show
        the error rose (the labels are better evidence of harm than the inputs' change); if not
        yet, look again as they double, until they fill the training window."""
        wait = self.label_wait
        assert wait is not None
        if not wait.labelled(j.prediction_ts, j.label_ts) or wait.change_ts is None:
            return None
        if wait.good_level is None:
            wait.good_level = self._good_level(wait.change_ts)
        watch = None
        if wait.good_level is not None:
            n = self._examples_since(wait.change_ts)
            watch = DegradedWatch.start("", wait.good_level, wait.change_ts, n)
            limit = self.policy.training_window
            after = self._recent_errors(self.version, limit, since=wait.change_ts, fallback=False)
            if not watch.still_degraded(after):
                if not wait.later(cap=limit):
                    # Inputs moved, answers as good as before: nothing to learn from them.
                    self.label_wait = None
                    self._count("label_free_alarm_without_error_rise")
                return None
        self.label_wait = None
        reasons = self._offer(wait.reason(), j.label_ts)
        if reasons is None:
            return None
        self.last_change_ts = wait.change_ts
        req = self._request(reasons, j.label_ts, f"{wait.evidence}+labels", source)
        if watch is not None:
            watch.request_id = req.request_id
            self.degraded = watch
        return req

    def _label_wait_expired(self, ts: float, source: SourceRef | None) -> RetrainRequest | None:
        """A held alarm whose post-alarm labels did not come within the join's TTL asks now."""
        wait = self.label_wait
        if wait is None or not wait.expired(ts, self.policy.join.ttl_s):
            return None
        self.label_wait = None
        self._count("label_wait_expired")
        reasons = self._offer(wait.alarm, ts)
        return self._request(reasons, ts, wait.evidence, source) if reasons else None

    def _good_level(self, change_ts: float) -> float | None:
        """The version's measured error before a change (its last 500, at least 30): the good
        level of a change found without an error alarm (core.degraded)."""
        mine = [ex for ex in self.examples if ex[3] == self.version and ex[2] is not None]
        before = self._errors([(ex[2], ex[1]) for ex in mine if ex[4] < change_ts][-500:])
        return sum(before) / len(before) if len(before) >= MIN_HOLDOUT else None

    def _request(
        self, reasons: tuple[Reason, ...], ts: float, evidence: str, source: SourceRef | None
    ) -> RetrainRequest:
        self.label_wait = None  # this request answers a held alarm too
        rid = request_id_for(self.model_id, self.version, evidence, reasons)
        self.trigger.requested(rid, ts)
        self._count("requests")
        req = RetrainRequest(
            request_id=rid,
            model_id=self.model_id,
            model_version=self.version,
            ts=ts,
            reasons=reasons,
            policy=self.policy.name,
            source=source,
        )
        self.unsent[rid] = req
        while len(self.unsent) > MAX_UNSENT:  # a caller that never confirms (a replay)
            del self.unsent[next(iter(self.unsent))]
        return req

    def request_sent(self, request_id: str) -> None:
        """The request is on the requests topic (acked): it leaves the outbox."""
        self.unsent.pop(request_id, None)

    def unsent_requests(self) -> list[RetrainRequest]:
        """Requests this monitor made that no one confirmed sent, oldest first.

        The live worker saves a model's snapshot before it sends the model's request (the
        retrainer reads the examples from it); a worker that dies between the two leaves a
        snapshot that has made the request, whose event is then recognised as applied and not
        asked again. A worker that restores such a snapshot sends these again: the same
        request ids, which the retrainer's ledger takes as duplicates if they did arrive.
        """
        return list(self.unsent.values())

    def _recent_errors(
        self, version: str, limit: int, since: float | None = None, fallback: bool = True
    ) -> list[float]:
        """The version's latest live errors: since the last detected change if enough, else all."""
        mine = [ex for ex in self.examples if ex.version == version and ex.prediction is not None]
        since = self.last_change_ts if since is None else since
        if since is not None:
            after = [ex for ex in mine if ex.ts >= since]
            mine = after if len(after) >= 30 or not fallback else mine
        return self._errors([(ex.prediction, ex.label) for ex in mine[-limit:]])

    def _errors(self, pairs: list[tuple[Any, Any]]) -> list[float]:
        """Errors of (prediction, label) pairs as the model's task scores them."""
        task = self.scorer.task or infer_task(pairs)
        return errors_of(pairs, task, self.scorer.loss)[0]

    def _rollback(self, j: ScoredError) -> DeploymentEvent:
        watch = self.watch
        assert watch is not None
        self.watch = None
        evidence = watch.evidence()
        digest = hashlib.sha256(
            f"{self.model_id}|{self.version}|{watch.previous_version}|{j.event_id}".encode()
        ).hexdigest()[:24]
        self._count("rollbacks")
        log.warning(
            "model %s: rolling %s back to %s (%s)",
            self.model_id,
            self.version,
            watch.previous_version,
            evidence,
        )
        return DeploymentEvent(
            deployment_id=f"rb-{digest}",
            model_id=self.model_id,
            version=watch.previous_version,
            action="rollback",
            ts=j.label_ts,
            previous_version=self.version,
            metrics=evidence,
        )

    def _examples_since(self, ts: float | None) -> int:
        if ts is None:
            return len(self.examples)
        return sum(1 for ex in reversed(self.examples) if ex.ts >= ts)

    def _change_ts(self, since: int) -> float | None:
        """Label time of the estimated first post-change example of the current version.

        The likelihood estimate of :mod:`streamproc.core.changepoint` over the version's
        examples in the window; the CUSUM's own ``since`` count (which tends to reach back
        before the change) only when that finds no rise.
        """
        mine = [
            ex for ex in self.examples if ex.version == self.version and ex.prediction is not None
        ]
        k = estimate_change(self._errors([(ex.prediction, ex.label) for ex in mine]))
        if k is not None:
            return float(mine[k].ts)
        seen = 0
        for ex in reversed(self.examples):
            if ex.version == self.version:
                seen += 1
                if seen == since:
                    return float(ex.ts)
        return None

    def _label_change_ts(self, details: Mapping[str, Any], since: int) -> float | None:
        """Label time of the first example after a label shift: the two-sided change-point
        estimate of :mod:`streamproc.core.changepoint` on the indicator of the class that moved
        most."""
        top = details.get("top_cells") or []
        mine = [ex for ex in self.examples if ex.version == self.version]
        if top and mine:
            hit = [float(cell_key(ex.label) == top[0][0]) for ex in mine]
            k = estimate_change(hit, two_sided=True)
            if k is not None:
                return float(mine[k].ts)
        return float(mine[-since].ts) if 0 < since <= len(mine) else None

    def _fresh_detectors(self) -> None:
        dets: dict[str, Detector] = {
            f"metric:{r.name}": r.detector() for r in self.policy.metric_rules
        }
        self.detectors = dets
        self._error_detector()

    def _observe_version(self, version: str) -> None:
        # Before any deployment event, the current version is the one carrying the majority of
        # recent traffic; a minority version (a canary) never resets the current one's signals.
        self.traffic.observe(version)
        if self.version_deployed or version == self.version:
            return
        if self.version == UNKNOWN_VERSION:
            self.version = version
            return
        major = self.traffic.majority()
        if major is not None and major != self.version:
            self._switch_version(major)

    def _switch_version(self, version: str) -> None:
        """Another version took the majority of traffic: its signal set becomes the current one."""
        self.others.park(self.version, VersionSignals(self.detectors, self.samples), self.last_ts)
        taken = self.others.take(version)
        self._fresh_detectors()
        self.samples = {}
        if taken is not None:
            self.detectors.update(taken.detectors)
            self.samples = taken.samples
        log.info(
            "model %s: %s carries most traffic now; it is the current version",
            self.model_id,
            version,
        )
        self._count("version_switches")
        self.version = version

    def _seen(self, ts: float, topic: str) -> None:
        if ts > self.last_ts:
            self.last_ts = ts
        self._count(topic)

    def _count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def signal_status(self) -> list[SignalStatus]:
        """Each signal's detector now: statistic, threshold, samples, times fired."""
        return [
            SignalStatus(
                name, d.kind, d.statistic, d.threshold, d.n, self.counts.get(f"fired:{name}", 0)
            )
            for name, d in sorted(self.detectors.items())
        ]

    def version_status(self, signals: Sequence[SignalStatus] | None = None) -> list[VersionStatus]:
        """Each served version's signals: the current one first, then the others by name.

        ``signals``: :meth:`signal_status` when the caller has it already (not made twice).
        """
        cur = VersionStatus(
            self.version,
            True,
            self.traffic.share(self.version),
            self.trigger.events,
            self.own_examples,
            self.last_ts,
            tuple(self.signal_status() if signals is None else signals),
        )
        return [cur] + [
            VersionStatus(
                v,
                False,
                self.traffic.share(v),
                vs.predictions,
                vs.labels,
                vs.last_ts,
                tuple(vs.status()),
            )
            for v, vs in self.others.items()
        ]

    def training_examples(self) -> list[Example]:
        """The recent labelled examples, oldest first."""
        return list(self.examples)

    # ------------------------------------------------------------------ state

    def snapshot(self) -> bytes:
        return orjson.dumps(
            {
                "format": SNAPSHOT_FORMAT,
                "model_id": self.model_id,
                "version": {
                    "current": self.version,
                    "deployed": self.version_deployed,
                    "last_deployment_id": self.last_deployment_id,
                },
                "detectors": {k: d.state() for k, d in self.detectors.items()},
                "join": self.join.state(),
                "window": self.examples.rows(),
                "policy": detection_config(self.policy),
                "trigger": self.trigger.state(),
                "samples": self.samples,
                "watch": self.watch.state() if self.watch else None,
                "refit": {
                    "due": self.refit_due,
                    "own_examples": self.own_examples,
                    "last_refit_id": self.last_refit_id,
                },
                "last_change_ts": self.last_change_ts,
                "degraded": self.degraded.state() if self.degraded else None,
                "label_wait": self.label_wait.state() if self.label_wait else None,
                "versions": {"others": self.others.state(), "traffic": self.traffic.state()},
                "offsets": self.offsets,
                "batch_pos": self.batch_pos,
                "unsent": [to_dict(r) for r in self.unsent.values()],
                "counts": self.counts,
                "last_ts": self.last_ts,
                "screen": self.screen.state(),
                "scorer": self.scorer.state(),
            }
        )

    @classmethod
    def restore(cls, data: bytes, policy: Policy = DEFAULT_POLICY) -> ModelMonitor:
        """Rebuild from :meth:`snapshot`: the state is the snapshot's, the configuration the
        given ``policy``'s (join limits, training window, rollback limits, trigger). What the
        new limits no longer hold is evicted and counted. The snapshot keeps two digests of the
        configuration it was gathered under, compared, never applied: detectors start afresh if
        the detection rules changed, task inference and the error detector if the declared task
        or the loss did. Snapshots written before issue 15 also carried the limits (``examples``
        as ``[rows, training_window]``, the join's, the watch's, the version sets' bounds):
        read, and those limits ignored."""
        s = orjson.loads(data)
        if s.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(
                f"monitor snapshot format {s.get('format')!r} is not {SNAPSHOT_FORMAT}; "
                "reset the worker's state (new application id) to start from fresh detectors."
            )
        # Before issue 15 the window was saved with its size: [rows, training_window].
        rows = s["window"] if "window" in s else s["examples"][0]
        mon = cls(s["model_id"], policy)
        v = s["version"]
        if isinstance(v, list):  # before issue 15: [current, deployed, last_deployment_id]
            v = dict(zip(("current", "deployed", "last_deployment_id"), v, strict=True))
        mon.version, mon.version_deployed = v["current"], v["deployed"]
        mon.last_deployment_id = v["last_deployment_id"]
        if s.get("policy", detection_config(policy)) == detection_config(policy):
            mon.detectors.update({k: restore(v) for k, v in s["detectors"].items()})
        else:  # keep the fresh ones of the current rules
            log.info("model %s: detection rules changed: detectors start afresh", mon.model_id)
        lim = policy.join
        mon.join = LabelJoin.from_state(
            s["join"],
            max_pending=lim.max_pending,
            ttl_s=lim.ttl_s,
            max_early=lim.max_early,
            max_bytes=lim.max_bytes,
            name=mon.model_id,
        )
        mon.trigger = Trigger.from_state(s["trigger"], policy)
        mon.samples = dict(s["samples"])
        rule = policy.rollback
        if s["watch"] and rule is not None:  # a policy without rollback ends a watch
            mon.watch = RollbackWatch.from_state(
                s["watch"], min_samples=rule.min_samples, max_samples=rule.max_samples, z=rule.z
            )
        r = s["refit"]
        if isinstance(r, list):  # before issue 15: [due, own_examples, last_refit_id]
            r = dict(zip(("due", "own_examples", "last_refit_id"), r, strict=True))
        mon.refit_due, mon.own_examples, mon.last_refit_id = (
            r["due"],
            r["own_examples"],
            r["last_refit_id"],
        )
        mon.last_change_ts = s["last_change_ts"]
        mon.degraded = DegradedWatch.from_state(s["degraded"]) if s.get("degraded") else None
        wait = s.get("label_wait")  # absent in snapshots from before the label wait
        mon.label_wait = LabelWait.from_state(wait) if wait else None
        if "versions" in s:
            mon.others = OtherVersions.from_state(s["versions"]["others"])
            mon.traffic = TrafficShare.from_state(s["versions"]["traffic"])
        mon.offsets = s["offsets"]
        mon.batch_pos = s.get("batch_pos", {})  # absent in snapshots from before batches
        unsent = (parse_retrain_request(orjson.dumps(r)) for r in s.get("unsent", ()))
        mon.unsent = {r.request_id: r for r in unsent}
        mon.counts = s["counts"]
        mon.last_ts = s["last_ts"]
        if "screen" in s:  # snapshots from before the screen: features are probed again
            mon.screen.load(s["screen"])
        scorer = (
            ErrorScorer.from_state(s["scorer"], policy.task, mon.scorer.loss)
            if "scorer" in s
            else None
        )
        if scorer is not None:
            mon.scorer = scorer
        elif ERROR_SIGNAL in mon.detectors:
            # The policy now declares another task: its errors mean something else.
            del mon.detectors[ERROR_SIGNAL]
            mon._error_detector()
        mon.examples.load_rows(rows)  # the policy's window: the newest that fit, counted
        return mon
