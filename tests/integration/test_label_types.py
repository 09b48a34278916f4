"""Label types on a real worker: numeric strings are scored, mismatches are counted dead letters."""

from __future__ import annotations

import urllib.request
from typing import Any

import orjson
import pytest

from streamproc.devkit.harness import as_json, produce

pytestmark = pytest.mark.integration

MODEL = "churn"
NOW = 1_790_000_000.0


def metric_value(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{want}}} not in /metrics:\n{text[:3000]}")


def test_string_labels_are_scored_and_mismatches_are_counted_dead_letters(stack: Any) -> None:
    worker = stack.start_worker()
    records = []
    for i in range(400):
        y = i % 2
        pred = {"event_id": f"e{i}", "model_id": MODEL, "model_version": "v1", "ts": NOW + i,
                "prediction": y if i % 20 else 1 - y, "features": {"x": float(i % 7)}}  # fmt: skip
        label = "n/a" if i in (5, 77) else str(y)  # numeric strings, and two that are not
        pair = [(stack.topic("predictions"), MODEL, as_json(pred)),
                (stack.topic("labels"), MODEL,
                 as_json({"event_id": f"e{i}", "model_id": MODEL, "ts": NOW + i,
                          "label": label}))]  # fmt: skip
        # e77's label is sent first: whichever record completes the pair, the letter names
        # the label (the two topics are read in either order anyway).
        records.extend(reversed(pair) if i == 77 else pair)
    reader = stack.reader("dead-letters")
    produce(stack.bootstrap, records)
    stack.wait_processed(timeout=120)
    reader.settle(quiet_s=1.5)
    letters = [r.json() for r in reader.records]
    assert [d["reason"] for d in letters] == ["label_type_mismatch"] * 2
    assert all("'n/a' (a string) cannot be compared" in d["error"] for d in letters)
    assert {d["source"]["topic"] for d in letters} == {"labels"}

    port = worker.settings.web_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    labels = {"topic": "labels", "reason": "label_type_mismatch"}
    assert metric_value(text, "streamproc_dead_letters_total", **labels) == 2
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models/{MODEL}", timeout=10) as r:
        detail = orjson.loads(r.read())
    error = next(s for s in detail["signals"] if s["signal"] == "error")
    assert error["n"] == 398  # every comparable label scored once, the two mismatches never
