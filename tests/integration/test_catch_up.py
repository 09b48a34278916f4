"""A worker catching up on both topics' backlogs loses no label and no prediction to the join.

Records of one topic that carry many events are read as fast as the other topic's records that
carry one, so without record-time alignment one topic ran ahead of the other and the join evicted
past its bounds: early labels past ``join.max_early`` (a live run: 20% and 40% of some models'
labels), or predictions waiting for labels past ``join.max_pending``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from streamproc.devkit.harness import as_json, produce
from streamproc.service.topics import ensure_topics
from tests.integration.test_batched_records import monitor_counts

pytestmark = pytest.mark.integration

NOW = 1_790_000_000.0
CHUNK = 50  # events per chunk; the labels of a chunk are written after the next chunk
CHUNKS = 40
BOUND = 150  # the join's max_early and max_pending: three chunks


def _prediction(i: int) -> dict[str, Any]:
    return {"event_id": f"e{i}", "model_id": "m", "model_version": "v1", "ts": NOW + i,
            "prediction": i % 2, "features": {"x": float(i % 7)}}  # fmt: skip


def _label(i: int) -> dict[str, Any]:
    return {"event_id": f"e{i}", "model_id": "m", "ts": NOW + i + 0.5, "label": i % 2}


def _records(events: list[dict[str, Any]], batched: bool) -> list[bytes]:
    """One columnar record of ``events`` (one model's), or one record per event."""
    if not batched:
        return [as_json(e) for e in events]
    scalar = ("model_id", "model_version")
    batch: dict[str, Any] = {k: v for k, v in events[0].items() if k in scalar}
    for key in events[0].keys() - {*scalar, "features"}:
        batch[key] = [e[key] for e in events]
    if "features" in events[0]:
        batch["features"] = {"x": [e["features"]["x"] for e in events]}
    return [as_json(batch)]


def _backlog(stack: Any, batched: str) -> list[tuple[str, str, bytes, int]]:
    """Records in the order a live system writes them, 10 ms apart: a chunk of predictions,
    then the labels of the chunk before (ground truth comes later); no bound of the join is
    reached so. (Sent at once, records of both topics would share milliseconds.)"""
    out: list[tuple[str, str, bytes, int]] = []
    # A minute ago: record times far in the past would let the broker's retention delete them.
    ms = int((time.time() - 60) * 1000)
    for chunk in range(CHUNKS + 1):
        if chunk < CHUNKS:
            preds = [_prediction(i) for i in range(chunk * CHUNK, (chunk + 1) * CHUNK)]
            for value in _records(preds, batched == "predictions"):
                ms += 10
                out.append((stack.topic("predictions"), "m", value, ms))
        if chunk:
            labels = [_label(i) for i in range((chunk - 1) * CHUNK, chunk * CHUNK)]
            for value in _records(labels, batched == "labels"):
                ms += 10
                out.append((stack.topic("labels"), "m", value, ms))
    return out


@pytest.mark.parametrize("batched", ["labels", "predictions"])
def test_a_worker_catching_up_on_both_topics_joins_every_label(
    stack: Any, tmp_path: Path, batched: str
) -> None:
    """``batched``: the topic whose records carry a chunk each (it is read ahead)."""
    policy = tmp_path / "policy.toml"
    policy.write_text(f"[default]\njoin = {{ max_early = {BOUND}, max_pending = {BOUND} }}\n")
    asyncio.run(ensure_topics(stack.settings, stack.bootstrap))
    produce(stack.bootstrap, _backlog(stack, batched))  # all there before the worker starts
    stack.start_worker(policy_file=str(policy))
    stack.wait_processed(timeout=180)

    counts = monitor_counts(stack)["m"]
    n = CHUNK * CHUNKS
    assert (counts["predictions"], counts["labels"], counts["join_joined"]) == (n, n, n), counts
    assert counts["join_evicted_labels"] == counts["join_evicted_predictions"] == 0, counts
