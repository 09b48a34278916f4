"""Trainers that start a run in a pipeline orchestrator: Apache Airflow and Kubeflow Pipelines.

Both are webhook trainers (:class:`~streamproc.service.training.trainers.WebhookTrainer`): they
start a run whose input is the training job (``TrainingJob.to_json_obj()`` plus
``callback: {topic, key}``) and return; the pipeline's last task publishes a RetrainResult with
the same ``request_id`` on the retrain-results topic, and the worker judges it like any
candidate.

- :class:`AirflowTrainer`: Airflow 3 ``POST /api/v2/dags/{dag_id}/dagRuns`` with
  ``{"dag_run_id", "logical_date": null, "conf": <job>}`` and a JWT from ``POST /auth/token``
  (fetched again shortly before it expires, or after a 401); Airflow 2
  ``POST /api/v1/dags/{dag_id}/dagRuns`` with ``{"dag_run_id", "conf"}`` and basic auth. The run
  id comes from the request id, so a redelivered job meets HTTP 409 (the run exists) and is
  taken as started.
- :class:`KubeflowTrainer`: ``POST /apis/v2beta1/runs`` with ``pipeline_version_reference`` and
  ``runtime_config.parameters`` (the job under one parameter, ``job`` by default), bearer token.

Examples
--------
>>> t = AirflowTrainer("http://airflow:8080", "retrain", results_topic="retrain-results")
>>> t.url
'http://airflow:8080/api/v2/dags/retrain/dagRuns'
>>> dag_run_id("rr-3f2a/eu")
'streamproc__rr-3f2a_eu'
"""

from __future__ import annotations

import base64
import logging
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import orjson

from streamproc.core.retrain import TrainerError, TrainingJob
from streamproc.service.training.trainers import WebhookTrainer, job_json

__all__ = ["AirflowTrainer", "KubeflowTrainer", "dag_run_id", "orchestrator_from_config"]

log = logging.getLogger(__name__)

# A token is fetched again this long before its "exp": a request must not carry one that
# expires on the way.
REFRESH_BEFORE_S: Final = 60.0
_RUN_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.~:+-]")  # Airflow's run-id alphabet


def dag_run_id(request_id: str) -> str:
    """The Airflow run id of a request: deterministic, in Airflow's run-id alphabet."""
    return "streamproc__" + _RUN_ID_UNSAFE.sub("_", request_id)[:200]


def _job_conf(trainer: WebhookTrainer, job: TrainingJob) -> dict[str, Any]:
    conf = job.to_json_obj()
    conf["callback"] = {"topic": trainer.results_topic, "key": job.request.model_id}
    return conf


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (seconds since the epoch), None when it has none.

    The token is not verified: the server does that; this only says when to fetch a new one.

    >>> body = base64.urlsafe_b64encode(b'{"exp": 1700000000}').decode().rstrip("=")
    >>> jwt_expiry(f"e30.{body}.sig")
    1700000000.0
    >>> jwt_expiry("not-a-jwt") is None
    True
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        exp = claims.get("exp") if isinstance(claims, dict) else None
    except (ValueError, orjson.JSONDecodeError):
        return None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


class AirflowTrainer(WebhookTrainer):
    """Start a DAG run in Apache Airflow 3 (REST API v2) or 2 (v1) with the job as its ``conf``.

    Parameters
    ----------
    base_url
        The Airflow API server, e.g. ``http://airflow:8080``.
    dag_id
        The DAG that trains; it reads the job from ``dag_run.conf``.
    api_version
        3 (default): ``/api/v2``, JWT from ``POST /auth/token`` with ``username``/``password``
        (or a fixed ``token``). 2: ``/api/v1`` with basic auth.
    timeout_s
        Socket timeout of each request.
    """

    def __init__(
        self,
        base_url: str,
        dag_id: str,
        *,
        results_topic: str,
        api_version: int = 3,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout_s: float = 10,
    ) -> None:
        if api_version not in (2, 3):
            raise ValueError(f"trainer airflow: api_version must be 2 or 3, got {api_version!r}")
        if not dag_id:
            raise ValueError("trainer airflow: 'dag_id' is required")
        base = base_url.rstrip("/")
        path = f"/api/v{1 if api_version == 2 else 2}/dags/{quote(dag_id, safe='')}/dagRuns"
        super().__init__(base + path, timeout_s, token, results_topic=results_topic)
        self.base_url = base
        self.dag_id = dag_id
        self.api_version = api_version
        self._username = username
        self._password = password
        self._jwt = token
        self._jwt_exp = jwt_expiry(token) if token else None
        self._lock = threading.Lock()
        #: Tokens fetched from /auth/token.
        self.tokens_fetched = 0

    def __repr__(self) -> str:
        return f"AirflowTrainer({self.base_url!r}, {self.dag_id!r}, api_version={self.api_version})"

    def body(self, job: TrainingJob) -> bytes:
        """``{"dag_run_id", "logical_date": null, "conf"}`` (Airflow 2: no ``logical_date``)."""
        body: dict[str, Any] = {"dag_run_id": dag_run_id(job.request.request_id)}
        if self.api_version == 3:
            body["logical_date"] = None  # required by the v2 model; null: "now", no schedule
        body["conf"] = _job_conf(self, job)
        return job_json(body, job)

    def auth_headers(self) -> dict[str, str]:
        if self.api_version == 2:
            if self._username is None:
                return {}
            pair = f"{self._username}:{self._password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        token = self._access_token()
        return {"Authorization": f"Bearer {token}"} if token else {}

    def already_started(self, exc: urllib.error.HTTPError) -> bool:
        return exc.code == 409  # the run id exists: this job was started before a redelivery

    def _status_error(self, exc: urllib.error.HTTPError) -> TrainerError:
        err = super()._status_error(exc)
        if exc.code == 401 and self.api_version == 3 and self._password is not None:
            with self._lock:
                self._jwt = None  # revoked or expired early: fetch a new one on the retry
            return TrainerError(f"{err} (a new token is fetched; will retry)", transient=True)
        return err

    def _access_token(self) -> str | None:
        with self._lock:
            if self._username is None or self._password is None:
                return self._jwt  # a fixed token, or none
            fresh = self._jwt is not None and (
                self._jwt_exp is None or time.time() < self._jwt_exp - REFRESH_BEFORE_S
            )
            if not fresh:
                self._jwt = self._fetch_token()
                self._jwt_exp = jwt_expiry(self._jwt)
            return self._jwt

    def _fetch_token(self) -> str:
        url = f"{self.base_url}/auth/token"
        payload = orjson.dumps({"username": self._username, "password": self._password})
        req = urllib.request.Request(
            url,
            payload,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                answer = resp.read(64 * 1024)
        except urllib.error.HTTPError as exc:
            code = exc.code
            exc.close()
            transient = code == 429 or code >= 500
            fix = "will retry" if transient else "check username_env and password_env"
            raise TrainerError(
                f"airflow {url} refused a token with HTTP {code}; {fix}", transient=transient
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise TrainerError(
                f"airflow {url} unreachable ({reason}); will retry", transient=True
            ) from None
        try:
            token = orjson.loads(answer).get("access_token")
        except (orjson.JSONDecodeError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise TrainerError(
                f"airflow {url} answered without an access_token; is this an Airflow 3 API "
                "server? (Airflow 2: set api_version = 2)"
            )
        self.tokens_fetched += 1
        log.info("airflow %s: new access token (expires %s)", self.base_url, jwt_expiry(token))
        return token


class KubeflowTrainer(WebhookTrainer):
    """Start a Kubeflow Pipelines run (API v2beta1) with the job as one pipeline parameter.

    Parameters
    ----------
    base_url
        The KFP API server, e.g. ``http://ml-pipeline.kubeflow:8888``.
    pipeline_id, pipeline_version_id
        The pipeline version to run (without a version id, KFP runs the latest version).
    experiment_id
        The experiment the run belongs to; KFP's default experiment when omitted.
    parameter
        The pipeline parameter (a ``dict`` input) that receives the job.
    token
        Bearer token (for example a service account token), sent when given.
    """

    def __init__(
        self,
        base_url: str,
        pipeline_id: str,
        *,
        results_topic: str,
        pipeline_version_id: str | None = None,
        experiment_id: str | None = None,
        parameter: str = "job",
        token: str | None = None,
        timeout_s: float = 10,
    ) -> None:
        if not pipeline_id:
            raise ValueError("trainer kubeflow: 'pipeline_id' is required")
        base = base_url.rstrip("/")
        super().__init__(base + "/apis/v2beta1/runs", timeout_s, token, results_topic=results_topic)
        self.base_url = base
        self.pipeline_id = pipeline_id
        self.pipeline_version_id = pipeline_version_id
        self.experiment_id = experiment_id
        self.parameter = parameter

    def __repr__(self) -> str:
        return f"KubeflowTrainer({self.base_url!r}, {self.pipeline_id!r})"

    def body(self, job: TrainingJob) -> bytes:
        """A ``V2beta1Run``: display name, pipeline version reference, runtime parameters."""
        rid = job.request.request_id
        ref = {"pipeline_id": self.pipeline_id}
        if self.pipeline_version_id:
            ref["pipeline_version_id"] = self.pipeline_version_id
        body: dict[str, Any] = {
            "display_name": f"streamproc {job.request.model_id} {rid}"[:128],
            "description": f"retrain {rid} of {job.request.model_id}, started by streamproc",
            "pipeline_version_reference": ref,
            "runtime_config": {"parameters": {self.parameter: _job_conf(self, job)}},
        }
        if self.experiment_id:
            body["experiment_id"] = self.experiment_id
        return job_json(body, job)


def _secret(cfg: Mapping[str, Any], key: str, kind: str) -> str | None:
    name = cfg.get(key)
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        raise ValueError(f"trainer {kind}: {key!r} must name an environment variable")
    value = os.environ.get(name)
    if not value:
        raise ValueError(
            f"trainer {kind}: environment variable {name} ({key}) is not set or empty; "
            f"export it, or remove {key}"
        )
    return value


def _text(cfg: Mapping[str, Any], key: str, kind: str, required: bool = False) -> str | None:
    v = cfg.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str) or not v:
        raise ValueError(f"trainer {kind}: {key!r} is required, a non-empty string")
    return v


def orchestrator_from_config(
    cfg: Mapping[str, Any], results_topic: str, timeout_s: float
) -> AirflowTrainer | KubeflowTrainer:
    """The airflow or kubeflow trainer ``cfg`` describes (keys checked by the caller).

    Raises
    ------
    ValueError
        A missing or malformed key, or an unset secret variable.
    """
    kind = cfg["kind"]
    url = cfg.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"trainer {kind}: 'url' is required, an http:// or https:// URL")
    token = _secret(cfg, "token_env", kind)
    if kind == "airflow":
        api = cfg.get("api_version", 3)
        if api not in (2, 3) or isinstance(api, bool):
            raise ValueError(f"trainer airflow: 'api_version' must be 2 or 3, got {api!r}")
        username = _secret(cfg, "username_env", kind)
        password = _secret(cfg, "password_env", kind)
        if (username is None) != (password is None):
            raise ValueError("trainer airflow: give both username_env and password_env, or neither")
        return AirflowTrainer(
            url,
            str(_text(cfg, "dag_id", kind, required=True)),
            results_topic=results_topic,
            api_version=api,
            username=username,
            password=password,
            token=token,
            timeout_s=timeout_s,
        )
    return KubeflowTrainer(
        url,
        str(_text(cfg, "pipeline_id", kind, required=True)),
        results_topic=results_topic,
        pipeline_version_id=_text(cfg, "pipeline_version_id", kind),
        experiment_id=_text(cfg, "experiment_id", kind),
        parameter=_text(cfg, "parameter", kind) or "job",
        token=token,
        timeout_s=timeout_s,
    )
