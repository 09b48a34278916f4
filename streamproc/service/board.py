"""The worker's status board: what each of its models is doing, for the API, metrics and page.

The agents report to it (a batch applied, a request emitted, a retrain started or finished, a
result or deployment seen); the web views read it. It holds only the models of the partitions
this worker has processed, in memory (see :mod:`streamproc.core.timeline`).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from streamproc.core.events import DeploymentEvent, RetrainRequest, RetrainResult, to_dict
from streamproc.core.monitor import ModelMonitor
from streamproc.core.timeline import Decision, ModelTimeline, SignalStatus
from streamproc.core.versions import VersionStatus
from streamproc.service.metrics import Metrics

__all__ = ["ModelView", "StatusBoard"]


@dataclass
class ModelView:
    model_id: str
    timeline: ModelTimeline
    partition: int = -1
    version: str = "unknown"
    deployed_at: float | None = None  # wall time the worker saw the deployment
    signals: list[SignalStatus] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    in_flight: dict[str, Any] | None = None
    results: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=5))
    versions: list[VersionStatus] = field(default_factory=list)  # served side by side

    def summary(self) -> dict[str, Any]:
        worst = max(self.signals, key=lambda s: s.ratio, default=None)
        return {
            "model_id": self.model_id,
            "partition": self.partition,
            "version": self.version,
            "deployed_at": self.deployed_at,
            "event_time": self.timeline.now,
            "nearest_signal": _signal(worst) if worst else None,
            "in_flight": self.in_flight,
            "last_result": self.results[-1] if self.results else None,
            "decisions": len(self.timeline.decisions),
        }

    def detail(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "signals": [_signal(s) for s in self.signals],
            "series": {k: s.as_dict() for k, s in self.timeline.series.items()},
            "decisions": [_decision(d) for d in self.timeline.decisions],
            "results": list(self.results),
            "counts": self.counts,
            "versions": [_version(x) for x in self.versions],
        }


class StatusBoard:
    """Per-model views on this worker, and the metrics fed from the same reports."""

    def __init__(self, max_models_in_metrics: int = 100, points: int = 120) -> None:
        self.points = points
        self.models: dict[str, ModelView] = {}
        self.metrics = Metrics(self.signals, max_models_in_metrics)
        self.started = time.time()

    def view(self, model_id: str) -> ModelView:
        v = self.models.get(model_id)
        if v is None:
            v = self.models[model_id] = ModelView(model_id, ModelTimeline(self.points))
        return v

    def signals(self) -> dict[str, list[SignalStatus]]:
        return {m: v.signals for m, v in self.models.items()}

    # ------------------------------------------------------------------ reports

    def applied(self, mon: ModelMonitor, partition: int) -> None:
        """A batch changed ``mon``: sample its signals, count its joins."""
        v = self.view(mon.model_id)
        v.partition = partition
        v.signals = mon.signal_status()
        v.versions = mon.version_status(v.signals)
        v.timeline.sample(mon.last_ts, v.signals, mon.firings)
        mon.firings.clear()
        if v.version != mon.version:
            v.version = mon.version
        v.counts = {**mon.counts, **mon.join.counts}
        if self.metrics.model(mon.model_id) == mon.model_id:  # a gauge per labelled model
            for part, n in (("join", v.counts.get("evicted_for_bytes", 0)),
                            ("window", v.counts.get("window_evicted_for_bytes", 0))):  # fmt: skip
                self.metrics.evicted_for_bytes.labels(mon.model_id, part).set(n)
        # Joins since the last report: the monitor's unsaved latency list (a monitor restored
        # after a rebalance starts it empty, so history is not counted twice).
        # (Counted apart from the delays, which are kept up to MAX_LATENCIES per batch: a
        # catch-up's batch can join more, and the count was capped with them.)
        self.metrics.joins.labels(self.metrics.model(mon.model_id)).inc(mon.joins_unread)
        for s in mon.join_latencies:
            self.metrics.join_latency.observe(s)
        mon.joins_unread = 0
        mon.join_latencies.clear()

    def requested(self, req: RetrainRequest) -> None:
        self.view(req.model_id).timeline.requested(req)
        self.metrics.requests.labels(self.metrics.model(req.model_id)).inc()

    def result(self, res: RetrainResult) -> None:
        v = self.view(res.model_id)
        v.timeline.result(res)
        v.results.append(to_dict(res))
        self.metrics.results.labels(res.status).inc()

    def deployed(self, dep: DeploymentEvent) -> None:
        v = self.view(dep.model_id)
        v.timeline.deployed(dep)
        v.version = dep.version
        v.deployed_at = time.time()
        self.metrics.deployments.labels(dep.action).inc()

    def retrain_started(self, req: RetrainRequest) -> None:
        self.view(req.model_id).in_flight = {
            "request_id": req.request_id,
            "since": time.time(),
            "reasons": [r.signal for r in req.reasons],
        }
        self.metrics.in_flight.set(sum(1 for v in self.models.values() if v.in_flight))

    def retrain_ended(self, model_id: str, request_id: str) -> None:
        v = self.view(model_id)
        if v.in_flight and v.in_flight["request_id"] == request_id:
            self.metrics.retrain_duration.observe(time.time() - v.in_flight["since"])
            v.in_flight = None
        self.metrics.in_flight.set(sum(1 for v in self.models.values() if v.in_flight))

    def forget_partitions(self, partitions: set[int]) -> None:
        """Partitions left this worker: their models are served (and shown) elsewhere now."""
        for mid in [m for m, v in self.models.items() if v.partition in partitions | {-1}]:
            del self.models[mid]
        self.metrics.in_flight.set(sum(1 for v in self.models.values() if v.in_flight))

    # ------------------------------------------------------------------ reads

    def status(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "models": [v.summary() for _, v in sorted(self.models.items())],
        }

    def model(self, model_id: str) -> dict[str, Any] | None:
        v = self.models.get(model_id)
        return v.detail() if v else None


def _decision(d: Decision) -> dict[str, Any]:
    return {"kind": d.kind, "ts": d.ts, "request_id": d.request_id, "version": d.version,
            "event": d.event}  # fmt: skip


def _signal(s: SignalStatus) -> dict[str, Any]:
    return {
        "signal": s.signal,
        "detector": s.detector,
        "statistic": s.statistic if s.statistic == s.statistic else None,
        "threshold": s.threshold,
        "ratio": s.ratio,
        "n": s.n,
        "fired": s.fired,
    }


def _version(x: VersionStatus) -> dict[str, Any]:
    """A served version (current or beside it: canary, shadow) and its own signals."""
    return {
        "version": x.version,
        "current": x.current,
        "traffic_share": x.share,
        "predictions": x.predictions,
        "labels": x.labels,
        "last_ts": x.last_ts,
        "signals": [_signal(s) for s in x.signals],
    }
