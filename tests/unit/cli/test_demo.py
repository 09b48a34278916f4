"""The demo's account of the worker's decisions: what fired, what the gate measured, a refit."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streamproc.cli import demo
from streamproc.config import Settings
from streamproc.devkit.harness import Record


class Topics:
    """Stands for the demo's TopicReader: records already read, by topic."""

    def __init__(self, records: dict[str, list[dict[str, Any]]]) -> None:
        self.records = records

    def settle(self, quiet_s: float = 2.0, timeout: float = 30.0) -> None:
        pass

    def of(self, topic: str) -> list[Record]:
        return [
            Record(topic, 0, i, b"sim", orjson.dumps(v))
            for i, v in enumerate(self.records.get(topic, []))
        ]


def test_each_decision_says_what_fired_what_the_gate_measured_and_what_a_refit_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = Settings(topic_prefix="d-")
    fired = {"signal": "error", "detector": "cusum", "value": 76.85, "threshold": 13.82, "n": 10050}
    refit = {"signal": "refit", "detector": "examples", "value": 500, "threshold": 500, "n": 500}
    gate = {
        "candidate_error": 0.0,
        "current_error": 0.4737,
        "holdout": 38,
        "gate": "candidate 0 <= 0.47",
    }
    m = {"model_id": "sim"}
    reader = Topics({
        "d-retrain-requests": [
            {**m, "request_id": "rr-1", "model_version": "v0", "ts": 1, "reasons": [fired]},
            {**m, "request_id": "rr-2", "model_version": "v-a", "ts": 2, "reasons": [refit]},
            {**m, "request_id": "rr-3", "model_version": "v-b", "ts": 3, "reasons": [fired]},
        ],
        "d-retrain-results": [
            {**m, "request_id": "rr-1", "status": "succeeded", "ts": 1, "metrics": gate},
            {**m, "request_id": "rr-2", "status": "failed", "ts": 2,
             "error": "trainer command exited with 3"},
        ],
        "d-deployments": [
            {"deployment_id": "dep-1", "request_id": "rr-1", "model_id": "sim", "version": "v-a",
             "previous_version": "v0", "action": "promote", "ts": 1},
        ],
    })  # fmt: skip
    demo._decisions(s, reader)  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert "3 retrain requests" in out
    assert "error (cusum): statistic 76.85 reached its threshold 13.82 after 10050 samples" in out
    assert "holdout error of the candidate 0.000 vs the deployed model 0.474 on 38" in out
    assert "deployed v-a (replacing v0)" in out
    assert "a refit:" in out and "answered 500 labels of its own" in out
    assert (
        "failed (trainer command exited with 3); gate: holdout error of the candidate not measured"
        in out
    )
    assert "no result yet" in out  # rr-3
