"""What happened to each model, kept for people: signals over event time, and the decisions.

The worker feeds a :class:`Timeline` after each batch; the status API, the dashboard and
``streamproc status`` read it. It is bounded whatever the traffic: a series keeps between
``points`` and ``2 * points`` samples by halving its resolution when full (so it always spans
the whole run), only the headline signals get a series (error, prediction, score, reported
metrics, and the worst feature), and each model keeps its last ``decisions`` decisions.

It lives in the worker's memory and is not a changelog table: after a restart or a rebalance
the plots start again, while the decisions themselves stay in the retrain-requests,
retrain-results and deployments topics.

Examples
--------
>>> from streamproc.core.events import RetrainRequest, Reason
>>> tl = ModelTimeline(points=4)
>>> for t in range(20):
...     tl.sample(float(t), [SignalStatus("error", "cusum", t / 10, 1.5, t, 0)])
>>> len(tl.series["error"].ts) <= 8, tl.series["error"].ts[0], tl.series["error"].ts[-1] >= 16
(True, 0.0, True)
>>> req = RetrainRequest("rr-1", "m", "v1", 19.0, (Reason("error", "cusum", 1.6, 1.5, 19),))
>>> tl.requested(req)
>>> tl.decisions[-1].kind, tl.decisions[-1].request_id, tl.decisions[-1].ts
('requested', 'rr-1', 19.0)
"""

from __future__ import annotations

from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from streamproc.core.events import DeploymentEvent, RetrainRequest, RetrainResult, to_dict

__all__ = ["Decision", "ModelTimeline", "Series", "SignalStatus", "headline"]

FEATURES_SERIES = "features (worst)"


@dataclass(frozen=True, slots=True)
class SignalStatus:
    """One signal's detector now: its statistic against the threshold it must reach."""

    signal: str
    detector: str
    statistic: float
    threshold: float
    n: int
    fired: int

    @property
    def ratio(self) -> float:
        """statistic / threshold (1.0 means at the threshold); 0 when undefined."""
        if self.threshold == 0 or self.statistic != self.statistic:  # NaN before any data
            return 0.0
        return abs(self.statistic / self.threshold)


@dataclass(frozen=True, slots=True)
class Decision:
    """A step of a retrain's life: requested, succeeded/rejected/failed, deployed, rolled back.

    ``ts`` is the model's event time when the worker saw it (where it goes on a plot over event
    time); ``event`` is the event itself as sent.
    """

    kind: str
    ts: float
    request_id: str | None
    version: str | None
    event: dict[str, Any]


@dataclass
class Series:
    """Samples of one signal: event time, statistic, threshold, at a resolution of ``spacing``."""

    ts: array[float] = field(default_factory=lambda: array("d"))
    statistic: array[float] = field(default_factory=lambda: array("d"))
    threshold: array[float] = field(default_factory=lambda: array("d"))
    spacing: float = 0.0

    def add(self, ts: float, statistic: float, threshold: float, points: int) -> None:
        if self.ts and ts - self.ts[-1] < self.spacing:
            return
        self.ts.append(ts)
        self.statistic.append(statistic)
        self.threshold.append(threshold)
        if len(self.ts) >= 2 * points:
            # Halve the resolution: keep every other sample, and space new ones twice as far.
            for a in (self.ts, self.statistic, self.threshold):
                a[:] = a[::2]
            self.spacing = max(self.spacing * 2, (self.ts[-1] - self.ts[0]) / points)

    def as_dict(self) -> dict[str, list[float]]:
        return {
            "ts": self.ts.tolist(),
            "statistic": self.statistic.tolist(),
            "threshold": self.threshold.tolist(),
        }


def headline(signals: list[SignalStatus]) -> list[SignalStatus]:
    """The signals worth a plot: all but features, plus the feature nearest its threshold."""
    features = [s for s in signals if s.signal.startswith("feature:")]
    out = [s for s in signals if not s.signal.startswith("feature:")]
    if features:
        worst = max(features, key=lambda s: s.ratio)
        # Plotted as a ratio: features differ in scale, the series must not jump between them.
        out.append(
            SignalStatus(FEATURES_SERIES, worst.detector, worst.ratio, 1.0, worst.n, worst.fired)
        )
    return out


class ModelTimeline:
    """Signal series and recent decisions of one model (see the module docstring)."""

    def __init__(self, points: int = 120, decisions: int = 50) -> None:
        self.points = points
        self.series: dict[str, Series] = {}
        self.decisions: deque[Decision] = deque(maxlen=decisions)
        self.now = 0.0

    def sample(self, ts: float, signals: list[SignalStatus]) -> None:
        """Record the headline signals at event time ``ts``."""
        self.now = max(self.now, ts)
        for s in headline(signals):
            series = self.series.get(s.signal)
            if series is None:
                series = self.series[s.signal] = Series()
            series.add(ts, s.statistic, s.threshold, self.points)

    def requested(self, req: RetrainRequest) -> None:
        self.now = max(self.now, req.ts)
        self._add("requested", req.request_id, req.model_version, to_dict(req), req.ts)

    def result(self, res: RetrainResult) -> None:
        kind = {"succeeded": "accepted"}.get(res.status, res.status)
        self._add(kind, res.request_id, res.candidate_version, to_dict(res), res.ts)

    def deployed(self, dep: DeploymentEvent) -> None:
        kind = "rolled_back" if dep.action == "rollback" else "deployed"
        self._add(kind, dep.request_id, dep.version, to_dict(dep), dep.ts)

    def _add(
        self, kind: str, rid: str | None, version: str | None, ev: dict[str, Any], ts: float
    ) -> None:
        # At the model's event time; a view with no samples yet has only the event's own time.
        self.decisions.append(Decision(kind, self.now or ts, rid, version, ev))

    def trail(self, request_id: str) -> list[Decision]:
        """The audit trail of one request: request -> result -> deployment, as far as seen."""
        return [d for d in self.decisions if d.request_id == request_id]
