"""An Airflow-triggered retrain through a live worker, answered with streamproc.client.pipeline.

A local stand-in for the Airflow 3 API server (``/auth/token`` and the v2 dagRuns endpoint,
the body checked with apache-airflow-client's ``TriggerDAGRunPostBody`` and the server's
rules: no extra keys, ``logical_date`` present) receives the worker's DAG run; the test then
plays the DAG's last task and publishes the result with
:func:`streamproc.client.pipeline.publish_result`.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_retraining import ask_retrain, of, policy, send_traffic, wait_until

from streamproc.client.pipeline import publish_result

pytestmark = pytest.mark.integration

models = pytest.importorskip("airflow_client.client.models")


class Airflow(BaseHTTPRequestHandler):
    runs: list[dict[str, Any]] = []
    refused: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        if self.path == "/auth/token":
            ok = body == {"username": "ops", "password": "pw"}
            self.answer(201 if ok else 401, {"access_token": "header.e30.sig"} if ok else {})
            return
        allowed = set(models.TriggerDAGRunPostBody.model_fields) - {"additional_properties"}
        if self.headers.get("Authorization") != "Bearer header.e30.sig":
            self.refused.append("auth")
            self.answer(401, {"detail": "Not authenticated"})
        elif self.path != "/api/v2/dags/retrain/dagRuns":
            self.refused.append(self.path)
            self.answer(404, {"detail": "no such DAG"})
        elif set(body) - allowed or "logical_date" not in body:
            self.refused.append(f"keys {sorted(body)}")
            self.answer(422, {"detail": "bad body"})
        else:
            parsed = models.TriggerDAGRunPostBody.from_dict(body)
            self.runs.append({"dag_run_id": parsed.dag_run_id, "conf": parsed.conf})
            self.answer(200, {"dag_run_id": parsed.dag_run_id, "state": "queued"})

    def answer(self, code: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_airflow_dag_run_answered_by_the_pipeline_deploys(stack: Any, tmp_path: Path) -> None:
    Airflow.runs, Airflow.refused = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Airflow)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        toml = (
            '[[model]]\nmatch = "flowed"\n'
            f'trainer = {{ kind = "airflow", url = "{url}", dag_id = "retrain", '
            'username_env = "AF_USER", password_env = "AF_PASS" }\n'
        )
        stack.start_worker(
            env={"AF_USER": "ops", "AF_PASS": "pw"}, policy_file=policy(tmp_path, toml)
        )
        reader = stack.reader("retrain-results", "deployments")
        send_traffic(stack, "flowed", 400, flip=0.3)
        stack.wait_processed()
        ask_retrain(stack, ("flowed", "rq-flow"))
        wait_until(lambda: Airflow.runs or Airflow.refused, 60, "the DAG run request")
        assert Airflow.refused == []
        (run,) = Airflow.runs
        assert run["dag_run_id"] == "streamproc__rq-flow"
        conf = run["conf"]  # what the DAG's tasks read from dag_run.conf
        # The DAG's last task: predictions for the holdout, the artifact's URI, published.
        answers = [h["features"]["x1"] > h["features"]["x2"] for h in conf["holdout"]]
        publish_result(stack.bootstrap, conf, answers, "s3://models/flowed/run-1", {"auc": 0.9})
        reader.wait_for(lambda r: of(r, stack, "deployments", "flowed"), 60, "the deployment")
        (dep,) = of(reader, stack, "deployments", "flowed")
        assert dep["artifact_uri"] == "s3://models/flowed/run-1"
        assert dep["request_id"] == "rq-flow" and dep["metrics"]["auc"] == 0.9
        verdicts = [r for r in of(reader, stack, "retrain-results", "flowed") if r.get("by")]
        assert [v["status"] for v in verdicts] == ["succeeded"]
    finally:
        server.shutdown()
        server.server_close()
