"""The detection benchmark runs end to end in quick mode and writes the rows it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench" / "detection.py"
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
    args = ["--quick", "--runs", "2", "--only", "gaussian", "--json", str(out)]
    proc = subprocess.run(
        [sys.executable, str(BENCH), *args],
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


SHAPES = {
    f"stationary_{s}"
    for s in (
        "lognormal",
        "student_t3",
        "pareto",
        "poisson",
        "rare_spike",
        "integer",
        "offset_1e9",
        "constant",
    )
}
SHIFTS = {"shift_lognormal_scale_x3", "shift_poisson_0.2_to_0.5", "shift_offset_1e9_plus_3"}
TCPD = {
    f"tcpd_{s}"
    for s in (
        "AirlinePassengers",
        "Apple",
        "Bitcoin",
        "BrentSpotPrice",
        "Occupancy",
        "RunLog",
        "UKCoalEmploy",
    )
}


def _bench(tmp_path: Path, *args: str) -> list[dict[str, object]]:
    out = tmp_path / "rows.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", *args, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert isinstance(rows, list) and rows
    return rows


def test_real_shaped_rows(tmp_path: Path) -> None:
    rows = _bench(tmp_path, "--only", "shapes", "--runs", "1", "--stationary", "2000")
    assert {r["stream"] for r in rows} == SHAPES | SHIFTS
    assert {r["method"] for r in rows} == {"default"}
    for row in rows:
        assert set(row) == KEYS, row
        assert row["false_alarms_per_million"] is not None and row["us_per_event"] > 0, row
        if row["stream"] in SHIFTS:
            assert row["detection_rate"] in (0.0, 1.0), row  # one run
            assert (row["mean_delay"] is None) == (row["detection_rate"] == 0.0), row
        else:
            assert row["detection_rate"] is None and row["mean_delay"] is None, row
    # A constant feature has nothing to detect, whatever the detector.
    by_stream = {r["stream"]: r for r in rows}
    assert by_stream["stationary_constant"]["false_alarms_per_million"] == 0.0


def test_tcpd_rows_are_scored_as_tcpd(tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCH.parent))
    import tcpd

    rows = _bench(tmp_path, "--only", "tcpd")
    methods = {"default", "river_adwin", "river_page_hinkley", "never_alarm"}
    assert {(r["method"], r["stream"]) for r in rows} == {(m, s) for m in methods for s in TCPD}
    for row in rows:
        assert set(row) == KEYS | {"f1", "cover"}, row
        assert 0.0 < row["f1"] <= 1.0 and 0.0 < row["cover"] <= 1.0, row
        assert row["detection_rate"] is None and row["mean_delay"] is None, row
    never = {r["stream"]: r for r in rows if r["method"] == "never_alarm"}
    for name in TCPD:
        series = tcpd.load(name.removeprefix("tcpd_"))
        assert never[name]["f1"] == round(tcpd.f1_score(series.annotations, []), 4)
        assert never[name]["cover"] == round(tcpd.cover_score(series.annotations, [], series.n), 4)
        assert never[name]["false_alarms_per_million"] == 0.0
    # The default policy's metric change detector really runs through the monitor: it moves
    # the scores away from the never-alarm baseline on some series.
    default = {r["stream"]: r for r in rows if r["method"] == "default"}
    assert any(default[s]["f1"] != never[s]["f1"] for s in TCPD)
