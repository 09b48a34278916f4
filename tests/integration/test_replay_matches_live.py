"""The same recorded traffic through the live worker and through offline replay: same decisions."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc.devkit.harness import as_json, produce

pytestmark = pytest.mark.integration


def traffic(stack: Any) -> list[tuple[str, str, bytes]]:
    """Three models: an input that shifts, a metric over its threshold, and a quiet one."""
    rng = random.Random(5)
    out = []
    for i in range(2400):
        for model, shift in (("shifting", 1.0 if i >= 1500 else 0.0), ("quiet", 0.0)):
            pred = {
                "event_id": f"{model}-{i}",
                "model_id": model,
                "model_version": "v1",
                "ts": 1_000.0 + i,
                "features": {"amount": rng.gauss(shift, 1.0), "country": rng.choice("ab")},
                "prediction": rng.random() < 0.5,
            }
            out.append((stack.topic("predictions"), model, as_json(pred)))
    for k, v in enumerate((0.02, 0.3)):
        metric = {"model_id": "reported", "ts": 1_000.0 + k, "name": "drift", "value": v}
        out.append((stack.topic("metrics"), "reported", as_json(metric)))
    out.append((stack.topic("metrics"), "reported", b"{not json"))
    return out


def comparable(request: dict[str, Any]) -> dict[str, Any]:
    """A request without where it was read from (offsets differ between Kafka and a file)."""
    return {k: v for k, v in request.items() if k != "source"}


def test_live_worker_and_replay_emit_the_same_retrain_requests(stack: Any, tmp_path: Path) -> None:
    stack.start_worker()
    reader = stack.reader("retrain-requests", "dead-letters")
    produce(stack.bootstrap, traffic(stack))
    stack.wait_processed(timeout=120)
    reader.settle(quiet_s=1.5)
    live = sorted(
        (comparable(r.json()) for r in reader.of(stack.topic("retrain-requests"))),
        key=lambda r: r["request_id"],
    )
    assert {r["model_id"] for r in live} == {"shifting", "reported"}

    recording = tmp_path / "recorded.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "streamproc",
        "record",
        "--broker",
        stack.bootstrap,
        "--prefix",
        stack.settings.topic_prefix,
        "--out",
        str(recording),
        "--idle",
        "3",
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    out = tmp_path / "replayed.jsonl"
    subprocess.run(
        [sys.executable, "-m", "streamproc", "replay", str(recording), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    replayed = sorted(
        (comparable(r["value"]) for r in rows if r["topic"] == "retrain-requests"),
        key=lambda r: r["request_id"],
    )
    assert replayed == live
    shifted = next(r for r in live if r["model_id"] == "shifting")
    assert shifted["reasons"][0]["signal"] == "feature:amount"
    # The record that was not JSON is a dead letter in both, for the same reason.
    live_dead = [r.json()["error"] for r in reader.of(stack.topic("dead-letters"))]
    replay_dead = [r["value"]["error"] for r in rows if r["topic"] == "dead-letters"]
    assert live_dead == replay_dead and len(live_dead) == 1
