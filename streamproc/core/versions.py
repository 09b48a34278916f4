"""Versions served side by side (canary, blue/green, shadow): one signal set per version.

A model's traffic may carry several ``model_version`` values at once, with or without deployment
events: a canary takes 10% of the predictions, a shadow answers every request, a blue/green
switch overlaps for a while. Each version's events feed that version's own detectors
(:class:`VersionSignals`), so a minority version never resets the majority's. The monitor keeps
the current version's set in place (its ``detectors`` and ``samples``) and the others here,
in :class:`OtherVersions`, bounded to ``max_versions`` (the least recently seen is evicted and
counted). Only the current version's alarms become retrain requests; the others' are counted
and shown in the status API.

Which version is current: the one named by the latest deployment event; before any, the
majority of recent traffic, measured by :class:`TrafficShare`, an exponentially decayed count
of predictions per version (half-life ``half_life`` predictions). The current version changes
only when another one carries more than half of recent traffic.

Examples
--------
>>> share = TrafficShare(half_life=100)
>>> for i in range(1000):
...     share.observe("v2" if i % 10 == 0 else "v1")
>>> share.majority(), round(share.share("v2"), 2)
('v1', 0.1)
>>> for i in range(300):
...     share.observe("v2")
>>> share.majority()
'v2'
>>> TrafficShare.from_state(share.state(), half_life=100).state() == share.state()
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from streamproc.core.detect import Detector, restore
from streamproc.core.timeline import SignalStatus

__all__ = ["MAX_VERSIONS", "OtherVersions", "TrafficShare", "VersionSignals", "VersionStatus"]

MAX_VERSIONS: Final = 8  # versions tracked besides the current one


class TrafficShare:
    """Exponentially decayed prediction counts per version; the majority of recent traffic.

    Parameters
    ----------
    half_life
        Predictions after which an observation weighs half.
    max_versions
        Versions counted; the one with the smallest weight is dropped beyond it.
    """

    def __init__(self, half_life: float = 1000.0, max_versions: int = MAX_VERSIONS + 1) -> None:
        self.decay = 0.5 ** (1.0 / half_life)
        self.max_versions = max_versions
        self.weights: dict[str, float] = {}

    def observe(self, version: str) -> None:
        d = self.decay
        w = self.weights
        for k in w:
            w[k] *= d
        w[version] = w.get(version, 0.0) + 1.0
        if len(w) > self.max_versions:
            del w[min(w, key=w.__getitem__)]

    def observe_many(self, version: str, n: int) -> None:
        """:meth:`observe` ``n`` times (the same weights, bit for bit: the same operations)."""
        if n <= 0:
            return
        self.observe(version)
        w, d = self.weights, self.decay
        if version not in w or len(w) > self.max_versions:
            # Dropped at once as the lightest, or over a bound (a snapshot's, larger): each
            # observation adds or trims again, as one by one.
            for _ in range(n - 1):
                self.observe(version)
            return
        if len(w) == 1:
            x = w[version]
            for _ in range(n - 1):
                x = x * d + 1.0
            w[version] = x
            return
        for _ in range(n - 1):
            for k in w:
                w[k] *= d
            w[version] += 1.0

    def share(self, version: str) -> float:
        total = sum(self.weights.values())
        return self.weights.get(version, 0.0) / total if total else 0.0

    def majority(self, min_weight: float = 50.0) -> str | None:
        """The version with more than half of recent traffic, once there is ``min_weight`` of it.

        The minimum keeps the first few predictions (a canary's may come first) from flapping.
        """
        total = sum(self.weights.values())
        if total < min_weight:
            return None
        for k, v in self.weights.items():
            if v > 0.5 * total:
                return k
        return None

    def state(self) -> dict[str, Any]:
        """The weights; the half-life and the bound are the code's, not the state's."""
        return {"w": dict(self.weights)}

    @classmethod
    def from_state(
        cls, s: dict[str, Any], half_life: float = 1000.0, max_versions: int = MAX_VERSIONS + 1
    ) -> TrafficShare:
        """Rebuild from :meth:`state`; ``decay`` and ``max`` in a snapshot written before
        issue 15 are ignored."""
        t = cls(half_life, max_versions)
        t.weights = dict(s["w"])
        return t


@dataclass
class VersionSignals:
    """One version's detectors and counters.

    Attributes
    ----------
    detectors
        Signal name -> detector, as in :class:`streamproc.core.monitor.ModelMonitor`.
    samples
        Signal name -> samples seen (for confirmation).
    fired
        Signal name -> alarms raised.
    predictions, labels
        Events of this version seen.
    last_ts
        Event time of its latest event.
    """

    detectors: dict[str, Detector] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    fired: dict[str, int] = field(default_factory=dict)
    predictions: int = 0
    labels: int = 0
    last_ts: float = 0.0

    def update(self, signal: str, value: Any, make: Callable[[], Detector] | None = None) -> bool:
        """Feed one value to a signal's detector (made by ``make`` on first use); True on alarm.

        An alarm is counted and the detector reset: a minority version does not ask for
        retraining, its alarms are shown.
        """
        det = self.detectors.get(signal)
        if det is None:
            if make is None:
                return False
            det = self.detectors[signal] = make()
        self.samples[signal] = self.samples.get(signal, 0) + 1
        if not det.update(value):
            return False
        self.fired[signal] = self.fired.get(signal, 0) + 1
        det.reset()
        return True

    def status(self) -> list[SignalStatus]:
        return [
            SignalStatus(k, d.kind, d.statistic, d.threshold, d.n, self.fired.get(k, 0))
            for k, d in sorted(self.detectors.items())
        ]

    def state(self) -> dict[str, Any]:
        return {
            "detectors": {k: d.state() for k, d in self.detectors.items()},
            "samples": dict(self.samples),
            "fired": dict(self.fired),
            "predictions": self.predictions,
            "labels": self.labels,
            "last_ts": self.last_ts,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> VersionSignals:
        if "counts" in s:  # before issue 15: [predictions, labels, last_ts]
            p, n, ts = s["counts"]
        else:
            p, n, ts = s["predictions"], s["labels"], s["last_ts"]
        dets = {k: restore(v) for k, v in s["detectors"].items()}
        return cls(dets, dict(s["samples"]), dict(s["fired"]), p, n, ts)


class OtherVersions:
    """The signal sets of the versions that are not current, at most ``max_versions``.

    >>> others = OtherVersions(max_versions=2)
    >>> for i, v in enumerate(["a", "b", "c"]):
    ...     others.get(v, float(i)).predictions += 1
    >>> sorted(others.sets), others.evicted
    (['b', 'c'], 1)
    """

    def __init__(self, max_versions: int = MAX_VERSIONS) -> None:
        self.max_versions = max_versions
        self.sets: dict[str, VersionSignals] = {}
        self.evicted = 0

    def get(self, version: str, ts: float) -> VersionSignals:
        """The version's set (created if new, evicting the least recently seen); marks it seen."""
        vs = self.sets.get(version)
        if vs is None:
            vs = self.sets[version] = VersionSignals(last_ts=ts)
            self._bound(keep=version)
        if ts > vs.last_ts:
            vs.last_ts = ts
        return vs

    def park(self, version: str, vs: VersionSignals, ts: float) -> None:
        """Keep a set that stops being current at ``ts`` (its detectors go on where they were)."""
        vs.last_ts = max(vs.last_ts, ts)
        self.sets[version] = vs
        self._bound(keep=version)

    def take(self, version: str) -> VersionSignals | None:
        return self.sets.pop(version, None)

    def _bound(self, keep: str) -> None:
        while len(self.sets) > self.max_versions:
            others = (k for k in self.sets if k != keep)
            oldest = min(others, key=lambda k: self.sets[k].last_ts)
            del self.sets[oldest]
            self.evicted += 1

    def items(self) -> Iterable[tuple[str, VersionSignals]]:
        return sorted(self.sets.items())

    def state(self) -> dict[str, Any]:
        """The sets and the evictions; the bound is the code's, not the state's."""
        return {
            "evicted": self.evicted,
            "sets": {k: v.state() for k, v in self.sets.items()},
        }

    @classmethod
    def from_state(cls, s: dict[str, Any], max_versions: int = MAX_VERSIONS) -> OtherVersions:
        """Rebuild from :meth:`state`; ``max`` in a snapshot written before issue 15 is ignored
        (sets beyond the bound are evicted at the next new version)."""
        o = cls(max_versions)
        o.evicted = s["evicted"]
        o.sets = {k: VersionSignals.from_state(v) for k, v in s["sets"].items()}
        return o


@dataclass(frozen=True, slots=True)
class VersionStatus:
    """One served version as the status API shows it."""

    version: str
    current: bool
    share: float  # of recent predictions (decayed counts)
    predictions: int
    labels: int
    last_ts: float
    signals: tuple[SignalStatus, ...]
