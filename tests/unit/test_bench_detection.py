"""The detection benchmark runs end to end in quick mode and writes the rows it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "detection.py"
KEYS = {
    "method",
    "stream",
    "detection_rate",
    "mean_delay",
    "p90_delay",
    "false_alarms_per_million",
    "delay_ratio",
    "us_per_event",
}
STREAMS = {
    "mean_abrupt_0.25",
    "mean_abrupt_0.5",
    "mean_abrupt_1.0",
    "mean_gradual_0.25",
    "mean_gradual_0.5",
    "mean_gradual_1.0",
    "variance_1_to_2",
    "error_10_to_15",
    "error_10_to_20",
    "categorical_shift",
    "stationary_numeric",
    "stationary_error",
    "stationary_categorical",
}


def test_quick_benchmark_writes_the_promised_rows(tmp_path: Path) -> None:
    out = tmp_path / "detection.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--runs", "2", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "QUICK" in proc.stdout

    rows = json.loads(out.read_text(encoding="utf-8"))
    assert isinstance(rows, list) and rows
    for row in rows:
        assert isinstance(row, dict) and set(row) == KEYS, row
        rate = row["detection_rate"]
        assert rate is None or 0.0 <= rate <= 1.0, row
        for key in ("mean_delay", "p90_delay", "false_alarms_per_million", "us_per_event"):
            assert row[key] is None or row[key] >= 0, row
        if row["stream"].startswith("stationary_"):
            assert rate is None and row["false_alarms_per_million"] is not None, row
        else:
            assert rate is not None, row

    assert {r["stream"] for r in rows} == STREAMS
    methods = {r["method"] for r in rows}
    assert "default" in methods and "seed_threshold" in methods
    assert any(m.startswith("river_") for m in methods)
    for method in ("default", "seed_threshold"):  # these cover every stream
        assert {r["stream"] for r in rows if r["method"] == method} == STREAMS

    by_key = {(r["method"], r["stream"]): r for r in rows}
    assert len(by_key) == len(rows)  # one row per (method, stream)
    for stream in ("mean_abrupt_1.0", "error_10_to_20"):
        row = by_key["default", stream]
        assert row["detection_rate"] == 1.0, row
        assert row["mean_delay"] is not None and row["mean_delay"] > 0, row
