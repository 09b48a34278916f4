"""What happened to each model, kept for people: signals over event time, and the decisions.

The worker feeds a :class:`Timeline` after each batch; the status API, the dashboard and
``streamproc status`` read it. It is bounded whatever the traffic: a series keeps between
``points`` and ``2 * points`` samples by halving its resolution when full (so it always spans
the whole run), only the headline signals get a series (error, prediction, score, reported
metrics, and the worst feature), and each model keeps its last ``decisions`` decisions.

What a plot must not hide:

- the value that fired. A detector is reset the moment it fires, so a sample taken after the
  batch shows it near 0; the monitor hands over each firing (:class:`Firing`) and the series
  stores it at its own event time, flagged, kept through every halving;
- a detector that has no threshold yet (a two-sample test capturing its reference reports 0):
  stored as a gap (NaN, ``null`` in JSON), not as a threshold of 0;
- a signal that never had data (a metric rule for a metric the model never reported): no
  series at all.

It lives in the worker's memory and is not a changelog table: after a restart or a rebalance
the plots start again, while the decisions themselves stay in the retrain-requests,
retrain-results and deployments topics.

Examples
--------
>>> from streamproc.core.events import RetrainRequest, Reason
>>> tl = ModelTimeline(points=4)
>>> for t in range(20):
...     tl.sample(float(t), [SignalStatus("error", "cusum", t / 10, 1.5, t + 1, 0)])
>>> len(tl.series["error"].ts) <= 8, tl.series["error"].ts[0], tl.series["error"].ts[-1] >= 16
(True, 0.0, True)
>>> req = RetrainRequest("rr-1", "m", "v1", 19.0, (Reason("error", "cusum", 1.6, 1.5, 19),))
>>> tl.requested(req)
>>> tl.decisions[-1].kind, tl.decisions[-1].request_id, tl.decisions[-1].ts
('requested', 'rr-1', 19.0)

A firing between two samples is stored with its value, at its time:

>>> tl.sample(21.0, [SignalStatus("error", "cusum", 0.0, 1.5, 0, 1)],
...           [Firing("error", 20.5, 7.25, 1.5)])
>>> s = tl.series["error"]
>>> i = list(s.ts).index(20.5)
>>> s.statistic[i], s.threshold[i], s.fired[i], s.statistic[-1]
(7.25, 1.5, 1, 0.0)
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from streamproc.core.events import DeploymentEvent, RetrainRequest, RetrainResult, to_dict

__all__ = ["Decision", "Firing", "ModelTimeline", "Series", "SignalStatus", "headline"]

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
class Firing:
    """A detector fired: its statistic and threshold at that moment, before its reset.

    ``ts`` is the event time of the record that made it fire (seconds since the epoch).
    """

    signal: str
    ts: float
    statistic: float
    threshold: float


def _unready(detector: str, threshold: float) -> bool:
    # A test still capturing its reference has no threshold (reported as 0 or NaN); a
    # threshold rule's 0 is a real threshold.
    return not math.isfinite(threshold) or (threshold == 0 and detector != "threshold")


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
    """Samples of one signal: event time, statistic, threshold, at a resolution of ``spacing``.

    ``fired`` is 1 where the sample is a :class:`Firing` (the value that fired), else 0. NaN
    statistic or threshold: no value then (a gap in the plot).
    """

    ts: array[float] = field(default_factory=lambda: array("d"))
    statistic: array[float] = field(default_factory=lambda: array("d"))
    threshold: array[float] = field(default_factory=lambda: array("d"))
    fired: array[int] = field(default_factory=lambda: array("b"))
    spacing: float = 0.0

    def add(self, ts: float, statistic: float, threshold: float, points: int) -> None:
        # After a firing the next sample is kept whatever the spacing: it shows the reset.
        if self.ts and not self.fired[-1] and ts - self.ts[-1] < self.spacing:
            return
        self.ts.append(ts)
        self.statistic.append(statistic)
        self.threshold.append(threshold)
        self.fired.append(0)
        self._bound(points)

    def add_firing(self, ts: float, statistic: float, threshold: float, points: int) -> None:
        """Store a firing at its own time (samples may lie after it), whatever the spacing."""
        i = bisect_right(self.ts, ts)
        self.ts.insert(i, ts)
        self.statistic.insert(i, statistic)
        self.threshold.insert(i, threshold)
        self.fired.insert(i, 1)
        self._bound(points)

    def _bound(self, points: int) -> None:
        if len(self.ts) < 2 * points:
            return
        # Halve the resolution: keep every other sample, every firing and the sample after it
        # (its reset), and space new samples twice as far. Firings denser than that are
        # thinned too, so the series stays bounded.
        f = self.fired
        keep = [i for i in range(len(self.ts)) if i % 2 == 0 or f[i] or (i and f[i - 1])]
        if len(keep) > 3 * points // 2:
            keep = keep[::2]
        for a in (self.ts, self.statistic, self.threshold):
            a[:] = array("d", [a[i] for i in keep])
        self.fired[:] = array("b", [f[i] for i in keep])
        self.spacing = max(self.spacing * 2, (self.ts[-1] - self.ts[0]) / points)

    def as_dict(self) -> dict[str, list[float]]:
        return {
            "ts": self.ts.tolist(),
            "statistic": self.statistic.tolist(),
            "threshold": self.threshold.tolist(),
            "fired": [float(f) for f in self.fired],
        }


def headline(signals: list[SignalStatus]) -> list[SignalStatus]:
    """The signals worth a plot: all but features, plus the feature nearest its threshold.

    A feature whose test has no threshold yet (capturing its reference) is not a candidate;
    if none has one, the features' series has no value (NaN) then.
    """
    features = [s for s in signals if s.signal.startswith("feature:")]
    out = [s for s in signals if not s.signal.startswith("feature:")]
    if features:
        ready = [s for s in features if not _unready(s.detector, s.threshold)]
        worst = max(ready or features, key=lambda s: s.ratio)
        # Plotted as a ratio: features differ in scale, the series must not jump between them.
        ratio = worst.ratio if ready else math.nan
        out.append(SignalStatus(FEATURES_SERIES, worst.detector, ratio, 1.0, worst.n, worst.fired))
    return out


class ModelTimeline:
    """Signal series and recent decisions of one model (see the module docstring)."""

    def __init__(self, points: int = 120, decisions: int = 50) -> None:
        self.points = points
        self.series: dict[str, Series] = {}
        self.decisions: deque[Decision] = deque(maxlen=decisions)
        self.now = 0.0

    def sample(
        self, ts: float, signals: list[SignalStatus], firings: list[Firing] | None = None
    ) -> None:
        """Record the headline signals at event time ``ts``, and the firings since the last call.

        A signal gets a series once it has data (``n > 0``) or has fired.
        """
        self.now = max(self.now, ts)
        for f in firings or ():
            if f.signal.startswith("feature:"):
                # The features' series is a ratio to the threshold (see :func:`headline`).
                ratio = abs(f.statistic / f.threshold) if f.threshold else math.nan
                f = Firing(FEATURES_SERIES, f.ts, ratio, 1.0)
            self.series.setdefault(f.signal, Series()).add_firing(
                f.ts, f.statistic, f.threshold, self.points
            )
        for s in headline(signals):
            found = self.series.get(s.signal)
            if found is None and s.n == 0:
                continue  # no data yet: no panel for it
            series = found if found is not None else self.series.setdefault(s.signal, Series())
            if _unready(s.detector, s.threshold):
                series.add(ts, math.nan, math.nan, self.points)
            else:
                series.add(ts, s.statistic, s.threshold, self.points)

    def requested(self, req: RetrainRequest) -> None:
        # At the request's own event time: where its firing is on the plot.
        self.now = max(self.now, req.ts)
        self.decisions.append(
            Decision("requested", req.ts, req.request_id, req.model_version, to_dict(req))
        )

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
