"""The closed-loop benchmark runs offline in quick mode and writes the rows it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from streamproc.sim.loop import SCHEDULES, STRATEGIES

BENCH = Path(__file__).resolve().parents[3] / "bench" / "closed_loop.py"
COMMON = {"strategy", "stream", "kind", "retrains", "stationary_retrains", "late_retrains",
          "mean_delay_events", "change_point_in_range"}  # fmt: skip


def test_every_world_has_a_documented_kind() -> None:
    kinds = {name: s.kind for name, s in SCHEDULES.items()}
    assert set(kinds.values()) == {"abrupt", "gradual", "feature_shift", "stationary"}
    assert kinds["hyperplane"] == "gradual" and kinds["sea_shift"] == "feature_shift"
    assert SCHEDULES["stationary"].length == 100_000 and not SCHEDULES["stationary"].drifts
    assert {n for n, s in SCHEDULES.items() if s.task == "regression"} == {"friedman"}
    for name in ("sea_noise", "mixed", "rbf", "agrawal", "friedman"):
        assert kinds[name] == "abrupt" and SCHEDULES[name].drifts


def test_quick_benchmark_writes_the_promised_rows(tmp_path: Path) -> None:
    out = tmp_path / "closed_loop.json"
    worlds = "friedman,stagger"
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--no-broker", "--worlds", worlds,
         "--json", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert {(r["stream"], r["strategy"]) for r in rows} == {
        (w, s) for w in worlds.split(",") for s in STRATEGIES
    }
    for row in rows:
        score = {"mae"} if row["stream"] == "friedman" else {"accuracy"}
        assert set(row) == COMMON | score, row
        assert row["kind"] == "abrupt"
        assert row["stationary_retrains"] >= 0
    by = {(r["strategy"], r["stream"]): r for r in rows}
    # 12k quick events: stagger drifts once at 10k; periodic retrains every 2000 events.
    assert by["periodic", "stagger"]["retrains"] == 5
    assert by["periodic", "stagger"]["stationary_retrains"] == 4  # 2k..8k; 10k is the onset
    assert by["never", "friedman"]["retrains"] == 0
    assert by["default", "stagger"]["change_point_in_range"] == 1.0
    assert by["default", "stagger"]["accuracy"] > by["never", "stagger"]["accuracy"]


def test_unknown_world_is_refused_with_the_choices() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--no-broker", "--worlds", "atlantis"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "unknown worlds ['atlantis']" in proc.stderr and "stagger" in proc.stderr
