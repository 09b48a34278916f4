"""Route raw records of the monitored topics to their model's monitor.

This is the one entry point the live drift agent and the offline replay share: raw bytes of a
topic in, retrain requests (or a dead letter) out. A record that cannot be accepted never raises:
it comes back as a :class:`~streamproc.core.events.DeadLetter` saying why.

Examples
--------
>>> monitors = Monitors()
>>> src = SourceRef("metrics", 0, 0)
>>> raw = b'{"model_id": "m", "ts": 1, "name": "drift", "value": 0.5}'
>>> out = route(monitors, "metrics", raw, src, 1.0)
>>> len(out.requests), out.dead_letter
(1, None)
>>> bad = route(monitors, "metrics", b'{"model_id": "m"', SourceRef("metrics", 0, 1), 1.0)
>>> bad.dead_letter.error.startswith("metric: value is not valid UTF-8 JSON")
True
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from streamproc.core.events import (
    DeadLetter,
    DeploymentEvent,
    InvalidEvent,
    RetrainRequest,
    SourceRef,
    dead_letter,
    parse_deployment,
    parse_label,
    parse_metric,
    parse_prediction,
    parse_retrain_result,
)
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import PolicyBook
from streamproc.core.statesize import fit_snapshot

__all__ = ["MONITORED_TOPICS", "Monitors", "Outcome", "route"]

log = logging.getLogger(__name__)

# A record bigger than this is refused: events carry features, not payloads.
MAX_RECORD_BYTES: Final = 1024 * 1024
# Event time may run ahead of the broker's clock by at most this (clock skew, not a bug).
MAX_FUTURE_S: Final = 86400.0

# Logical topic names (before the configured prefix) the drift agent consumes.
MONITORED_TOPICS: Final = ("predictions", "labels", "metrics", "deployments", "retrain-results")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one record caused: retrain requests, a rollback, or the dead letter it became.

    A record that was applied can also carry a dead letter (``model_id`` set): a label whose
    type does not match its prediction's (reason ``label_type_mismatch``), never scored.
    """

    model_id: str | None = None
    requests: tuple[RetrainRequest, ...] = ()
    deployments: tuple[DeploymentEvent, ...] = ()
    dead_letter: DeadLetter | None = None
    redelivered: bool = False  # already applied (its offset was seen): nothing happened


class Monitors:
    """The monitors of many models, created on first sight and loaded lazily from a snapshot store.

    Parameters
    ----------
    book
        Policies by model id.
    load
        Returns a model's saved snapshot, or None; the live agent passes a table lookup.
    max_snapshot_bytes
        Largest snapshot the store takes; a larger one is shrunk or degraded
        (:func:`streamproc.core.statesize.fit_snapshot`), never written to fail.
    """

    def __init__(
        self,
        book: PolicyBook | None = None,
        load: Callable[[str], bytes | None] | None = None,
        max_snapshot_bytes: int | None = None,
    ) -> None:
        self.book = book or PolicyBook()
        self._load = load
        self.max_snapshot_bytes = max_snapshot_bytes
        self.live: dict[str, ModelMonitor] = {}
        self.dirty: set[str] = set()

    def get(self, model_id: str) -> ModelMonitor:
        mon = self.live.get(model_id)
        if mon is None:
            policy = self.book.for_model(model_id)
            saved = self._load(model_id) if self._load else None
            mon = ModelMonitor.restore(saved, policy) if saved else ModelMonitor(model_id, policy)
            self.live[model_id] = mon
        self.dirty.add(model_id)
        return mon

    def drain_dirty(self) -> dict[str, bytes]:
        """Snapshots of the monitors changed since the last call (to persist them); a model
        whose snapshot cannot be made to fit is left out (its previous one stays)."""
        out = {mid: self.snapshot(mid) for mid in sorted(self.dirty)}
        self.dirty.clear()
        return {mid: data for mid, data in out.items() if data is not None}

    def snapshot(self, model_id: str) -> bytes | None:
        """A live monitor's snapshot within ``max_snapshot_bytes`` (None: cannot fit)."""
        mon = self.live[model_id]
        if self.max_snapshot_bytes is None:
            return mon.snapshot()
        return fit_snapshot(mon, self.max_snapshot_bytes)

    def forget(self) -> None:
        """Drop cached monitors (on rebalance) so the next lookup reloads from the store."""
        self.live.clear()
        self.dirty.clear()


def route(
    monitors: Monitors, topic: str, raw: bytes | None, source: SourceRef, received_ts: float
) -> Outcome:
    """Apply one raw record of a monitored topic (logical name) to its model's monitor.

    ``received_ts`` is when Kafka received the record (0 when unknown, as in a replay of a
    file without broker times); an event time far after it is refused.
    """
    try:
        return _route(monitors, topic, raw, source, received_ts)
    except InvalidEvent as exc:
        return Outcome(dead_letter=dead_letter(source, str(exc), raw, received_ts, exc.reason))
    except Exception as exc:  # a bug must cost one record, not the worker
        log.exception("unexpected error on %s", source)
        msg = (
            f"internal error while processing this {topic} record ({type(exc).__name__}: {exc}); "
            "the worker skipped it — please report it with this record."
        )
        return Outcome(dead_letter=dead_letter(source, msg, raw, received_ts, "internal_error"))


def _route(
    monitors: Monitors, topic: str, raw: bytes | None, source: SourceRef, received_ts: float
) -> Outcome:
    if raw is None:
        raise InvalidEvent(
            f"{topic}: record has no value (a tombstone); send a JSON object.", "no_value"
        )
    if len(raw) > MAX_RECORD_BYTES:
        raise InvalidEvent(
            f"{topic}: record is {len(raw)} bytes, over the {MAX_RECORD_BYTES} byte limit; "
            "send features and identifiers, not payloads.",
            "too_large",
        )
    ev = _PARSERS[topic](raw)
    if received_ts > 0 and ev.ts > received_ts + MAX_FUTURE_S:
        raise InvalidEvent(
            f"{topic}: field 'ts' ({ev.ts:.0f}) is {(ev.ts - received_ts) / 86400:.1f} days after "
            "Kafka received the record; send seconds since the Unix epoch (UTC), not milliseconds.",
            "future_timestamp",
        )
    mon = monitors.get(ev.model_id)
    if not mon.accept(source):
        return Outcome(model_id=mon.model_id, redelivered=True)
    emitted = _HANDLERS[topic](mon, ev, source)
    dl = _mismatch_letter(mon.take_mismatches(), source, raw, received_ts)
    if isinstance(emitted, DeploymentEvent):
        return Outcome(model_id=mon.model_id, deployments=(emitted,), dead_letter=dl)
    requests = (emitted,) if emitted else ()
    return Outcome(model_id=mon.model_id, requests=requests, dead_letter=dl)


def _mismatch_letter(
    found: list[str], source: SourceRef, raw: bytes, received_ts: float
) -> DeadLetter | None:
    """One dead letter for the labels this record made the monitor refuse (usually one).

    The record itself was applied (its label consumed the prediction it answers); the letter
    says which pair could not be scored and why. It comes with the record's other outcomes.
    """
    if not found:
        return None
    more = f" (and {len(found) - 1} more labels like it)" if len(found) > 1 else ""
    return dead_letter(source, found[0] + more, raw, received_ts, "label_type_mismatch")


_PARSERS: Final[dict[str, Callable[[bytes], Any]]] = {
    "predictions": parse_prediction,
    "labels": parse_label,
    "metrics": parse_metric,
    "deployments": parse_deployment,
    "retrain-results": parse_retrain_result,
}
_HANDLERS: Final[dict[str, Callable[[ModelMonitor, Any, SourceRef], Any]]] = {
    "predictions": lambda m, ev, src: m.on_prediction(ev, src),
    "labels": lambda m, ev, src: m.on_label(ev, src),
    "metrics": lambda m, ev, src: m.on_metric(ev, src),
    "deployments": lambda m, ev, src: m.on_deployment(ev),
    "retrain-results": lambda m, ev, src: m.on_result(ev),
}
