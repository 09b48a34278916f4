"""Delayed-label join: predictions wait, bounded, for the ground truth that answers them.

Labels are matched to predictions by ``event_id``. A label may come hours later, out of order,
before its prediction (it then waits in a small buffer of its own), twice, or never. Both
buffers are bounded by a time-to-live in event time and a maximum count; whatever is evicted is
counted, never dropped silently.

Examples
--------
>>> join = LabelJoin(max_pending=2, ttl_s=60)
>>> join.add_prediction("a", ts=0.0, version="v1", prediction=1, features={"x": 1.0}) is None
True
>>> j = join.add_label("a", ts=5.0, label=0)
>>> (j.prediction, j.label, j.latency_s)
(1, 0, 5.0)
>>> join.add_label("zz", ts=6.0, label=1) is None  # early label: waits for its prediction
True
>>> join.add_prediction("zz", ts=7.0, version="v1", prediction=1, features={}).label
1
>>> join.counts["joined"]
2
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Joined", "LabelJoin"]

_COUNTS = (
    "joined",
    "evicted_predictions",  # waited longer than the TTL or pushed out by max_pending
    "evicted_labels",  # early labels whose prediction never came
    "duplicate_labels",
    "duplicate_predictions",
)


@dataclass(frozen=True, slots=True)
class Joined:
    """A prediction with its label: one labelled example."""

    event_id: str
    version: str
    prediction: Any
    label: Any
    features: Mapping[str, Any]
    prediction_ts: float
    label_ts: float

    @property
    def latency_s(self) -> float:
        return self.label_ts - self.prediction_ts


class LabelJoin:
    """Bounded buffers of predictions waiting for labels and labels waiting for predictions.

    Parameters
    ----------
    max_pending
        Predictions kept waiting per model; the oldest go first.
    ttl_s
        Event-time seconds a prediction (or an early label) waits before it is evicted.
    max_early
        Labels kept waiting for a prediction not seen yet.
    """

    def __init__(self, max_pending: int = 2000, ttl_s: float = 86400.0, max_early: int = 500):
        self.max_pending = max_pending
        self.ttl_s = ttl_s
        self.max_early = max_early
        # Plain dicts keep insertion order, which is arrival order: eviction pops from the front.
        self._pending: dict[str, list[Any]] = {}
        self._early: dict[str, list[Any]] = {}
        self._recent: dict[str, None] = {}  # joined ids, to tell a duplicate label from an orphan
        self._now = 0.0
        self.counts: dict[str, int] = dict.fromkeys(_COUNTS, 0)
        self.latency_sum = 0.0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add_prediction(
        self, event_id: str, ts: float, version: str, prediction: Any, features: Mapping[str, Any]
    ) -> Joined | None:
        """Hold a prediction; return the example at once if its label came first."""
        self._advance(ts)
        early = self._early.pop(event_id, None)
        if early is not None:
            return self._joined(event_id, [ts, version, prediction, features], early[0], early[1])
        if event_id in self._pending or event_id in self._recent:
            self.counts["duplicate_predictions"] += 1
            return None
        self._pending[event_id] = [ts, version, prediction, features]
        self._evict()
        return None

    def add_label(self, event_id: str, ts: float, label: Any) -> Joined | None:
        """Match a label to its prediction, or hold it until the prediction arrives."""
        self._advance(ts)
        pred = self._pending.pop(event_id, None)
        if pred is not None:
            return self._joined(event_id, pred, ts, label)
        if event_id in self._recent or event_id in self._early:
            self.counts["duplicate_labels"] += 1
            return None
        self._early[event_id] = [ts, label]
        self._evict()
        return None

    def _joined(self, event_id: str, pred: list[Any], label_ts: float, label: Any) -> Joined:
        self.counts["joined"] += 1
        self._recent[event_id] = None
        if len(self._recent) > self.max_pending:
            del self._recent[next(iter(self._recent))]
        j = Joined(event_id, pred[1], pred[2], label, pred[3], pred[0], label_ts)
        self.latency_sum += j.latency_s
        return j

    def _advance(self, ts: float) -> None:
        if ts > self._now:
            self._now = ts

    def _evict(self) -> None:
        horizon = self._now - self.ttl_s
        for buf, limit, counter in (
            (self._pending, self.max_pending, "evicted_predictions"),
            (self._early, self.max_early, "evicted_labels"),
        ):
            while buf:
                oldest = next(iter(buf))
                if len(buf) <= limit and buf[oldest][0] >= horizon:
                    break
                del buf[oldest]
                self.counts[counter] += 1

    def state(self) -> dict[str, Any]:
        return {
            "limits": [self.max_pending, self.ttl_s, self.max_early],
            "pending": dict(self._pending),
            "early": dict(self._early),
            "recent": list(self._recent),
            "now": self._now,
            "counts": dict(self.counts),
            "latency_sum": self.latency_sum,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> LabelJoin:
        j = cls(*s["limits"])
        j._pending = dict(s["pending"])
        j._early = dict(s["early"])
        j._recent = dict.fromkeys(s["recent"])
        j._now = s["now"]
        j.counts = dict(s["counts"])
        j.latency_sum = s["latency_sum"]
        return j
