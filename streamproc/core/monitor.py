"""Per-model monitoring: events in, retrain requests out.

A :class:`ModelMonitor` holds everything one model needs to decide when it must be retrained:
the deployed version, one detector per signal, the label join, a window of recent labelled
examples for training, the policy's clocks, and the last offset applied from each source
partition (so a record delivered twice is applied once). It reads no clock: time is the
``ts`` of the events. Its whole state round-trips through :meth:`snapshot` / :meth:`restore`.

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
from streamproc.core.labeljoin import Joined, LabelJoin
from streamproc.core.policy import DEFAULT_POLICY, Policy
from streamproc.core.rollback import RollbackWatch

__all__ = ["UNKNOWN_VERSION", "Example", "ModelMonitor"]

log = logging.getLogger(__name__)

SNAPSHOT_FORMAT: Final = 1
UNKNOWN_VERSION: Final = "unknown"
ERROR_SIGNAL: Final = "error"

# A labelled example as kept for training: [features, label, prediction, version, ts].
Example = list[Any]
# What one record can make a monitor emit: a retrain request, or a rollback deployment.
Emitted = RetrainRequest | DeploymentEvent | None


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
        self.pending_request: tuple[str, float] | None = None
        self.watch: RollbackWatch | None = None
        self.last_change_ts: float | None = None
        self.last_request_ts: float | None = None
        self.last_deployment_id: str | None = None
        self.offsets: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.last_ts = 0.0
        self._fresh_detectors()

    # ------------------------------------------------------------------ intake

    def accept(self, source: SourceRef | None) -> bool:
        """False if this record was applied already (a redelivery after a crash)."""
        if source is None:
            return True
        key = f"{source.topic}/{source.partition}"
        if source.offset <= self.offsets.get(key, -1):
            self._count("redelivered")
            return False
        self.offsets[key] = source.offset
        return True

    def on_prediction(self, ev: PredictionEvent, source: SourceRef | None) -> Emitted:
        self._seen(ev.ts, "predictions")
        self._observe_version(ev.model_version)
        joined = self.join.add_prediction(
            ev.event_id, ev.ts, ev.model_version, ev.prediction, dict(ev.features)
        )
        return self._on_joined(joined, source) if joined else None

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
        det = self.detectors.get(f"metric:{ev.name}")
        if det is None:
            return None
        if det.update(ev.value):
            evidence = f"metric:{ev.name}@{ev.ts!r}={ev.value!r}"
            return self._fired(f"metric:{ev.name}", det, ev.value, ev.ts, evidence, source)
        return None

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
        self.last_deployment_id = ev.deployment_id
        self.version = ev.version
        self.version_deployed = True
        self.pending_request = None
        self._fresh_detectors()
        log.info("model %s: monitoring resumes against version %s", self.model_id, ev.version)

    def on_result(self, ev: RetrainResult) -> None:
        """A retrain that ended without deployment stops muting new requests."""
        pending = self.pending_request
        if pending and ev.request_id == pending[0] and ev.status != "succeeded":
            self.pending_request = None
            self._count(f"retrain_{ev.status}")

    # ------------------------------------------------------------------ decisions

    def _on_joined(self, j: Joined, source: SourceRef | None) -> Emitted:
        self.examples.append([j.features, j.label, j.prediction, j.version, j.label_ts])
        if j.version != self.version:
            self._count("stale_joins")  # answered a prediction by another version
            return None
        err = error_of(j.prediction, j.label)
        if self.watch is not None and self.watch.update(err):
            return self._rollback(j)
        det = self.detectors.get(ERROR_SIGNAL)
        if det is None:
            return None
        if det.update(err):
            return self._fired(ERROR_SIGNAL, det, err, j.label_ts, f"label:{j.event_id}", source)
        return None

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
            self.last_change_ts = details["change_ts"]
        reason = Reason(
            signal=signal,
            detector=det.kind,
            value=value if det.kind == "threshold" else det.statistic,
            threshold=det.threshold,
            n=det.n,
            details=details,
        )
        det.reset()
        if not self._may_request(ts):
            self._count("suppressed")
            return None
        reasons = (reason,)
        rid = request_id_for(self.model_id, self.version, evidence, reasons)
        self.pending_request = (rid, ts)
        self.last_request_ts = ts
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

    def _change_ts(self, since: int) -> float | None:
        """Label time of the first of the last ``since`` examples of the current version."""
        seen = 0
        for ex in reversed(self.examples):
            if ex[3] == self.version:
                seen += 1
                if seen == since:
                    return float(ex[4])
        return None

    def _may_request(self, ts: float) -> bool:
        if self.pending_request is not None:
            if ts - self.pending_request[1] < self.policy.pending_timeout_s:
                return False
            self.pending_request = None
        cooled = self.last_request_ts is None or ts - self.last_request_ts >= self.policy.cooldown_s
        return cooled

    # ------------------------------------------------------------------ helpers

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
                "pending": self.pending_request,
                "watch": self.watch.state() if self.watch else None,
                "last_change_ts": self.last_change_ts,
                "last_request_ts": self.last_request_ts,
                "offsets": self.offsets,
                "counts": self.counts,
                "last_ts": self.last_ts,
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
        pending = s["pending"]
        mon.pending_request = (pending[0], pending[1]) if pending else None
        mon.last_request_ts = s["last_request_ts"]
        mon.watch = RollbackWatch.from_state(s["watch"]) if s["watch"] else None
        mon.last_change_ts = s["last_change_ts"]
        mon.offsets = s["offsets"]
        mon.counts = s["counts"]
        mon.last_ts = s["last_ts"]
        return mon
