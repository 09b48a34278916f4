"""The retrain loop end to end on the real broker, with the worker as a real process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc.devkit.harness import as_json, produce
from streamproc.sim.scenarios import SEED_STEPS, interactions, rule_model, seed_metrics

pytestmark = pytest.mark.integration

MODEL = "fraud-eu"


def labelled(
    stack: Any,
    model: str,
    concept_at: Any,
    count: int,
    start: int = 0,
    flip: float = 0.05,
    seed: int = 1,
) -> None:
    initial = ("v1", rule_model("A", flip=flip))
    batch = list(interactions(model, concept_at, lambda i: initial, start, count, seed=seed))
    # Each prediction then its label, as a server that learns the truth soon would send them:
    # all predictions first would overflow the join's pending limit (2000) and evict the
    # oldest before their labels come, so the error detector would start hundreds late.
    records = []
    for x in batch:
        records.append((stack.topic("predictions"), model, as_json(x.prediction)))
        records.append((stack.topic("labels"), model, as_json(x.label)))
    produce(stack.bootstrap, records)


def of_model(reader: Any, stack: Any, topic: str, model: str = MODEL) -> list[dict[str, Any]]:
    return [r.json() for r in reader.of(stack.topic(topic)) if r.key == model.encode()]


def run_seed_table(stack: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[int]]:
    """Play the seed steps one monitoring interval apart, each after the previous retrain ended."""
    reader = stack.reader("retrain-requests", "deployments", "retrain-results")
    labelled(stack, MODEL, lambda i: "A", 300, flip=0.2)
    stack.wait_processed()
    steps_with_deployment = []
    for step, metric in enumerate(seed_metrics(MODEL), start=1):
        before = len(of_model(reader, stack, "retrain-results"))
        produce(stack.bootstrap, [(stack.topic("metrics"), MODEL, as_json(metric))])
        stack.wait_processed("metrics")
        reader.settle(quiet_s=1.0)
        if len(of_model(reader, stack, "retrain-requests")) > before:
            reader.wait_for(
                lambda r, b=before: len(of_model(r, stack, "retrain-results")) > b,
                timeout=60,
                what=f"the retrain of step {step}",
            )
            reader.wait_for(
                lambda r, b=before: len(of_model(r, stack, "deployments")) > b,
                timeout=30,
                what=f"the deployment of step {step}",
            )
            steps_with_deployment.append(step)
    reader.settle(quiet_s=1.0)
    return (
        of_model(reader, stack, "retrain-requests"),
        of_model(reader, stack, "deployments"),
        steps_with_deployment,
    )


def test_seed_table_retrains_after_steps_3_and_5(stack: Any) -> None:
    stack.start_worker()
    requests, deployments, steps = run_seed_table(stack)
    assert steps == [3, 5]
    assert len(requests) == 2 and len(deployments) == 2
    assert [r["reasons"][0]["value"] for r in requests] == [0.12, 0.15]
    assert all(r["reasons"][0]["signal"] == "metric:drift" for r in requests)
    # Monitoring resumed against the deployed version: the second request names it.
    assert requests[1]["model_version"] == deployments[0]["version"]
    assert deployments[1]["previous_version"] == deployments[0]["version"]


def test_seed_table_with_threshold_001_retrains_after_every_step(
    stack: Any, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[default]\nmetrics = [{ name = "drift", above = 0.01 }]\n')
    stack.start_worker(policy_file=str(policy))
    requests, deployments, steps = run_seed_table(stack)
    assert steps == [1, 2, 3, 4, 5]
    assert len(requests) == len(deployments) == len(SEED_STEPS)
    assert len({d["version"] for d in deployments}) == 5


def test_abrupt_error_rise_triggers_and_stationary_stream_does_not(stack: Any) -> None:
    stack.start_worker()
    reader = stack.reader("retrain-requests")
    labelled(stack, "drifting", lambda i: "A" if i < 1200 else "B", 2400, seed=11)
    labelled(stack, "steady", lambda i: "A", 2400, seed=12)
    stack.wait_processed()
    reader.wait_for(
        lambda r: len(of_model(r, stack, "retrain-requests", "drifting")) >= 1,
        timeout=30,
        what="a retrain request for the drifting model",
    )
    reader.settle(quiet_s=1.0)
    req = of_model(reader, stack, "retrain-requests", "drifting")[0]
    reason = req["reasons"][0]
    assert reason["signal"] == "error" and reason["detector"] == "cusum"
    assert reason["value"] >= reason["threshold"]
    detected_at = req["ts"] - 1_767_225_600.0
    assert 1200 <= detected_at < 1500, detected_at
    assert of_model(reader, stack, "retrain-requests", "steady") == []


def test_bad_records_go_to_dead_letters_and_good_ones_are_processed(stack: Any) -> None:
    stack.start_worker()
    reader = stack.reader("dead-letters", "retrain-requests")
    good = {"model_id": MODEL, "ts": 1.0, "name": "drift", "value": 0.5}
    bad = [
        b'{"model_id": "fraud-eu", "ts": 1, "name": "drift", "value": 0.5',  # malformed JSON
        orjson.dumps({"model_id": MODEL, "ts": 1, "name": "drift"}),  # missing value
        orjson.dumps({"model_id": MODEL, "ts": "yesterday", "name": "drift", "value": 0.5}),
        b'{"model_id": "fraud-eu", "ts": 1, "name": "drift", "value": NaN}',
    ]
    records = [(stack.topic("metrics"), MODEL, as_json(good))]
    records += [(stack.topic("metrics"), MODEL, raw) for raw in bad]
    records += [(stack.topic("metrics"), MODEL, as_json({**good, "ts": 2.0, "name": "auc"}))]
    records += [(stack.topic("metrics"), MODEL, as_json({**good, "ts": 3.0, "value": 0.9}))]
    produce(stack.bootstrap, records)
    reader.wait_for(
        lambda r: len(r.of(stack.topic("dead-letters"))) >= 4, timeout=30, what="four dead letters"
    )
    stack.wait_processed("metrics")
    reader.settle(quiet_s=1.0)
    letters = [r.json() for r in reader.of(stack.topic("dead-letters"))]
    assert len(letters) == 4
    errors = [d["error"] for d in letters]
    assert "not valid UTF-8 JSON" in errors[0]
    assert "required field 'value' is missing" in errors[1]
    assert "field 'ts' must be a number, got a string" in errors[2]
    assert "NaN and Infinity are not JSON" in errors[3]
    assert [d["source"]["offset"] for d in letters] == [1, 2, 3, 4]
    assert all(d["raw"] for d in letters)
    # The good record before the bad ones fired the seed rule; the muted one after it did not
    # start a second retrain while the first is pending.
    requests = of_model(reader, stack, "retrain-requests")
    assert len(requests) == 1 and requests[0]["reasons"][0]["value"] == 0.5


def test_same_retrain_request_twice_deploys_once(stack: Any) -> None:
    stack.start_worker()
    reader = stack.reader("deployments", "retrain-results")
    labelled(stack, MODEL, lambda i: "A", 300, flip=0.3)
    stack.wait_processed()
    request = {
        "request_id": "manual-1",
        "model_id": MODEL,
        "model_version": "v1",
        "ts": 400.0,
        "reasons": [
            {"signal": "manual", "detector": "operator", "value": 1, "threshold": 1, "n": 0}
        ],
    }
    produce(stack.bootstrap, [(stack.topic("retrain-requests"), MODEL, as_json(request))] * 2)
    reader.wait_for(
        lambda r: len(of_model(r, stack, "deployments")) >= 1, timeout=60, what="the deployment"
    )
    stack.wait_processed("retrain-requests")
    reader.settle(quiet_s=1.5)
    assert len(of_model(reader, stack, "retrain-results")) == 1
    deployments = of_model(reader, stack, "deployments")
    assert len(deployments) == 1
    assert deployments[0]["request_id"] == "manual-1"
