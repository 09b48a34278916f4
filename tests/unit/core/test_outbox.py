"""A request a monitor made stays in its outbox until confirmed sent: a snapshot that has made
a request can make it again (a worker that died between the snapshot and the request's ack)."""

from __future__ import annotations

from streamproc.core.events import MetricEvent, RetrainRequest, SourceRef
from streamproc.core.monitor import MAX_UNSENT, ModelMonitor
from streamproc.core.router import Monitors, route


def drift(mon: ModelMonitor, ts: float) -> RetrainRequest:
    out = mon.on_metric(MetricEvent("m", ts, "drift", 0.9), None)
    assert isinstance(out, RetrainRequest)
    return out


def test_a_request_stays_in_the_outbox_until_sent_and_survives_a_snapshot() -> None:
    mon = ModelMonitor("m")
    req = drift(mon, 1.0)
    assert mon.unsent_requests() == [req]
    again = ModelMonitor.restore(mon.snapshot())
    assert again.unsent_requests() == [req]  # every field, reasons and evidence included
    again.request_sent(req.request_id)
    assert again.unsent_requests() == []
    assert ModelMonitor.restore(again.snapshot()).unsent_requests() == []


def test_the_outbox_is_bounded_for_callers_that_never_confirm() -> None:
    mon = ModelMonitor("m")
    made = []
    for i in range(MAX_UNSENT + 3):
        made.append(drift(mon, 1000.0 * i))
        mon.trigger.ended_without_deployment(made[-1].request_id)  # a replay's "rejected"
    assert len(made) == MAX_UNSENT + 3
    assert mon.unsent_requests() == made[-MAX_UNSENT:]  # the oldest dropped first


def test_monitors_hand_back_the_unsent_requests_of_a_restored_monitor_once() -> None:
    saved: dict[str, bytes] = {}
    first = Monitors()
    raw = b'{"model_id": "m", "ts": 5, "name": "drift", "value": 0.9}'
    (req,) = route(first, "metrics", raw, SourceRef("metrics", 0, 0), 0.0).requests
    saved["m"] = first.snapshot("m")  # the snapshot saved before the send; then the worker dies
    second = Monitors(load=saved.get)
    out = route(second, "metrics", raw, SourceRef("metrics", 0, 0), 0.0)
    assert out.redelivered and out.requests == ()  # the event is recognised as applied...
    assert second.take_resends() == [req]  # ...and its request is handed back to send again
    assert second.take_resends() == []
    second.dirty.clear()
    second.sent(req)
    assert "m" in second.dirty and second.live["m"].unsent_requests() == []
    third = Monitors(load=lambda mid: second.snapshot(mid))
    third.get("m")
    assert third.take_resends() == []  # confirmed sent: not sent a third time
