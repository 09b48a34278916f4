"""A wide model does not stop the worker (issue 12 item 2).

300 numeric features, 2,000 predictions whose labels have not arrived: a 12.5 MB snapshot, which
Kafka refused (MessageSizeTooLargeError), and the worker crash-looped. Here the policy allows a
20 MB label-join buffer, more than a changelog record takes (8 MiB), so the last guard has to
shrink the snapshot; the worker must commit, stay up, go on deciding, and restart from it.
"""

from __future__ import annotations

import json
import random
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from streamproc.devkit.harness import as_json, produce

pytestmark = pytest.mark.integration


def wide_traffic(stack: Any, n: int = 2000, features: int = 300) -> list[tuple[str, str, bytes]]:
    rng = random.Random(11)
    out = []
    for i in range(n):
        pred = {
            "event_id": f"w-{i}",
            "model_id": "wide",
            "model_version": "v1",
            "ts": 1_000.0 + i,
            "features": {f"feature_{k:03d}": rng.gauss(0.0, 1.0) for k in range(features)},
            "prediction": 0,
        }
        out.append((stack.topic("predictions"), "wide", as_json(pred)))
    return out


def metric(stack: Any, ts: float, value: float) -> list[tuple[str, str, bytes]]:
    m = {"model_id": "wide", "ts": ts, "name": "drift", "value": value, "model_version": "v1"}
    return [(stack.topic("metrics"), "wide", as_json(m))]


def model_counts(port: int, metrics: int) -> dict[str, int]:
    """The model's counters once the worker's board has applied ``metrics`` metric events."""
    deadline = time.monotonic() + 30
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models/wide", timeout=10) as r:
            counts = json.loads(r.read())["counts"]
        if counts.get("metrics", 0) >= metrics:
            break
        time.sleep(0.3)
    return counts


def test_a_wide_model_over_the_record_limit_does_not_stop_the_worker(
    stack: Any, tmp_path: Path
) -> None:
    policy = tmp_path / "wide.toml"
    policy.write_text("[default]\njoin = { max_bytes = 20000000 }\n")
    worker = stack.start_worker(policy_file=str(policy))
    requests = stack.reader("retrain-requests")
    produce(stack.bootstrap, wide_traffic(stack))
    # Offsets are committed only after the checkpoint's state write was acked.
    stack.wait_processed("predictions", timeout=180)
    produce(stack.bootstrap, metric(stack, 5_000.0, 0.5))
    requests.wait_for(lambda r: len(r.records) == 1, timeout=60, what="the metric's request")
    assert worker.proc is not None and worker.proc.poll() is None, worker.tail()
    counts = model_counts(worker.settings.web_port, metrics=1)
    assert counts["predictions"] == 2000
    assert counts["evicted_for_bytes"] > 0  # shrunk to fit the changelog record
    url = f"http://127.0.0.1:{worker.settings.web_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        exposition = r.read().decode()
    gauge = 'streamproc_state_evicted_for_bytes{model="wide",part="join"} '
    assert float(exposition.split(gauge)[1].split()[0]) == counts["evicted_for_bytes"]
    log = worker.log_path.read_text(errors="replace")
    assert "over the 8323072 byte limit" in log
    assert "MessageSizeTooLarge" not in log

    # A restart restores the saved (shrunk) snapshot and goes on.
    worker.stop()
    again = stack.start_worker(policy_file=str(policy))
    produce(stack.bootstrap, metric(stack, 5_001.0, 0.6))
    requests.wait_for(lambda r: len(r.records) == 2, timeout=60, what="a request after restart")
    restored = model_counts(again.settings.web_port, metrics=2)
    assert restored["predictions"] == 2000  # the state came back from the changelog
    assert again.proc is not None and again.proc.poll() is None, again.tail()
