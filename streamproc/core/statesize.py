"""A model's snapshot within a byte limit: shrink it, degrade it, never fail the write.

The worker saves each model's snapshot as one changelog record, which Kafka refuses above the
topic's ``max.message.bytes`` (a refused write used to stop the worker, and it crash-looped on
restart). The policy bounds the big parts (label-join buffer, training window) in bytes; this is
the last guard for what the policy's bounds did not foresee (thousands of features with large
detector states, say). In order, until the snapshot fits:

1. evict the oldest waiting predictions/labels and training examples, as many bytes as the
   excess (counted: ``evicted_for_bytes`` of the join, ``window_evicted_for_bytes``);
2. save the snapshot without the detectors' state (the live monitor keeps its detectors; a
   restart starts them afresh) — counted as ``snapshot_without_detectors``;
3. give up this write (the previous snapshot stays; counted as ``snapshot_too_large``).

Each step logs a warning that says what was lost and what to change.

Examples
--------
>>> from streamproc.core.monitor import ModelMonitor
>>> from streamproc.core.events import PredictionEvent
>>> mon = ModelMonitor("wide")
>>> for i in range(50):
...     features = {f"f{k}": k * 0.5 for k in range(100)}
...     _ = mon.on_prediction(PredictionEvent(f"e{i}", "wide", "v1", float(i), 1, features), None)
>>> len(mon.snapshot()) > 60_000
True
>>> data = fit_snapshot(mon, 60_000)
>>> data is not None and len(data) <= 60_000, mon.join.counts["evicted_for_bytes"] > 0
(True, True)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from streamproc.core.monitor import ModelMonitor

__all__ = ["fit_snapshot"]

log = logging.getLogger(__name__)


def fit_snapshot(mon: ModelMonitor, max_bytes: int) -> bytes | None:
    """``mon``'s snapshot in at most ``max_bytes``, after the steps above; None if impossible.

    Step 1 changes ``mon`` (its oldest buffered data is gone, as if evicted by the policy).
    """
    data = mon.snapshot()
    if len(data) <= max_bytes:
        return data
    size = len(data)
    for _ in range(16):  # sizes are estimates: a few rounds converge
        excess = len(data) - max_bytes
        if excess <= 0:
            break
        join, window = mon.join, mon.examples
        if join.nbytes == 0 and window.nbytes == 0:
            break
        if join.nbytes >= window.nbytes:
            join.shrink_to(max(join.nbytes - excess, 0))
        else:
            window.shrink_to(max(window.nbytes - excess, 0))
        data = mon.snapshot()
    if len(data) <= max_bytes:
        log.warning(
            "model %s: snapshot of %d bytes over the %d byte limit: oldest waiting predictions "
            "and training examples evicted to fit; lower join.max_bytes and "
            "training_window_bytes in the policy",
            mon.model_id,
            size,
            max_bytes,
        )
        return data
    state = orjson.loads(data)
    state["detectors"] = {}
    data = orjson.dumps(state)
    if len(data) <= max_bytes:
        mon.counts["snapshot_without_detectors"] = (
            mon.counts.get("snapshot_without_detectors", 0) + 1
        )
        log.warning(
            "model %s: detector state too large to save (%d bytes over the %d byte limit even "
            "without buffered data): saved without it, so a restart starts its detectors "
            "afresh; watch fewer features (drift.features) or use a smaller detector",
            mon.model_id,
            size,
            max_bytes,
        )
        return data
    mon.counts["snapshot_too_large"] = mon.counts.get("snapshot_too_large", 0) + 1
    log.error(
        "model %s: snapshot is %d bytes even without buffered data and detectors, over the %d "
        "byte limit; not saved (a restart resumes from the previous one); report this",
        mon.model_id,
        len(data),
        max_bytes,
    )
    return None
