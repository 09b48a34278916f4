"""Per-model monitoring: events in, retrain requests out.

A :class:`ModelMonitor` holds everything one model needs to decide when it must be retrained:
the deployed version, one detector per signal, the label join, a window of recent labelled
examples for training, the trigger's clocks (:mod:`streamproc.core.trigger`), a rollback watch
after a promotion, and the last offset applied from each source partition (so a record
delivered twice is applied once).

Signals: ``error`` (predictions joined with their labels), ``feature:<name>`` (each watched
input's distribution, label-free), ``prediction`` and ``score`` (the model's outputs,
label-free), and ``metric:<name>`` (reported metrics against thresholds).

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

import hashlib
import logging
import math
from collections import deque
from typing import Any, Final

import orjson

from streamproc.core.detectors import Detector, restore
from streamproc.core.events import (
    DeploymentEvent,
    LabelEvent,
    MetricEvent,
    PredictionEvent,
    Reason,
    RetrainRequest,
    RetrainResult,
    SourceRef,
)
from streamproc.core.identifiers import IdentifierScreen
from streamproc.core.labeljoin import Joined, LabelJoin
from streamproc.core.policy import DEFAULT_POLICY, DriftRule, Policy
from streamproc.core.rollback import RollbackWatch
from streamproc.core.timeline import SignalStatus
from streamproc.core.trigger import Trigger

__all__ = ["UNKNOWN_VERSION", "Example", "ModelMonitor"]

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT: Final = 1
UNKNOWN_VERSION: Final = "unknown"
ERROR_SIGNAL: Final = "error"
_OUTPUTS: Final = frozenset({"prediction", "score"})

# A labelled example as kept for training: [features, label, prediction, version, ts].
Example = list[Any]
# What one record can make a monitor emit: a retrain request, or a rollback deployment.
Emitted = RetrainRequest | DeploymentEvent | None


def _screen(policy: Policy) -> IdentifierScreen:
    rule = policy.drift or DriftRule()
    return IdentifierScreen(rule.identifier_probe, rule.identifier_distinct, rule.identifiers)


def error_of(prediction: Any, label: Any) -> float:
    """0/1 error for classes, absolute error when both sides are non-integral numbers.

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
        self.join = LabelJoin(lim.max_pending, lim.ttl_s, lim.max_early)
        self.examples: deque[Example] = deque(maxlen=policy.training_window)
        self.trigger = Trigger(policy)
        self.samples: dict[str, int] = {}  # per signal, for confirmation
        self.watch: RollbackWatch | None = None
        self.refit_due = 0  # labelled examples after which the current version is refit
        self.last_refit_id: str | None = None
        self.own_examples = 0  # labelled examples the current version answered
        self.last_change_ts: float | None = None
        self.last_deployment_id: str | None = None
        self.offsets: dict[str, int] = {}
        self.batch_pos: dict[str, int] = {}  # per source partition: see _later_in_batch
        self.counts: dict[str, int] = {}
        self.last_ts = 0.0
        # Label delays since the worker last read them (for its metrics); not part of the state.
        self.join_latencies: list[float] = []
        self.screen = _screen(policy)
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

    def on_prediction(self, ev: PredictionEvent, source: SourceRef | None) -> Emitted:
        self._seen(ev.ts, "predictions")
        self._observe_version(ev.model_version)
        request = None
        if ev.model_version == self.version:
            self.trigger.events += 1
            request = self._watch_distributions(ev, source) or self._scheduled(ev.ts, source)
        joined = self.join.add_prediction(
            ev.event_id, ev.ts, ev.model_version, ev.prediction, dict(ev.features)
        )
        emitted = self._on_joined(joined, source) if joined else None
        return request or emitted

    def on_label(self, ev: LabelEvent, source: SourceRef | None) -> Emitted:
        self._seen(ev.ts, "labels")
        joined = self.join.add_label(ev.event_id, ev.ts, ev.label)
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
        if det is None:
            return self._scheduled(ev.ts, source)
        if self._update(signal, det, ev.value):
            evidence = f"{signal}@{ev.ts!r}={ev.value!r}"
            return self._fired(signal, det, ev.value, ev.ts, evidence, source)
        return self._scheduled(ev.ts, source)

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
        # own deployment is not refit again.
        retrained = isinstance(ev.metrics.get("train"), int)
        refit = retrained and ev.action == "promote" and ev.request_id != self.last_refit_id
        self.refit_due = self.policy.refit_examples if refit else 0
        self.own_examples = 0
        self.last_deployment_id = ev.deployment_id
        self.version = ev.version
        self.version_deployed = True
        self.trigger.deployed(ev.ts)
        self._fresh_detectors()
        log.info("model %s: monitoring resumes against version %s", self.model_id, ev.version)

    def on_result(self, ev: RetrainResult) -> None:
        """A retrain that ended without deployment stops muting new requests."""
        if ev.status != "succeeded" and self.trigger.ended_without_deployment(ev.request_id):
            self._count(f"retrain_{ev.status}")

    # ------------------------------------------------------------------ decisions

    def _on_joined(self, j: Joined, source: SourceRef | None) -> Emitted:
        if len(self.join_latencies) < MAX_LATENCIES:
            self.join_latencies.append(j.latency_s)
        self.examples.append([j.features, j.label, j.prediction, j.version, j.label_ts])
        if j.version != self.version:
            self._count("stale_joins")  # answered a prediction by another version
            return None
        err = error_of(j.prediction, j.label)
        if self.watch is not None and self.watch.update(err):
            return self._rollback(j)
        self.own_examples += 1
        if self.refit_due and self.own_examples >= self.refit_due:
            return self._refit(j, source)
        det = self.detectors.get(ERROR_SIGNAL)
        if det is None:
            return None
        if self._update(ERROR_SIGNAL, det, err):
            return self._fired(ERROR_SIGNAL, det, err, j.label_ts, f"label:{j.event_id}", source)
        return None

    def _watch_distributions(self, ev: PredictionEvent, source: SourceRef | None) -> Emitted:
        """Label-free signals: each watched feature, the prediction and the score."""
        rule = self.policy.drift
        if rule is None:
            return None
        values: list[tuple[str, Any]] = [
            (f"feature:{k}", v) for k, v in ev.features.items() if rule.watches(k)
        ]
        if rule.outputs:
            values.append(("prediction", ev.prediction))
            if ev.score is not None:
                values.append(("score", ev.score))
        fired = None
        for watched, raw in values:
            screened = self._screen(watched, raw)
            if screened is None:
                continue
            signal, value = screened
            det = self.detectors.get(signal)
            if det is None:
                if value is None:
                    continue  # the kind of test is chosen on the first real value
                det = self.detectors[signal] = rule.make(value, output=signal in _OUTPUTS)
            if self._update(signal, det, value) and fired is None and self._significant(det):
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

    def _refit(self, j: Joined, source: SourceRef | None) -> RetrainRequest | None:
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
        if signal == ERROR_SIGNAL and details.get("since_change"):
            details["change_ts"] = self._change_ts(int(details["since_change"]))
            if self._examples_since(details["change_ts"]) < self.policy.min_train_examples:
                # Keep the alarm (no reset): ask once the new concept has enough examples.
                self._count("waiting_for_examples")
                return None
            self.last_change_ts = details["change_ts"]
        self._count(f"fired:{signal}")
        reason = Reason(
            signal=signal,
            detector=det.kind,
            value=value if det.kind == "threshold" else det.statistic,
            threshold=det.threshold,
            n=det.n,
            details=details,
        )
        det.reset()
        if det.n < self.policy.min_samples and reason.n < self.policy.min_samples:
            self._count("suppressed")
            return None
        if not self.trigger.confirmed(signal, self.samples.get(signal, 0)):
            self._count("unconfirmed")
            return None
        reasons = self.trigger.offer(reason, ts, signals=len(self.detectors))
        if reasons is None:
            self._count("suppressed")
            return None
        return self._request(reasons, ts, evidence, source)

    def _request(
        self, reasons: tuple[Reason, ...], ts: float, evidence: str, source: SourceRef | None
    ) -> RetrainRequest:
        rid = request_id_for(self.model_id, self.version, evidence, reasons)
        self.trigger.requested(rid, ts)
        self._count("requests")
        return RetrainRequest(
            request_id=rid,
            model_id=self.model_id,
            model_version=self.version,
            ts=ts,
            reasons=reasons,
            policy=self.policy.name,
            source=source,
        )

    def _recent_errors(self, version: str, limit: int) -> list[float]:
        """The version's latest live errors: since the last detected change if enough, else all."""
        mine = [ex for ex in self.examples if ex[3] == version and ex[2] is not None]
        since = self.last_change_ts
        if since is not None:
            after = [ex for ex in mine if ex[4] >= since]
            mine = after if len(after) >= 30 else mine
        return [error_of(ex[2], ex[1]) for ex in mine[-limit:]]

    def _rollback(self, j: Joined) -> DeploymentEvent:
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
        return sum(1 for ex in reversed(self.examples) if ex[4] >= ts)

    def _change_ts(self, since: int) -> float | None:
        """Label time of the first of the last ``since`` examples of the current version."""
        seen = 0
        for ex in reversed(self.examples):
            if ex[3] == self.version:
                seen += 1
                if seen == since:
                    return float(ex[4])
        return None

    def _fresh_detectors(self) -> None:
        dets: dict[str, Detector] = {
            f"metric:{r.name}": r.detector() for r in self.policy.metric_rules
        }
        if self.policy.error is not None:
            dets[ERROR_SIGNAL] = self.policy.error.make()
        self.detectors = dets

    def _observe_version(self, version: str) -> None:
        # Before any deployment event, the version the model reports itself is the deployed one.
        if not self.version_deployed and version != self.version:
            if self.version != UNKNOWN_VERSION:
                self._fresh_detectors()
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

    def training_examples(self) -> list[Example]:
        """The recent labelled examples, oldest first."""
        return list(self.examples)

    # ------------------------------------------------------------------ state

    def snapshot(self) -> bytes:
        return orjson.dumps(
            {
                "format": SNAPSHOT_FORMAT,
                "model_id": self.model_id,
                "version": [self.version, self.version_deployed, self.last_deployment_id],
                "detectors": {k: d.state() for k, d in self.detectors.items()},
                "join": self.join.state(),
                "examples": [list(self.examples), self.examples.maxlen],
                "trigger": self.trigger.state(),
                "samples": self.samples,
                "watch": self.watch.state() if self.watch else None,
                "refit": [self.refit_due, self.own_examples, self.last_refit_id],
                "last_change_ts": self.last_change_ts,
                "offsets": self.offsets,
                "batch_pos": self.batch_pos,
                "counts": self.counts,
                "last_ts": self.last_ts,
                "screen": self.screen.state(),
            }
        )

    @classmethod
    def restore(cls, data: bytes, policy: Policy = DEFAULT_POLICY) -> ModelMonitor:
        s = orjson.loads(data)
        if s.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(
                f"monitor snapshot format {s.get('format')!r} is not {SNAPSHOT_FORMAT}; "
                "reset the worker's state (new application id) to start from fresh detectors."
            )
        examples, maxlen = s["examples"]
        mon = cls(s["model_id"], policy)
        mon.examples = deque(maxlen=maxlen)
        mon.version, mon.version_deployed, mon.last_deployment_id = s["version"]
        mon.detectors = {k: restore(v) for k, v in s["detectors"].items()}
        mon.join = LabelJoin.from_state(s["join"])
        mon.examples.extend(examples)
        mon.trigger = Trigger.from_state(s["trigger"], policy)
        mon.samples = dict(s["samples"])
        mon.watch = RollbackWatch.from_state(s["watch"]) if s["watch"] else None
        mon.refit_due, mon.own_examples, mon.last_refit_id = s["refit"]
        mon.last_change_ts = s["last_change_ts"]
        mon.offsets = s["offsets"]
        mon.batch_pos = s.get("batch_pos", {})  # absent in snapshots from before batches
        mon.counts = s["counts"]
        mon.last_ts = s["last_ts"]
        if "screen" in s:  # snapshots from before the screen: features are probed again
            mon.screen.load(s["screen"])
        return mon
