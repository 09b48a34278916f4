"""The drift agent's batch loop: outcomes counted per batch as they were one by one."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from faust.types import TP

from streamproc.core.alignment import SIDES
from streamproc.core.policy import PolicyBook
from streamproc.core.router import Monitors
from streamproc.service import alignment
from streamproc.service.agents import DriftAgent
from streamproc.service.alignment import TopicAlignment
from streamproc.service.metrics import Metrics


async def _sent(*a: Any, **k: Any) -> None:
    return None


def _agent(max_models: int) -> Any:
    """What ``apply_batch`` reads of a drift agent, with real monitors and metrics."""
    metrics = Metrics(max_models=max_models)
    fake: Any = SimpleNamespace(
        w=SimpleNamespace(
            app=SimpleNamespace(
                consumer_generation_id=1, flow_control=SimpleNamespace(is_active=lambda: True)
            ),
            dead_letters=SimpleNamespace(send=_sent),
        ),
        ckpt=SimpleNamespace(hold=lambda e: None, partition_of={}),
        logical_of={},
        prefix="",
        monitors=Monitors(PolicyBook()),
        metrics=metrics,
        board=SimpleNamespace(applied=lambda m, p: None),
        aliases=None,
        request=_sent,
        alignment=TopicAlignment(
            object.__new__(type("Consumer", (), {})), {s: s for s in SIDES}, lead_s=0.0
        ),
    )
    fake.apply = lambda *a: DriftAgent.apply(fake, *a)
    fake._apply_record = lambda *a: DriftAgent._apply_record(fake, *a)
    fake._apply_admitted = lambda *a: DriftAgent._apply_admitted(fake, *a)
    return fake


def _event(topic: str, offset: int, value: dict[str, Any], record_ts: float = 0.0) -> Any:
    msg = SimpleNamespace(topic=topic, partition=0, offset=offset, generation_id=1,
                          timestamp=record_ts, key=b"k", tp=TP(topic, 0),
                          incref=lambda: None, decref=lambda: 0)  # fmt: skip
    return SimpleNamespace(message=msg, value=orjson.dumps(value))


def _prediction(offset: int, model: str, record_ts: float = 0.0) -> Any:
    ev = {"event_id": f"{model}{offset}", "model_id": model, "model_version": "v1", "ts": 1.0,
          "prediction": 1, "features": {}}  # fmt: skip
    return _event("predictions", offset, ev, record_ts)


def _counts(agent: Any) -> dict[tuple[str, str], float]:
    return {
        (s.labels["topic"], s.labels["model"]): s.value
        for s in agent.metrics.events.collect()[0].samples
        if s.name.endswith("_total")
    }


def test_plain_outcomes_are_counted_once_per_batch_with_the_labels_of_first_sight() -> None:
    """max_models=1: model A's prediction comes first, so A keeps the one label of its own, as
    when each outcome was counted in turn; B's label of the wrong type is a dead letter with a
    model, counted at once (found in review: A's label went to B)."""
    agent = _agent(max_models=1)
    batch = [
        _prediction(0, "A"),
        _prediction(1, "A"),
        _prediction(2, "B"),
        _event("labels", 0, {"event_id": "B2", "model_id": "B", "ts": 2.0, "label": "yes"}),
    ]
    asyncio.run(DriftAgent.apply_batch(agent, batch))
    counts = _counts(agent)
    assert counts == {("predictions", "A"): 2.0, ("predictions", "_other"): 1.0,
                      ("labels", "_other"): 1.0}  # fmt: skip
    letters = [s for s in agent.metrics.dead_letters.collect()[0].samples if s.value]
    assert letters and letters[0].labels["reason"] == "label_type_mismatch"


class _Consumer:
    def __init__(self, highwater: dict[TP, int]) -> None:
        self.hw = highwater

    def highwater(self, tp: TP) -> int:
        return self.hw[tp]

    def assignment(self) -> set[TP]:
        return set(self.hw)


def test_a_label_ahead_of_its_predictions_waits_for_them_then_is_applied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Catching up (the predictions have a backlog), a label record later in record time than
    every prediction applied waits; the batch whose predictions pass it applies it."""
    monkeypatch.setattr(alignment, "hold", lambda consumer, partitions: True)  # pauses work
    agent = _agent(max_models=10)
    consumer = _Consumer({TP("predictions", 0): 50, TP("labels", 0): 1})
    agent.alignment = TopicAlignment(consumer, {s: s for s in SIDES}, lead_s=0.0)
    label = _event("labels", 0, {"event_id": "A0", "model_id": "A", "ts": 2.0, "label": 1}, 200.0)
    asyncio.run(DriftAgent.apply_batch(agent, [_prediction(0, "A", 100.0), label]))
    assert _counts(agent) == {("predictions", "A"): 1.0}
    assert agent.alignment.has_waiting()
    asyncio.run(DriftAgent.apply_batch(agent, [_prediction(1, "A", 300.0)]))
    assert _counts(agent) == {("predictions", "A"): 2.0, ("labels", "A"): 1.0}
    assert not agent.alignment.has_waiting()
    assert agent.monitors.live["A"].join.counts["joined"] == 1
