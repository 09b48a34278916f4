"""A model still degraded after a retrain that did not deploy is asked about again, with backoff.

When an error alarm's retrain is rejected by the gate or fails, the error detector has already
been reset, and it recalibrates on the degraded level: a model at 90% error after a change from
10% would then never be flagged again. A :class:`DegradedWatch` keeps the last good level (the
error detector's reference before the change) and the estimated change point, and asks again
each time the post-change labels double (geometric backoff: the training set doubles, so a new
candidate has a real chance to pass), as long as the recent error is still significantly above
the good level. After a *rejected* candidate the next request also waits until its training set
reaches the policy's ``refit_examples`` (the monitor passes that floor): a version deployed on
fewer examples would be refit at that size anyway, two retrains where one does. It stops when a
version is deployed, when the error is back near the good level, when the training set can no
longer grow (the last candidate was trained on every post-change example the training window
holds: another one of the same data would be judged the same), and, through the trigger, when
the retrain budget is spent.

Significance: a one-sided z-test of the mean of the latest post-change errors (the monitor
passes the last 200, so a model that recovered by itself is left alone) against the good
level, at ``z`` deviations (Bernoulli deviation for 0/1 errors, the sample deviation otherwise).

Examples
--------
>>> w = DegradedWatch.start("rr-1", good_level=0.1, change_ts=5000.0, labels=80)
>>> w.ended("rr-1")  # the request was answered rejected or failed
True
>>> [w.due() for _ in range(79)].count(True), w.due()  # the 160th post-change label
(0, True)
>>> w.still_degraded([1.0] * 9 + [0.0]), w.still_degraded([0.0] * 9 + [1.0])
(True, False)
>>> DegradedWatch.from_state(w.state()).state() == w.state()
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DegradedWatch"]

_HUGE = 1e150  # errors beyond this (from before they were bounded) are scaled down first


@dataclass
class DegradedWatch:
    """The last good error level of a model whose change-based retrain is in flight or failed.

    Attributes
    ----------
    request_id
        The latest request made for this change.
    good_level
        Mean error before the change (the error detector's reference).
    change_ts
        Estimated change point, label time.
    labels
        Labels of the current version since the change point.
    next_at
        Post-change labels at which to ask again (twice the count at the last request).
    attempts
        Requests made for this change so far.
    armed
        True once the latest request ended without a deployment.
    last_status
        How the latest request ended (``rejected``, ``failed``), None while in flight.
    trained_on
        Post-change examples the training window held at the latest request (its candidate's
        training set); 0 when unknown (a snapshot from before this field).
    """

    request_id: str
    good_level: float
    change_ts: float
    labels: int
    next_at: int
    attempts: int = 1
    armed: bool = False
    last_status: str | None = None
    trained_on: int = 0

    @classmethod
    def start(
        cls, request_id: str, good_level: float, change_ts: float, labels: int
    ) -> DegradedWatch:
        """A watch for a request made ``labels`` post-change labels after the change (all of
        them in the training window)."""
        first = 2 * max(labels, 1)
        return cls(
            request_id, float(good_level), float(change_ts), labels, first, trained_on=labels
        )

    def ended(self, request_id: str, status: str = "rejected", at_least: int = 0) -> bool:
        """The request ended without a deployment: arm the backoff. False if not ours.

        ``at_least``: post-change labels the next request waits for in any case (the monitor
        passes what a refit trains on: a retry that deployed on fewer would be refit anyway,
        two retrains where one does)."""
        if request_id != self.request_id:
            return False
        self.armed = True
        self.last_status = status
        self.next_at = max(self.next_at, at_least)
        return True

    def due(self) -> bool:
        """Count one post-change label; True when it is time to ask again."""
        self.labels += 1
        return self.armed and self.labels >= self.next_at

    def asked(self, request_id: str, trained_on: int) -> None:
        """A re-request was made; ``trained_on``: the post-change examples it can train on."""
        self.request_id = request_id
        self.attempts += 1
        self.armed = False
        self.next_at = 2 * self.labels
        self.trained_on = trained_on

    def grown(self, examples: int) -> bool:
        """Whether ``examples`` post-change examples in the window now are more than the latest
        candidate was trained on (False once the window is full: the same data again). Always
        True after a ``failed`` request: no candidate was judged."""
        return self.trained_on == 0 or self.last_status != "rejected" or examples > self.trained_on

    def postpone(self) -> None:
        """No request this time (suppressed by the trigger): wait for the next doubling."""
        self.next_at = 2 * self.labels

    def still_degraded(self, errors: Sequence[float], z: float = 3.0) -> bool:
        """Is the mean of ``errors`` significantly above the good level?"""
        n = len(errors)
        if n < 10:
            return False
        good, top = self.good_level, max(abs(e) for e in errors)
        if not math.isfinite(top):
            return True  # an infinite error (a snapshot from before errors were bounded)
        if top > _HUGE:  # sums would overflow: the same test on errors scaled down
            errors, good = [e / top for e in errors], good / top
        mean = sum(errors) / n
        if all(e in (0.0, 1.0) for e in errors):
            p = min(max(good, 0.01), 0.99)
            sd = math.sqrt(p * (1.0 - p))
        else:
            sd = math.sqrt(sum((e - mean) ** 2 for e in errors) / (n - 1))
        return mean - good > z * max(sd, 1e-12) / math.sqrt(n)

    def evidence(self, recent_mean: float) -> dict[str, Any]:
        """What a re-request says about why it is made."""
        return {
            "change_ts": self.change_ts,
            "good_level": self.good_level,
            "recent_level": recent_mean,
            "post_change_labels": self.labels,
            "attempt": self.attempts + 1,
            "previous_result": self.last_status,
            "why": (
                f"still degraded after a {self.last_status} retrain: error {recent_mean:.4g} vs "
                f"{self.good_level:.4g} before the change; asking again as the post-change "
                f"examples doubled to {self.labels}"
            ),
        }

    def state(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "good_level": self.good_level,
            "change_ts": self.change_ts,
            "labels": self.labels,
            "next_at": self.next_at,
            "attempts": self.attempts,
            "armed": self.armed,
            "last_status": self.last_status,
            "trained_on": self.trained_on,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> DegradedWatch:
        return cls(**s)
