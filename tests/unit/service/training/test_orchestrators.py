"""Airflow and Kubeflow trainers against a real HTTP server on 127.0.0.1 that validates them.

The request bodies are checked with the orchestrators' own generated request models
(``apache-airflow-client`` for Airflow 3's ``TriggerDAGRunPostBody``, ``kfp-server-api`` for
``V2beta1Run``), plus what their servers enforce and the generated clients do not: Airflow 3's
model forbids extra keys and requires ``logical_date``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from streamproc.core.events import Reason, RetrainRequest
from streamproc.core.example import Example
from streamproc.core.retrain import TrainerError, TrainingJob
from streamproc.service.training.orchestrators import AirflowTrainer, KubeflowTrainer, dag_run_id
from streamproc.service.training.trainers import trainer_from_config

airflow_models = pytest.importorskip("airflow_client.client.models")
kfp = pytest.importorskip("kfp_server_api")

TOPIC = "p-retrain-results"
# Airflow 2's v1 DAGRun request model (the v3 client ships only v2's).
V1_KEYS = {"dag_run_id", "logical_date", "execution_date", "data_interval_start",
           "data_interval_end", "conf", "note"}  # fmt: skip


def job(rid: str = "rr-1") -> TrainingJob:
    req = RetrainRequest(rid, "fraud/eu", "v1", 1e9, (Reason("manual", "operator", 1, 1, 0),))
    examples = tuple(Example({"x": float(i)}, i % 2 == 0, True, "v1", 1e9 + i) for i in range(5))
    return TrainingJob(req, "v1", examples, examples[:2])


def jwt(exp: float) -> str:
    def seg(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{seg({'alg': 'HS256'})}.{seg({'exp': exp, 'sub': 'streamproc'})}.c2ln"


class Orchestrator:
    """A local stand-in for the orchestrators' API servers: validates, records, answers."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.token_lifetime = 3600.0
        self.issued: list[str] = []
        self.runs: set[str] = set()
        self.reject_next_with: int | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                code, answer = outer.handle(self.path, dict(self.headers), raw)
                data = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        body = json.loads(raw)
        self.requests.append({"path": path, "headers": headers, "body": body})
        if path == "/auth/token":
            if body != {"username": "ops", "password": "pw"}:
                return 401, {"detail": "Invalid credentials"}
            token = jwt(time.time() + self.token_lifetime)
            self.issued.append(token)
            return 201, {"access_token": token}
        if self.reject_next_with is not None:
            code, self.reject_next_with = self.reject_next_with, None
            return code, {"detail": "rejected by the test"}
        if path == "/api/v2/dags/retrain/dagRuns":
            return self.airflow_v2(headers, body)
        if path == "/api/v1/dags/retrain/dagRuns":
            return self.airflow_v1(headers, body)
        if path == "/apis/v2beta1/runs":
            return self.kubeflow(headers, body)
        return 404, {"detail": f"no route {path}"}

    def airflow_v2(self, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        if headers.get("Authorization") != f"Bearer {self.issued[-1] if self.issued else ''}":
            return 401, {"detail": "Invalid or expired token"}
        model = airflow_models.TriggerDAGRunPostBody
        allowed = set(model.model_fields) - {"additional_properties"}
        if set(body) - allowed or "logical_date" not in body:  # extra="forbid", required
            return 422, {"detail": f"bad keys {sorted(body)}"}
        parsed = model.from_dict(body)
        assert parsed is not None and parsed.logical_date is None
        return self.new_run(str(parsed.dag_run_id))

    def airflow_v1(self, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        basic = "Basic " + base64.b64encode(b"ops:pw").decode()
        if headers.get("Authorization") != basic:
            return 401, {"detail": "Unauthorized"}
        if set(body) - V1_KEYS or not isinstance(body.get("conf"), dict):
            return 400, {"detail": f"bad keys {sorted(body)}"}
        return self.new_run(body["dag_run_id"])

    def new_run(self, run_id: str) -> tuple[int, Any]:
        if run_id in self.runs:
            return 409, {"detail": f"DAGRun with dag_run_id: '{run_id}' already exists"}
        self.runs.add(run_id)
        return 200, {"dag_run_id": run_id, "state": "queued"}

    def kubeflow(self, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        if headers.get("Authorization") != "Bearer sa-token":
            return 401, {"error": "Unauthenticated"}
        levels = [
            (body, kfp.V2beta1Run),
            (body.get("pipeline_version_reference", {}), kfp.V2beta1PipelineVersionReference),
            (body.get("runtime_config", {}), kfp.V2beta1RuntimeConfig),
        ]
        for obj, model in levels:
            if set(obj) - set(model.attribute_map):
                return 400, {
                    "error": f"unknown fields {sorted(set(obj) - set(model.attribute_map))}"
                }
        run = kfp.ApiClient()._ApiClient__deserialize(body, "V2beta1Run")
        assert run.pipeline_version_reference.pipeline_id == "pipe-1"
        return 200, {"run_id": "run-1", "display_name": run.display_name}


@pytest.fixture
def orch() -> Iterator[Orchestrator]:
    o = Orchestrator()
    o.thread.start()
    try:
        yield o
    finally:
        o.server.shutdown()
        o.server.server_close()


def test_airflow3_body_matches_the_request_model_and_token_is_refreshed(
    orch: Orchestrator,
) -> None:
    orch.token_lifetime = 30.0  # inside the refresh margin: every call needs a new token
    t = AirflowTrainer(orch.url, "retrain", results_topic=TOPIC, username="ops", password="pw")
    t.start(job("rr-1"))
    t.start(job("rr-2"))
    runs = [r for r in orch.requests if r["path"].startswith("/api/v2")]
    assert [r["body"]["dag_run_id"] for r in runs] == ["streamproc__rr-1", "streamproc__rr-2"]
    body = runs[0]["body"]
    assert list(body) == ["dag_run_id", "logical_date", "conf"] and body["logical_date"] is None
    conf = body["conf"]
    assert conf["request"]["request_id"] == "rr-1" and len(conf["holdout"]) == 2
    assert conf["callback"] == {"topic": TOPIC, "key": "fraud/eu"}
    assert t.tokens_fetched == 2  # expiring within the margin: fetched again

    orch.token_lifetime = 3600.0
    t.start(job("rr-3"))
    t.start(job("rr-4"))
    assert t.tokens_fetched == 3  # a token good for an hour is reused


def test_airflow3_redelivered_job_is_taken_as_started_and_401_refetches(
    orch: Orchestrator,
) -> None:
    t = AirflowTrainer(orch.url, "retrain", results_topic=TOPIC, username="ops", password="pw")
    t.start(job("rr-1"))
    t.start(job("rr-1"))  # the same run id: 409 from the server, not an error
    assert len(orch.runs) == 1
    orch.issued.append("revoked-elsewhere")  # the server no longer accepts our token
    with pytest.raises(TrainerError, match="new token") as err:
        t.start(job("rr-2"))
    assert err.value.transient
    t.start(job("rr-2"))  # the retry fetches a new token
    assert "streamproc__rr-2" in orch.runs


def test_airflow3_wrong_password_is_a_clear_permanent_error(orch: Orchestrator) -> None:
    t = AirflowTrainer(orch.url, "retrain", results_topic=TOPIC, username="ops", password="no")
    with pytest.raises(TrainerError, match="refused a token with HTTP 401") as err:
        t.start(job())
    assert not err.value.transient


def test_airflow2_basic_auth_and_v1_body(orch: Orchestrator) -> None:
    t = AirflowTrainer(
        orch.url, "retrain", results_topic=TOPIC, api_version=2, username="ops", password="pw"
    )
    t.start(job())
    (req,) = orch.requests
    assert req["path"] == "/api/v1/dags/retrain/dagRuns"
    assert set(req["body"]) == {"dag_run_id", "conf"}


def test_kubeflow_body_matches_v2beta1_run(orch: Orchestrator, monkeypatch: Any) -> None:
    monkeypatch.setenv("KFP_TOKEN", "sa-token")
    t = trainer_from_config(
        {"kind": "kubeflow", "url": orch.url, "pipeline_id": "pipe-1",
         "pipeline_version_id": "ver-7", "experiment_id": "exp-2", "token_env": "KFP_TOKEN"},
        TOPIC,
    )  # fmt: skip
    assert isinstance(t, KubeflowTrainer)
    t.start(job())
    (req,) = orch.requests
    body = req["body"]
    assert body["pipeline_version_reference"] == {
        "pipeline_id": "pipe-1",
        "pipeline_version_id": "ver-7",
    }
    assert body["experiment_id"] == "exp-2"
    params = body["runtime_config"]["parameters"]
    assert list(params) == ["job"] and params["job"]["request"]["request_id"] == "rr-1"


def test_kubeflow_server_error_is_transient(orch: Orchestrator) -> None:
    t = KubeflowTrainer(orch.url, "pipe-1", results_topic=TOPIC, token="sa-token")
    orch.reject_next_with = 503
    with pytest.raises(TrainerError, match="HTTP 503") as err:
        t.start(job())
    assert err.value.transient


def test_config_errors_say_what_to_fix(monkeypatch: Any) -> None:
    monkeypatch.delenv("AF_PASS", raising=False)
    monkeypatch.setenv("AF_USER", "ops")
    base = {"kind": "airflow", "url": "http://a:8080", "dag_id": "retrain"}
    with pytest.raises(ValueError, match="AF_PASS"):
        trainer_from_config({**base, "username_env": "AF_USER", "password_env": "AF_PASS"}, TOPIC)
    with pytest.raises(ValueError, match="both username_env and password_env"):
        trainer_from_config({**base, "username_env": "AF_USER"}, TOPIC)
    with pytest.raises(ValueError, match="api_version"):
        trainer_from_config({**base, "api_version": 1}, TOPIC)
    with pytest.raises(ValueError, match="dag_id"):
        trainer_from_config({"kind": "airflow", "url": "http://a:8080"}, TOPIC)
    with pytest.raises(ValueError, match="pipeline_id"):
        trainer_from_config({"kind": "kubeflow", "url": "http://k:8888"}, TOPIC)
    with pytest.raises(ValueError, match="unknown key"):
        trainer_from_config({**base, "conf": {}}, TOPIC)
    assert dag_run_id("rr 1/ü") == "streamproc__rr_1__"


def test_policy_file_chooses_an_orchestrator_per_model(monkeypatch: Any) -> None:
    from streamproc.core.policy import load_policy_text

    monkeypatch.setenv("AF_USER", "ops")
    monkeypatch.setenv("AF_PASS", "pw")
    book = load_policy_text(
        '[[model]]\nmatch = "fraud-*"\n'
        'trainer = { kind = "airflow", url = "http://airflow:8080", dag_id = "retrain", '
        'username_env = "AF_USER", password_env = "AF_PASS" }\n'
    )
    cfg = book.for_model("fraud-eu").trainer
    assert cfg is not None
    t = trainer_from_config(dict(cfg), TOPIC)
    assert isinstance(t, AirflowTrainer)
    assert t.url == "http://airflow:8080/api/v2/dags/retrain/dagRuns"
    assert book.for_model("other").trainer is None
