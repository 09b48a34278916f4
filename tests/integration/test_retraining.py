"""Retraining that never ships a worse model, on the real broker with real worker processes."""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc.devkit.harness import TopicReader, as_json, free_port, produce
from streamproc.sim.scenarios import T0, interactions, rule_model

pytestmark = pytest.mark.integration

TRAINER = Path(__file__).parent / "trainers" / "rule_trainer.py"


def send_traffic(
    stack: Any,
    model: str,
    count: int,
    start: int = 0,
    version: str = "v1",
    flip: float = 0.05,
    seed: int = 1,
) -> None:
    served = (version, rule_model("A", flip=flip, seed=seed))
    batch = list(interactions(model, lambda i: "A", lambda i: served, start, count, seed=seed))
    produce(
        stack.bootstrap,
        [(stack.topic("predictions"), model, as_json(x.prediction)) for x in batch]
        + [(stack.topic("labels"), model, as_json(x.label)) for x in batch],
    )


def manual_request(model: str, rid: str, version: str = "v1") -> dict[str, Any]:
    return {
        "request_id": rid,
        "model_id": model,
        "model_version": version,
        "ts": 1e9,
        "reasons": [
            {"signal": "manual", "detector": "operator", "value": 1, "threshold": 1, "n": 0}
        ],
    }


def ask_retrain(stack: Any, *models_and_ids: tuple[str, str]) -> None:
    """Publish manual retrain requests, as an operator or a pipeline would."""
    produce(
        stack.bootstrap,
        [(stack.topic("retrain-requests"), m, as_json(manual_request(m, rid)))
         for m, rid in models_and_ids],
    )  # fmt: skip


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert check(), f"timed out after {timeout}s: {what}"


def of(reader: TopicReader, stack: Any, topic: str, model: str) -> list[dict[str, Any]]:
    return [r.json() for r in reader.of(stack.topic(topic)) if r.key == model.encode()]


def policy(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return str(path)


def command(mode: str, *extra: str) -> str:
    argv = [sys.executable, str(TRAINER), mode, *extra]
    return json.dumps(argv)


def worker_with_trainer(stack: Any, tmp_path: Path, match: str, argv_toml: str) -> Any:
    """A worker whose policy trains models matching ``match`` with a command trainer."""
    toml = f'[[model]]\nmatch = "{match}"\ntrainer = {{ kind = "command", argv = {argv_toml} }}\n'
    return stack.start_worker(policy_file=policy(tmp_path, toml))


def latest_monitor(stack: Any, model: str) -> dict[str, Any]:
    """The model's monitor snapshot as the worker last wrote it to its changelog topic."""
    changelog = f"{stack.group_id}-monitors-changelog"
    reader = TopicReader(stack.bootstrap, [changelog])
    try:
        reader.settle(quiet_s=1.0)
        values = [r.value for r in reader.records if r.key == json.dumps(model).encode()]
    finally:
        reader.close()
    assert values, f"no snapshot of {model} in {changelog}"
    return orjson.loads(values[-1])


def test_late_and_out_of_order_labels_join_and_orphans_are_counted(stack: Any) -> None:
    stack.start_worker()
    served = ("v1", rule_model("A", flip=0.1))
    batch = list(interactions("late", lambda i: "A", lambda i: served, 0, 300, seed=4))
    preds = [(stack.topic("predictions"), "late", as_json(x.prediction)) for x in batch]
    labels = [(stack.topic("labels"), "late", as_json(x.label)) for x in batch]
    # 50 labels arrive before their predictions, the rest long after and in reverse order, and
    # 20 answer predictions that never existed.
    orphans = [
        (
            stack.topic("labels"),
            "late",
            as_json({"event_id": f"ghost-{i}", "model_id": "late", "ts": T0 + 300, "label": True}),
        )
        for i in range(20)
    ]
    produce(stack.bootstrap, labels[250:] + preds + orphans)
    time.sleep(1.0)
    produce(stack.bootstrap, list(reversed(labels[:250])))
    stack.wait_processed()
    snap = latest_monitor(stack, "late")
    join = snap["join"]
    assert join["counts"]["joined"] == 300
    assert len(join["pending"]) == 0
    assert sorted(join["early"]) == sorted(f"ghost-{i}" for i in range(20))
    assert len(snap["window"]) == 300


def test_bad_candidate_is_rejected_by_the_gate_and_nothing_is_deployed(
    stack: Any, tmp_path: Path
) -> None:
    worker_with_trainer(stack, tmp_path, "gated", command("bad"))
    reader = stack.reader("retrain-results", "deployments")
    send_traffic(stack, "gated", 400, flip=0.05)
    stack.wait_processed()
    ask_retrain(stack, ("gated", "rq-bad"))
    reader.wait_for(lambda r: of(r, stack, "retrain-results", "gated"), 60, "the gate's verdict")
    stack.wait_processed("retrain-requests")
    reader.settle(quiet_s=1.0)
    (result,) = of(reader, stack, "retrain-results", "gated")
    assert result["status"] == "rejected"
    assert result["metrics"]["candidate_error"] > 0.8
    assert result["metrics"]["current_error"] < 0.2
    assert of(reader, stack, "deployments", "gated") == []


def test_failing_command_trainer_gives_failed_result_and_worker_goes_on(
    stack: Any, tmp_path: Path
) -> None:
    worker_with_trainer(stack, tmp_path, "broken-*", command("fail"))
    reader = stack.reader("retrain-results", "deployments")
    send_traffic(stack, "broken-1", 300, flip=0.3)
    send_traffic(stack, "fine-1", 300, flip=0.3)
    stack.wait_processed()
    ask_retrain(stack, ("broken-1", "rq-f"), ("fine-1", "rq-ok"))
    reader.wait_for(lambda r: of(r, stack, "deployments", "fine-1"), 60, "fine-1 deployed")
    reader.wait_for(lambda r: of(r, stack, "retrain-results", "broken-1"), 30, "broken-1 result")
    (result,) = of(reader, stack, "retrain-results", "broken-1")
    assert result["status"] == "failed"
    assert "exit" in result["error"] and "boom: the feature store is unreachable" in result["error"]
    assert of(reader, stack, "deployments", "broken-1") == []
    assert stack.workers[0].proc.poll() is None


class Pipeline(BaseHTTPRequestHandler):
    """A stand-in for a training pipeline's trigger endpoint (say, Airflow's REST API)."""

    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Pipeline.received.append({"body": json.loads(body), "auth": self.headers["Authorization"]})
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webhook_trainer_completes_through_retrain_results(stack: Any, tmp_path: Path) -> None:
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), Pipeline)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Pipeline.received = []
    try:
        stack.start_worker(
            env={"PIPE_TOKEN": "s3cret"},
            policy_file=policy(
                tmp_path,
                f"""
[[model]]
match = "hooked"
trainer = {{ kind = "webhook", url = "http://127.0.0.1:{port}/train", token_env = "PIPE_TOKEN" }}
""",
            ),
        )
        reader = stack.reader("retrain-results", "deployments")
        send_traffic(stack, "hooked", 400, flip=0.3)
        stack.wait_processed()
        ask_retrain(stack, ("hooked", "rq-hook"))
        wait_until(lambda: Pipeline.received, 30, "the webhook was never called")
        call = Pipeline.received[0]
        assert call["auth"] == "Bearer s3cret"
        job = call["body"]
        assert job["request"]["request_id"] == "rq-hook"
        assert job["callback"]["topic"] == stack.topic("retrain-results")
        # The pipeline trains, then answers on retrain-results with its holdout predictions.
        answers = [h["features"]["x1"] > h["features"]["x2"] for h in job["holdout"]]
        answer = {
            "request_id": "rq-hook",
            "model_id": "hooked",
            "status": "succeeded",
            "ts": 1e9,
            "candidate_version": "pipeline-7",
            "artifact_uri": "s3://models/hooked/pipeline-7",
            "metrics": {"holdout_predictions": answers},
        }
        produce(stack.bootstrap, [(stack.topic("retrain-results"), "hooked", as_json(answer))])
        reader.wait_for(lambda r: of(r, stack, "deployments", "hooked"), 60, "the deployment")
        (dep,) = of(reader, stack, "deployments", "hooked")
        assert dep["artifact_uri"] == "s3://models/hooked/pipeline-7"
        assert dep["request_id"] == "rq-hook"
        verdicts = [r for r in of(reader, stack, "retrain-results", "hooked") if r.get("by")]
        assert [v["status"] for v in verdicts] == ["succeeded"]
        assert verdicts[0]["metrics"]["candidate_error"] == 0.0
    finally:
        server.shutdown()


def test_promoted_model_that_is_worse_live_is_rolled_back(stack: Any) -> None:
    stack.start_worker()
    reader = stack.reader("deployments", "retrain-requests")
    send_traffic(stack, "rolled", 800, flip=0.05, seed=2)
    stack.wait_processed()
    promote = {
        "deployment_id": "manual-v2",
        "model_id": "rolled",
        "version": "v2",
        "previous_version": "v1",
        "action": "promote",
        "ts": 1e9,
    }
    produce(stack.bootstrap, [(stack.topic("deployments"), "rolled", as_json(promote))])
    stack.wait_processed("deployments")
    send_traffic(stack, "rolled", 600, start=800, version="v2", flip=0.35, seed=3)
    reader.wait_for(lambda r: len(of(r, stack, "deployments", "rolled")) >= 2, 60, "a rollback")
    rollback = of(reader, stack, "deployments", "rolled")[1]
    assert rollback["action"] == "rollback"
    assert rollback["version"] == "v1" and rollback["previous_version"] == "v2"
    ev = rollback["metrics"]
    assert ev["baseline_error"] < 0.1 and ev["new_error"] > 0.2
    assert ev["new_n"] >= 200 and ev["z"] > ev["z_critical"]


def test_worker_killed_mid_retrain_neither_loses_the_request_nor_deploys_twice(
    stack: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "trainer-started"
    worker = worker_with_trainer(stack, tmp_path, "crashy", command("good", "4", str(marker)))
    reader = stack.reader("retrain-results", "deployments")
    send_traffic(stack, "crashy", 400, flip=0.3)
    stack.wait_processed()
    ask_retrain(stack, ("crashy", "rq-crash"))
    wait_until(marker.exists, 30, "the trainer never started")
    worker.kill()  # SIGKILL mid-training: no clean shutdown, no commit
    restarted = stack.start_worker(policy_file=worker.settings.policy_file)
    # The event awaited: the deployment. 90 s bounds a rejoin (the dead member's 10 s session),
    # a recovery, a 4 s training and the gate on a loaded machine; on a timeout the worker's
    # task stacks and faust's view of its partitions say where it waited.
    try:
        reader.wait_for(lambda r: of(r, stack, "deployments", "crashy"), 90, "the deployment")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n{restarted.dump_tasks()}") from None
    stack.wait_processed("retrain-requests")
    reader.settle(quiet_s=2.0)
    deployments = of(reader, stack, "deployments", "crashy")
    assert len(deployments) == 1
    assert deployments[0]["request_id"] == "rq-crash"
    assert len(marker.read_text().split()) == 2  # trained again after the crash, not lost
