"""Hostile input fuzzed into every input topic: the worker never crashes, every bad record is a
dead letter with its reason, good records are unaffected, and the counts reconcile."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from streamproc.devkit.harness import TopicReader, as_json, produce

pytestmark = pytest.mark.integration

NOW = 1_790_000_000.0  # event time of the good records: close to the broker's clock


def good_records(stack: Any, rng: random.Random) -> list[tuple[str, str, bytes]]:
    out = []
    for i in range(300):
        model = f"m{i % 3}"
        pred = {
            "event_id": f"g{i}",
            "model_id": model,
            "model_version": "v1",
            "ts": NOW + i,
            "features": {"x": rng.gauss(0, 1), "c": rng.choice("ab")},
            "prediction": i % 2,
        }
        out.append((stack.topic("predictions"), model, as_json(pred)))
        label = {"event_id": f"g{i}", "model_id": model, "ts": NOW + i + 1, "label": i % 2}
        out.append((stack.topic("labels"), model, as_json(label)))
    for i in range(20):
        metric = {"model_id": "m0", "ts": NOW + i, "name": "latency_ms", "value": 12.5}
        out.append((stack.topic("metrics"), "m0", as_json(metric)))
    return out


def hostile(topic: str) -> list[tuple[bytes, str]]:
    """(raw value, a phrase its dead letter must contain)."""
    base: dict[str, Any] = {
        "predictions": {"event_id": "h", "model_id": "m0", "model_version": "v1", "ts": NOW,
                        "prediction": 1},
        "labels": {"event_id": "h", "model_id": "m0", "ts": NOW, "label": 1},
        "metrics": {"model_id": "m0", "ts": NOW, "name": "drift", "value": 0.01},
    }[topic]  # fmt: skip
    required = next(iter(base))
    deep = b'{"deep": ' + b"[" * 2000 + b"1" + b"]" * 2000 + b"}"
    return [
        (b'{"model_id": "m0", "ts": ', "not valid UTF-8 JSON"),
        (b"\xff\xfe\x00garbage", "not valid UTF-8 JSON"),
        (b"[1, 2, 3]", "not a JSON object"),
        (
            orjson.dumps({k: v for k, v in base.items() if k != required}),
            f"'{required}' is missing",
        ),
        (orjson.dumps({**base, "model_id": 42}), "'model_id' must be a string"),
        (orjson.dumps({**base, "ts": "now"}), "'ts' must be a number"),
        (orjson.dumps(base)[:-1] + b', "ts": NaN}', "not valid UTF-8 JSON"),
        (orjson.dumps(base)[:-1] + b', "ts": Infinity}', "not valid UTF-8 JSON"),
        (orjson.dumps({**base, "ts": NOW * 1000}), "not milliseconds"),  # far in the future
        (orjson.dumps({**base, "pad": "x" * (1024 * 1024 + 10)}), "byte limit"),
        (deep, "not valid UTF-8 JSON"),
    ]


def test_hostile_records_become_dead_letters_and_good_ones_are_all_counted(stack: Any) -> None:
    stack.start_worker()
    rng = random.Random(7)
    good = good_records(stack, rng)
    bad = [(stack.topic(t), "m0", raw, why) for t in ("predictions", "labels", "metrics")
           for raw, why in hostile(t)]  # fmt: skip
    # Interleave: bad records between good ones, duplicates and out-of-order times included.
    mixed: list[tuple[str, str, bytes]] = list(good)
    for rec in bad:
        mixed.insert(rng.randrange(len(mixed) + 1), rec[:3])
    mixed += good[:10]  # duplicates: the same predictions and labels again
    reader = stack.reader("dead-letters")
    produce(stack.bootstrap, mixed)
    stack.wait_processed(timeout=120)
    reader.settle(quiet_s=1.5)
    letters = [r.json() for r in reader.of(stack.topic("dead-letters"))]
    assert len(letters) == len(bad)
    for _topic, _key, _raw, why in bad:
        match = [d for d in letters if why in d["error"]]
        assert match, f"no dead letter says {why!r}"
    assert all(len(d["raw"]) < 2100 for d in letters)  # a 1 MB record is not copied whole
    assert stack.workers[0].proc.poll() is None

    counts: dict[str, int] = {}
    changelog = f"{stack.group_id}-monitors-changelog"
    snaps = TopicReader(stack.bootstrap, [changelog])
    try:
        snaps.settle(quiet_s=1.0)
        latest = {r.key: orjson.loads(r.value) for r in snaps.records}
    finally:
        snaps.close()
    for snap in latest.values():
        for k, v in snap["counts"].items():
            counts[k] = counts.get(k, 0) + v
        for k, v in snap["join"]["counts"].items():
            counts[f"join_{k}"] = counts.get(f"join_{k}", 0) + v
    # Every good record applied once; the duplicates are applied too (new offsets) and show up
    # as duplicate predictions and labels in the join.
    assert counts["predictions"] == 305 and counts["labels"] == 305 and counts["metrics"] == 20
    assert counts["join_joined"] == 300
    assert counts["join_duplicate_predictions"] == 5 and counts["join_duplicate_labels"] == 5
