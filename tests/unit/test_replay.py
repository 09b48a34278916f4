"""Offline replay: the design doc's contract, on the same core as the live agents."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from streamproc.replay import replay, replay_file
from streamproc.scenarios import interactions, rule_model, seed_metrics


def lines(records: list[tuple[str, dict]]) -> list[bytes]:
    return [orjson.dumps({"topic": t, "value": v}) for t, v in records]


def test_seed_table_replays_to_requests_after_steps_3_and_5() -> None:
    out = list(replay(lines([("metrics", m) for m in seed_metrics("m")])))
    assert [(e.topic, e.input_index) for e in out] == [
        ("retrain-requests", 2),
        ("deployments", 2),
        ("retrain-requests", 4),
        ("deployments", 4),
    ]
    first_dep, second_req = out[1].value, out[2].value
    assert second_req["model_version"] == first_dep["version"]


def test_bad_lines_become_dead_letters_with_their_input_index() -> None:
    good = orjson.dumps({"topic": "metrics", "value": seed_metrics("m")[0]})
    src = [
        b"not json",
        b'{"topic": "clicks", "value": {}}',
        good,
        b'{"topic": "labels", "value": {}}',
    ]
    out = list(replay(src))
    assert [(e.topic, e.input_index) for e in out] == [
        ("dead-letters", 0),
        ("dead-letters", 1),
        ("dead-letters", 3),
    ]
    assert "not valid JSON" in out[0].value["error"]
    assert "required field 'event_id' is missing" in out[2].value["error"]


def test_retrain_for_real_trains_gates_and_deploys(tmp_path: Path) -> None:
    initial = ("v1", rule_model("A", flip=0.3))
    records = []
    for x in interactions("m", lambda i: "A", lambda i: initial, 0, 400):
        records += [("predictions", x.prediction), ("labels", x.label)]
    records.append(("metrics", {"model_id": "m", "ts": 2e9, "name": "drift", "value": 0.5}))
    out = list(replay(lines(records), retrain_for_real=True))
    assert [e.topic for e in out] == ["retrain-requests", "retrain-results", "deployments"]
    assert out[1].value["status"] == "succeeded"
    assert out[1].value["metrics"]["candidate_error"] < out[1].value["metrics"]["current_error"]


def test_cli_writes_the_out_file(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(lines([("metrics", m) for m in seed_metrics("m")])) + b"\n")
    policy = tmp_path / "p.toml"
    policy.write_text('[default]\nmetrics = [{ name = "drift", above = 0.01 }]\n')
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "streamproc", "replay", str(src), "--policy", str(policy),
         "--out", str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "retrain-requests\t5" in proc.stdout
    rows = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert [r["input_index"] for r in rows if r["topic"] == "retrain-requests"] == [0, 1, 2, 3, 4]
    assert replay_file(src, None) == {"retrain-requests": 2, "deployments": 2}
