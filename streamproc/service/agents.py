"""faust agents: decode, call the core, encode, send.

- ``drift``: predictions, labels, metrics, deployments and retrain results in batches; each
  record goes through :func:`streamproc.core.router.route`; retrain requests and dead letters out;
  each touched model's monitor snapshot is written to the ``monitors`` table once per batch.
- ``retrainer``: retrain requests in; each is admitted by the model's ledger (handled once,
  one in flight), trained and gated off the event loop, and its result and deployment published.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import orjson

from streamproc.core.events import (
    InvalidEvent,
    RetrainRequest,
    SourceRef,
    dead_letter,
    encode,
    parse_retrain_request,
)
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import load_policy
from streamproc.core.registry import FileRegistry
from streamproc.core.retrain import RetrainLedger, retrain
from streamproc.core.router import Monitors, route
from streamproc.service.app import Wiring

log = logging.getLogger(__name__)

BATCH_MAX = 2000
BATCH_WITHIN_S = 0.2


def source_of(event: Any, logical: str | None = None) -> SourceRef:
    msg = event.message
    return SourceRef(logical or msg.topic, msg.partition, msg.offset)


async def send_acked(topic: Any, key: str | bytes | None, value: bytes) -> None:
    """Send and wait for the broker's ack: rare, decisive records must not sit in a buffer."""
    k = key.encode() if isinstance(key, str) else key
    fut = await topic.send(key=k, value=value)
    await fut


def install(w: Wiring) -> None:
    """Attach the agents to the app."""
    settings = w.settings
    book = load_policy(settings.policy_file)
    registry = FileRegistry(settings.registry_dir)
    prefix = settings.topic_prefix
    logical_of = {settings.topic(n): n for n in ("predictions", "labels", "metrics")}
    logical_of |= {settings.topic(n): n for n in ("deployments", "retrain-results")}

    def load_monitor(model_id: str) -> bytes | None:
        return w.monitors.get(model_id)

    monitors = Monitors(book, load=load_monitor, window=settings.training_window)

    @w.app.agent(w.monitored, name="drift")
    async def drift(stream: Any) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            # State lives in the table between batches; a rebalance may have moved it.
            monitors.forget()
            partition_of: dict[str, int] = {}
            for event in events:
                msg = event.message
                logical = logical_of.get(msg.topic, msg.topic.removeprefix(prefix))
                src = SourceRef(logical, msg.partition, msg.offset)
                out = route(monitors, logical, event.value, src, msg.timestamp)
                if out.dead_letter is not None:
                    log.warning("dead letter from %s: %s", src, out.dead_letter.error)
                    await w.dead_letters.send(key=msg.key, value=encode(out.dead_letter))
                    continue
                if out.model_id is not None:
                    partition_of[out.model_id] = msg.partition
                for req in out.requests:
                    log.info(
                        "model %s: retrain requested (%s)",
                        req.model_id,
                        ", ".join(
                            f"{r.signal} {r.value:.4g} vs {r.threshold:.4g}" for r in req.reasons
                        ),
                    )
                    await send_acked(w.requests, req.model_id, encode(req))
            for model_id, snapshot in monitors.drain_dirty().items():
                w.monitors.put(model_id, snapshot, partition_of[model_id])

    @w.app.agent(w.requests, name="retrainer")
    async def retrainer(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            src = source_of(event, "retrain-requests")
            try:
                req = parse_retrain_request(event.value)
            except InvalidEvent as exc:
                dl = dead_letter(src, str(exc), event.value, msg.timestamp)
                await w.dead_letters.send(key=msg.key, value=encode(dl))
                continue
            await handle_request(w, registry, req, msg.partition)

    w.app.retrainer = retrainer  # type: ignore[attr-defined]
    w.app.drift = drift  # type: ignore[attr-defined]


async def handle_request(w: Wiring, registry: FileRegistry, req: RetrainRequest, part: int) -> None:
    """Admit one request through the model's ledger and run it once."""
    mid = req.model_id
    saved = w.retrains.get(mid)
    ledger = RetrainLedger.from_state(orjson.loads(saved)) if saved else RetrainLedger()
    admission = ledger.admit(req.request_id)
    if admission in ("duplicate", "coalesce"):
        log.info("model %s: request %s is a %s; not retraining", mid, req.request_id, admission)
        w.retrains.put(mid, orjson.dumps(ledger.state()), part)
        return
    # Persist "in flight" before the work: a crash now resumes this request, never loses it.
    w.retrains.put(mid, orjson.dumps(ledger.state()), part)
    snapshot = w.monitors.get(mid)
    mon = ModelMonitor.restore(snapshot) if snapshot else None
    examples: Sequence[Any] = mon.training_examples() if mon else []
    deployed = mon.version if mon else req.model_version
    log.info("model %s: retraining for %s on %d examples", mid, req.request_id, len(examples))
    loop = asyncio.get_running_loop()
    outcome = await loop.run_in_executor(
        None, retrain, req, examples, deployed, registry, time.time(), w.settings.gate_margin
    )
    await send_acked(w.results, mid, encode(outcome.result))
    if outcome.deployment is not None:
        log.info("model %s: deploying %s", mid, outcome.deployment.version)
        await send_acked(w.deployments, mid, encode(outcome.deployment))
    merged = ledger.finish(req.request_id)
    if merged:
        log.info("model %s: coalesced %s into %s", mid, merged, req.request_id)
    w.retrains.put(mid, orjson.dumps(ledger.state()), part)
