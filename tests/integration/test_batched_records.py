"""Batched records on a real broker: every event of a batch is applied, a bad event in a batch is
one dead letter with its index, a malformed batch is one dead letter; the SDK sends batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc.client import LabelLogger, PredictionLogger
from streamproc.core.batches import columns, is_batch
from streamproc.devkit.harness import TopicReader, as_json, produce

pytestmark = pytest.mark.integration

NOW = 1_790_000_000.0
N_SDK = 3000  # events the SDK sends for model "sdk" (predictions and labels each)


def monitor_counts(stack: Any) -> dict[str, dict[str, int]]:
    """Per model: its monitor's counts and its join's counts (prefixed join_), as checkpointed."""
    snaps = TopicReader(stack.bootstrap, [f"{stack.group_id}-monitors-changelog"])
    try:
        snaps.read_to_end()  # acked before the offsets wait_processed saw were committed
        snapshots = [orjson.loads(r.value) for r in snaps.records if r.value]
        latest = {s["model_id"]: s for s in snapshots}  # the last one of each model
    finally:
        snaps.close()
    return {
        mid: {**s["counts"], **{f"join_{k}": v for k, v in s["join"]["counts"].items()}}
        for mid, s in latest.items()
    }


def test_batched_records_are_applied_event_by_event_with_bad_events_dead_lettered(
    stack: Any,
) -> None:
    stack.start_worker()
    preds = PredictionLogger(stack.bootstrap, stack.settings.topic_prefix, batch_events=500)
    labels = LabelLogger(stack.bootstrap, stack.settings.topic_prefix, batch_events=500)
    try:
        # Ground truth comes after its predictions, 1,000 at a time: within the join's
        # default bounds (max_pending 2,000 predictions waiting, max_early 2,000 labels).
        for chunk in range(0, N_SDK, 1000):
            ids = {
                i: preds.log("sdk", "v1", {"x": i % 7, "c": "ab"[i % 2]}, i % 2, ts=NOW + i)
                for i in range(chunk, chunk + 1000)
            }
            assert preds.flush(60)
            stack.wait_processed(timeout=120)
            for i, eid in ids.items():
                labels.log("sdk", eid, i % 2, ts=NOW + i + 1)
            assert labels.flush(60)
        assert (preds.sent, preds.failed, preds.dropped) == (N_SDK, 0, 0)
        assert preds.records <= N_SDK // 500 + 10  # batched, not one record per event
    finally:
        preds.close(10)
        labels.close(10)

    fleet = {  # three models in one record, keyed by the fleet; event 2 is bad
        "model_id": ["f0", "f1", "f2", "f0", "f1", "f2"],
        "model_version": "v1",
        "event_id": [f"b{i}" for i in range(6)],
        "ts": [NOW, NOW + 1, "noon", NOW + 3, NOW + 4, NOW + 5],
        "prediction": [1, 0, 1, 0, 1, 0],
        "features": {"x": [0.1, None, 0.3, 0.4, 0.5, 0.6]},
    }
    fleet_labels = {
        "model_id": ["f0", "f1", "f2", "f0", "f1", "f2"],
        "event_id": [f"b{i}" for i in range(6)],
        "ts": [NOW + 10] * 6,
        "label": [1, 1, 1, 1, 1, 1],
    }
    malformed = {**fleet, "event_id": ["x0", "x1"]}  # arrays of different lengths
    reader = stack.reader("dead-letters", "predictions")
    produce(
        stack.bootstrap,
        [
            (stack.topic("predictions"), "fleet", as_json(fleet)),
            (stack.topic("labels"), "fleet", as_json(fleet_labels)),
            (stack.topic("predictions"), "fleet", as_json(malformed)),
        ],
    )
    stack.wait_processed(timeout=120)
    reader.read_to_end()
    reader.settle(quiet_s=1.5)

    on_wire = [r.json() for r in reader.of(stack.topic("predictions")) if r.key == b"sdk"]
    assert all(is_batch(v) for v in on_wire) and len(on_wire) < N_SDK // 100

    letters = [r.json() for r in reader.of(stack.topic("dead-letters"))]
    assert len(letters) == 2, letters
    bad_event = next(d for d in letters if d["source"].get("index") is not None)
    assert bad_event["source"]["index"] == 2
    assert bad_event["error"].startswith("event 2 of the batch: prediction: field 'ts'")
    assert orjson.loads(bad_event["raw"])["event_id"] == "b2"  # the event alone, to resend
    shape = next(d for d in letters if d["source"].get("index") is None)
    assert "field 'ts' has 6 values but 'event_id' has 2" in shape["error"]

    counts = monitor_counts(stack)
    sdk = counts["sdk"]
    assert sdk["predictions"] == N_SDK and sdk["labels"] == N_SDK
    assert sdk["join_joined"] == N_SDK and sdk.get("redelivered", 0) == 0, sdk
    assert counts["f0"]["predictions"] == 2 and counts["f1"]["predictions"] == 2
    assert counts["f2"]["predictions"] == 1  # its event 2 was the bad one
    assert [counts[m]["join_joined"] for m in ("f0", "f1", "f2")] == [2, 2, 1]
    assert stack.workers[0].proc.poll() is None


def batched_rounds(
    rounds: list[list[tuple[str, str, bytes]]], size: int = 25
) -> list[list[tuple[str, str, bytes]]]:
    """The same rounds with each model's predictions and labels in batched records of ``size``."""
    out = []
    for records in rounds:
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        singles = []
        for topic, key, raw in records:
            if topic.endswith("metrics"):
                singles.append((topic, key, raw))
            else:
                groups.setdefault((topic, key), []).append(orjson.loads(raw))
        batches = []
        for (topic, key), events in groups.items():
            kind = "prediction" if topic.endswith("predictions") else "label"
            for i in range(0, len(events), size):
                batches.append((topic, key, as_json(columns(kind, events[i : i + size]))))
        out.append(batches + singles)
    return out


def test_killing_a_worker_mid_batches_changes_nothing(
    kafka: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """test_faults' crash scenario on batched records: a batch redelivered to the survivor is
    not applied twice, and no event of a batch is taken for a redelivery."""
    import test_faults as faults  # same directory: its stack and traffic

    calm = faults.run_stack(kafka, tmp_path / "calm", "bcalm-", kill_after_round=None)
    single = faults.traffic
    monkeypatch.setattr(faults, "traffic", lambda prefix: batched_rounds(single(prefix)))
    crash = faults.run_stack(kafka, tmp_path / "crash", "bcrash-", kill_after_round=1)
    assert crash["sent"] < calm["sent"] / 10  # batched records did go on the wire
    assert crash["requests"] == calm["requests"]
    assert len(crash["requests"]) == 2 * len(faults.MODELS)
    versions = [d["version"] for d in crash["deployments"]]
    assert len(versions) == len(set(versions)) == 2 * len(faults.MODELS)
    per_topic = 4 * len(faults.MODELS) * 100
    expected = {"predictions": per_topic, "labels": per_topic, "metrics": 2 * len(faults.MODELS)}
    assert crash["applied"] == expected == calm["applied"]
