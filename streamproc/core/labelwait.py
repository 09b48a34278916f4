"""A label-free alarm waits for labels of predictions made after it before it asks to retrain.

A feature, prediction or score alarm says that the inputs (or outputs) changed, not what the
world now maps them to. Asked at the alarm, a retrain learns from the window's examples, all
labelled before the alarm (labels lag predictions), and the gate judges the candidate on the
same old examples: the candidate learns the old concept, passes, and the rollback watch then
compares its live error after the change with the previous version's before it. Measured on
the closed-loop ``rbf`` world (centroids redrawn; feature alarms 20-110 events after it, before
the error alarm): over 3 runs of 3 changes, 5 such candidates were deployed and then rolled
back, to a version still worse on the new concept.

So, when the model is labelled at all, a label-free alarm is held until ``needed`` labels of
predictions made at or after the alarm have arrived; the estimated change point (in label time,
as the training examples carry it) is the label time of the first of them, and the request
carries it as ``details.change_ts``, so training and the gate's holdout come from after it, as
for an error alarm (:mod:`streamproc.core.changepoint`). The wait is the error alarm's:
``min_train_examples + MIN_HOLDOUT``. Then the labels decide whether the change hurts: the
monitor asks only if the post-change error is significantly above the error before the change
(the one-sided test of :meth:`DegradedWatch.still_degraded`); if not yet, it looks again each
time the post-change labels double (the test's power grows with them), up to a last look when
they fill the training window, then drops the alarm: inputs that moved while the answers
stayed as good give nothing new to learn. This is the post-change training rule of
drift-adaptive learners (e.g. Gama et al. 2004, "Learning with drift detection": on a detected
change, the model is rebuilt from the examples since the change) applied to a label-free alarm.

A model whose labels stop coming is not held forever: once the join's TTL has passed since the
alarm, no label of an older prediction can still arrive, and the request goes out as before,
without a change point (:meth:`LabelWait.expired`).

Examples
--------
>>> from streamproc.core.events import Reason
>>> w = LabelWait.start(Reason("feature:x", "rank_cusum", 15.0, 13.8, 900), 100.0, "e", 3)
>>> [w.labelled(ts, label_ts) for ts, label_ts in ((90.0, 140.0), (100.0, 150.0), (101.0, 151.0))]
[False, False, False]
>>> w.labelled(102.0, 152.0), w.change_ts
(True, 150.0)
>>> w.reason().details["change_ts"], w.expired(100.0 + 86400.0, 86400.0)
(150.0, False)
>>> w.later(cap=1000), [w.labelled(103.0 + k, 153.0 + k) for k in range(3)]  # again at 6
(True, [False, False, True])
>>> w.later(cap=8), w.next_at, w.later(cap=6)  # a last look when the window is full
(True, 8, False)
>>> LabelWait.from_state(w.state()).state() == w.state()
True
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from streamproc.core.events import Reason, to_dict

__all__ = ["LabelWait"]


@dataclass
class LabelWait:
    """A label-free alarm held until enough labels of predictions made after it exist.

    Attributes
    ----------
    alarm
        The alarm's reason, as it would have been offered at the alarm.
    alarm_ts
        Event time of the alarm (prediction time).
    evidence
        The alarm's evidence string (for the request id).
    needed
        Labels of post-alarm predictions to wait for.
    labels
        Such labels so far.
    change_ts
        Label time of the first of them (the change point the request carries), None before.
    next_at
        Such labels at which the labels are looked at (``needed``, then doubling).
    good_level
        Mean error before the change, measured at the first look (None before, or unknown).
    """

    alarm: Reason
    alarm_ts: float
    evidence: str
    needed: int
    labels: int = 0
    change_ts: float | None = None
    next_at: int = 0
    good_level: float | None = None

    @classmethod
    def start(cls, alarm: Reason, alarm_ts: float, evidence: str, needed: int) -> LabelWait:
        need = max(int(needed), 1)
        return cls(alarm, float(alarm_ts), evidence, need, next_at=need)

    def labelled(self, prediction_ts: float, label_ts: float) -> bool:
        """Count one label of the current version; True when the wait is over."""
        if prediction_ts < self.alarm_ts:
            return False
        self.labels += 1
        if self.change_ts is None:
            self.change_ts = float(label_ts)
        return self.labels >= self.next_at

    def later(self, cap: int) -> bool:
        """The labels did not show harm yet: look again when they have doubled, or at ``cap``
        (the training window: more are not kept); False when ``cap`` was the last look."""
        if self.labels >= cap:
            return False
        self.next_at = min(2 * self.labels, cap)
        return True

    def expired(self, ts: float, ttl_s: float) -> bool:
        """No post-alarm label came, and none of a prediction older than ``ttl_s`` can come."""
        return self.labels == 0 and ts - self.alarm_ts >= ttl_s

    def reason(self) -> Reason:
        """The alarm's reason with the change point and what was waited for."""
        details = dict(self.alarm.details)
        details["alarm_ts"] = self.alarm_ts
        details["post_change_labels"] = self.labels
        if self.change_ts is not None:
            details["change_ts"] = self.change_ts
        return replace(self.alarm, details=details)

    def state(self) -> dict[str, Any]:
        return {
            "alarm": to_dict(self.alarm),
            "alarm_ts": self.alarm_ts,
            "evidence": self.evidence,
            "needed": self.needed,
            "labels": self.labels,
            "change_ts": self.change_ts,
            "next_at": self.next_at,
            "good_level": self.good_level,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> LabelWait:
        return cls(
            Reason(**s["alarm"]),
            s["alarm_ts"],
            s["evidence"],
            s["needed"],
            s["labels"],
            s["change_ts"],
            s["next_at"],
            s["good_level"],
        )
