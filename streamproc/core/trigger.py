"""Trigger policy in motion: from detector alarms to a decision to retrain.

Detectors raise alarms; the :class:`Trigger` decides whether an alarm becomes a retrain
request. In order: an alarm must be *confirmed* (k alarms of one signal within its last n
samples), enough signals must be active at once (*quorum*: any, all, or at least k, within a
window of event time), and the model must be allowed to ask (*warm-up* since deployment, no
retrain pending, *cooldown* since the last request, *budget* per period). A scheduled fallback
(maximum model age or events served) asks regardless of the detectors. Time is event time.

Examples
--------
>>> from streamproc.core.policy import Policy
>>> trig = Trigger(Policy(confirm=(2, 100)))
>>> r = Reason("error", "cusum", 14.2, 13.8, 600)
>>> trig.confirmed("error", 10), trig.confirmed("error", 50)
(False, True)
>>> [x.signal for x in trig.offer(r, ts=5.0, signals=1)]
['error']
>>> trig.requested("rr-1", ts=5.0)
>>> trig.offer(r, ts=6.0, signals=1) is None  # a retrain is pending
True
>>> Trigger.from_state(trig.state(), Policy()).state() == trig.state()
True
"""

from __future__ import annotations

from typing import Any, NamedTuple

from streamproc.core.events import Reason, to_dict
from streamproc.core.policy import Policy

__all__ = ["ActiveAlarm", "Pending", "Trigger"]


class ActiveAlarm(NamedTuple):
    """A confirmed alarm of one signal, waiting for the quorum: when, and its evidence."""

    ts: float  # event time of the alarm, s
    reason: dict[str, Any]  # the Reason as a dict (to_dict), as it goes into a request

    def to_json(self) -> dict[str, Any]:
        return {"ts": self.ts, "reason": self.reason}

    @classmethod
    def from_json(cls, v: Any) -> ActiveAlarm:
        """From its snapshot: named fields, or the positional ``[ts, reason]`` saved before."""
        return cls(v["ts"], v["reason"]) if isinstance(v, dict) else cls(v[0], v[1])


class Pending(NamedTuple):
    """The retrain request this model waits on."""

    request_id: str
    ts: float  # event time it was asked at, s

    def to_json(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "ts": self.ts}

    @classmethod
    def from_json(cls, v: Any) -> Pending:
        """From its snapshot: named fields, or the positional ``[request_id, ts]`` saved before."""
        return cls(v["request_id"], v["ts"]) if isinstance(v, dict) else cls(v[0], v[1])


class Trigger:
    """Confirmation, quorum, warm-up, pending, cooldown, budget and schedule for one model."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.alarms: dict[str, list[int]] = {}  # signal -> sample indices of recent alarms
        self.active: dict[str, ActiveAlarm] = {}  # signal -> its confirmed alarm
        self.pending: Pending | None = None
        self.last_request_ts: float | None = None
        self.request_times: list[float] = []
        self.deployed_ts: float | None = None
        self.events = 0  # predictions served by the current version
        self.scheduled = False
        self.suppressed: dict[str, int] = {}

    # ------------------------------------------------------------------ alarms

    def confirmed(self, signal: str, index: int) -> bool:
        """Record an alarm at the signal's sample ``index``; True once k of the last n alarmed."""
        k, n = self.policy.confirm
        if k <= 1:
            return True
        recent = [i for i in self.alarms.get(signal, []) if i > index - n]
        recent.append(index)
        self.alarms[signal] = recent[-k:]
        return len(recent) >= k

    def offer(self, reason: Reason, ts: float, signals: int) -> tuple[Reason, ...] | None:
        """A confirmed alarm; the reasons for a request if the policy says to ask now."""
        window = self.policy.quorum_window_s
        self.active[reason.signal] = ActiveAlarm(ts, to_dict(reason))
        self.active = {s: a for s, a in self.active.items() if ts - a.ts <= window}
        if len(self.active) < self._needed(signals):
            return self._suppress("quorum")
        return self._ask(ts, [Reason(**a.reason) for _, a in sorted(self.active.items())])

    def schedule_due(self, ts: float) -> Reason | None:
        """The scheduled fallback's reason, once per version, when its age or load is reached."""
        p = self.policy
        if self.scheduled:
            return None
        if p.max_age_s and self.deployed_ts is not None and ts - self.deployed_ts >= p.max_age_s:
            self.scheduled = True
            age = ts - self.deployed_ts
            return Reason("schedule", "max_age", age, p.max_age_s, self.events)
        if p.max_events and self.events >= p.max_events:
            self.scheduled = True
            return Reason("schedule", "max_events", self.events, p.max_events, self.events)
        return None

    def ask_scheduled(self, reason: Reason, ts: float) -> tuple[Reason, ...] | None:
        return self._ask(ts, [reason])

    def _needed(self, signals: int) -> int:
        q = self.policy.quorum
        if q == "any":
            return 1
        if q == "all":
            return max(signals, 1)
        return int(q)

    def _ask(self, ts: float, reasons: list[Reason]) -> tuple[Reason, ...] | None:
        p = self.policy
        if self.events < p.warmup_events:
            return self._suppress("warmup")
        if self.pending is not None:
            if ts - self.pending.ts < p.pending_timeout_s:
                return self._suppress("pending")
            self.pending = None
        if self.last_request_ts is not None and ts - self.last_request_ts < p.cooldown_s:
            return self._suppress("cooldown")
        if p.budget is not None:
            limit, period = p.budget
            self.request_times = [t for t in self.request_times if ts - t < period]
            if len(self.request_times) >= limit:
                return self._suppress("budget")
        self.active.clear()
        self.alarms.clear()
        return tuple(reasons)

    def _suppress(self, why: str) -> tuple[Reason, ...] | None:
        """Count why an alarm did not become a request; there is no request."""
        self.suppressed[why] = self.suppressed.get(why, 0) + 1
        return None

    # ------------------------------------------------------------------ lifecycle

    def requested(self, request_id: str, ts: float) -> None:
        self.pending = Pending(request_id, ts)
        self.last_request_ts = ts
        self.request_times.append(ts)

    def deployed(self, ts: float) -> None:
        """A new version: nothing pending, clocks and alarms start afresh."""
        self.pending = None
        self.deployed_ts = ts
        self.events = 0
        self.scheduled = False
        self.active.clear()
        self.alarms.clear()

    def ended_without_deployment(self, request_id: str) -> bool:
        if self.pending and self.pending.request_id == request_id:
            self.pending = None
            return True
        return False

    # ------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        return {
            "alarms": {k: list(v) for k, v in self.alarms.items()},
            "active": {k: a.to_json() for k, a in self.active.items()},
            "pending": self.pending.to_json() if self.pending else None,
            "last_request_ts": self.last_request_ts,
            "request_times": list(self.request_times),
            "deployed_ts": self.deployed_ts,
            "events": self.events,
            "scheduled": self.scheduled,
            "suppressed": dict(self.suppressed),
        }

    @classmethod
    def from_state(cls, s: dict[str, Any], policy: Policy) -> Trigger:
        t = cls(policy)
        t.alarms = {k: list(v) for k, v in s["alarms"].items()}
        t.active = {k: ActiveAlarm.from_json(v) for k, v in s["active"].items()}
        t.pending = Pending.from_json(s["pending"]) if s["pending"] else None
        t.last_request_ts = s["last_request_ts"]
        t.request_times = list(s["request_times"])
        t.deployed_ts = s["deployed_ts"]
        t.events = s["events"]
        t.scheduled = s["scheduled"]
        t.suppressed = dict(s["suppressed"])
        return t
