"""Trainers with I/O: real subprocesses for the command trainer, a real HTTP server for webhooks."""

from __future__ import annotations

import http.server
import os
import socket
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc.core.events import Reason, RetrainRequest, RetrainResult, parse_retrain_result
from streamproc.core.example import Example
from streamproc.core.retrain import Candidate, TrainerError, TrainingJob, builtin_trainer
from streamproc.service.training.trainers import (
    EX_TEMPFAIL,
    CommandTrainer,
    WebhookTrainer,
    candidate_from_result,
    retry_delays,
    trainer_from_config,
)

RESULTS_TOPIC = "sp.retrain-results"

# --------------------------------------------------------------------------- fixtures


def _job(n_train: int = 6, n_holdout: int = 4) -> TrainingJob:
    request = RetrainRequest("rr-abc", "m1", "v1", 100.0, (Reason("error", "adwin", 0.4, 0.2, 50),))
    examples = [Example({"x": float(i), "c": "red"}, i % 2, 0, "v1", float(i)) for i in range(20)]
    return TrainingJob(
        request,
        "v1",
        train=tuple(examples[:n_train]),
        holdout=tuple(examples[n_train : n_train + n_holdout]),
    )


def _command(tmp_path: Path, body: str, **kwargs: Any) -> CommandTrainer:
    """A command trainer running ``body`` as a Python script (``ART`` = an artifact path)."""
    script = tmp_path / "train.py"
    header = f"import json, os, sys, time\nART = {str(tmp_path / 'model.bin')!r}\n"
    script.write_text(header + textwrap.dedent(body))
    return CommandTrainer([sys.executable, str(script)], **kwargs)


def _error(trainer: CommandTrainer, job: TrainingJob | None = None) -> TrainerError:
    with pytest.raises(TrainerError) as info:
        trainer(job or _job())
    return info.value


GOOD = """
    job = json.load(sys.stdin)
    with open(ART, "wb") as f:
        f.write(b"model-bytes")
    print(json.dumps({
        "artifact_path": ART,
        "holdout_predictions": [int(h["features"]["x"]) % 2 for h in job["holdout"]],
        "metrics": {"model_id": job["request"]["model_id"], "n_train": len(job["train"])},
    }))
"""


# --------------------------------------------------------------------------- command trainer


def test_command_success_reads_artifact_and_predictions(tmp_path: Path) -> None:
    job = _job()
    cand = _command(tmp_path, GOOD)(job)
    assert isinstance(cand, Candidate)
    assert cand.artifact == b"model-bytes"
    assert cand.artifact_uri is None
    assert cand.holdout_predictions == tuple(int(ex.features["x"]) % 2 for ex in job.holdout)
    # The metrics prove the job JSON arrived on stdin intact.
    assert dict(cand.metrics) == {"model_id": "m1", "n_train": len(job.train)}


def test_command_receives_the_job_json(tmp_path: Path) -> None:
    seen = tmp_path / "stdin.json"
    trainer = _command(
        tmp_path,
        f"""
        raw = sys.stdin.buffer.read()
        open({str(seen)!r}, "wb").write(raw)
        job = json.loads(raw)
        open(ART, "wb").write(b"m")
        preds = [0] * len(job["holdout"])
        print(json.dumps({{"artifact_path": ART, "holdout_predictions": preds}}))
        """,
    )
    job = _job()
    cand = trainer(job)
    assert orjson.loads(seen.read_bytes()) == orjson.loads(orjson.dumps(job.to_json_obj()))
    assert dict(cand.metrics) == {}


def test_command_env_is_added_to_the_inherited_environment(tmp_path: Path) -> None:
    trainer = _command(
        tmp_path,
        """
        job = json.load(sys.stdin)
        open(ART, "wb").write(b"m")
        print(json.dumps({"artifact_path": ART, "holdout_predictions": [0] * len(job["holdout"]),
                          "metrics": {"flag": os.environ["TRAIN_FLAG"],
                                      "has_path": "PATH" in os.environ}}))
        """,
        env={"TRAIN_FLAG": "on"},
    )
    assert dict(trainer(_job()).metrics) == {"flag": "on", "has_path": True}


def test_command_log_lines_before_the_json_are_tolerated(tmp_path: Path) -> None:
    trainer = _command(
        tmp_path,
        """
        job = json.load(sys.stdin)
        print("epoch 1/2 loss=0.5")
        print("epoch 2/2 loss=0.3")
        open(ART, "wb").write(b"m")
        print(json.dumps({"artifact_path": ART, "holdout_predictions": [1] * len(job["holdout"])}))
        """,
    )
    assert trainer(_job()).holdout_predictions == (1, 1, 1, 1)


def test_command_nonzero_exit_reports_code_and_stderr_tail(tmp_path: Path) -> None:
    trainer = _command(
        tmp_path,
        """
        sys.stdin.read()
        for i in range(50):
            print(f"stderr line {i}", file=sys.stderr)
        print("ValueError: bad column 'age'", file=sys.stderr)
        sys.exit(3)
        """,
    )
    err = _error(trainer)
    msg = str(err)
    assert not err.transient
    assert "exited with status 3" in msg
    assert "ValueError: bad column 'age'" in msg
    assert "stderr line 49" in msg
    assert "stderr line 10\n" not in msg  # only the tail, not all 51 lines
    assert "train.py" in msg


def test_command_exit_tempfail_is_transient(tmp_path: Path) -> None:
    err = _error(_command(tmp_path, f"sys.stdin.read(); sys.exit({EX_TEMPFAIL})"))
    assert err.transient
    assert "status 75" in str(err)
    assert "nothing to stderr" in str(err)


def test_command_killed_by_signal_is_named(tmp_path: Path) -> None:
    err = _error(_command(tmp_path, "import signal; os.kill(os.getpid(), signal.SIGTERM)"))
    assert "killed by signal SIGTERM" in str(err)
    assert not err.transient


def test_command_timeout_kills_it_promptly(tmp_path: Path) -> None:
    pidfile = tmp_path / "cmd.pid"
    trainer = _command(
        tmp_path,
        f"open({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(30)",
        timeout_s=1,
    )
    started = time.monotonic()
    err = _error(trainer)
    # Killed, not waited out, however busy the machine: the error comes before the command's
    # 30 s are over, and the command is gone (if it even got to write its pid).
    assert time.monotonic() - started < 30
    assert not pidfile.exists() or _gone(int(pidfile.read_text()))
    assert "timed out after 1 s" in str(err)
    assert "raise timeout_s or make it faster" in str(err)
    assert not err.transient


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in {"Z", "X"}  # a zombie nobody reaped is dead too


def test_command_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    # The grandchild inherits stdout: killing only the direct child would leave the pipe open
    # and the trainer waiting for it.
    trainer = _command(
        tmp_path,
        f"""
        import subprocess
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        time.sleep(30)
        """,
        timeout_s=1,
    )
    started = time.monotonic()
    err = _error(trainer)
    assert time.monotonic() - started < 30  # not waited out (the command sleeps 30 s)
    assert "timed out" in str(err)
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 3
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid)


def test_command_garbage_stdout(tmp_path: Path) -> None:
    err = _error(_command(tmp_path, "sys.stdin.read(); print('training done, accuracy 0.93')"))
    msg = str(err)
    assert "not a JSON object" in msg
    assert "training done" in msg
    assert '"artifact_path"' in msg  # says the expected format
    assert not err.transient


def test_command_empty_stdout(tmp_path: Path) -> None:
    err = _error(_command(tmp_path, "sys.stdin.read()"))
    assert "printed nothing on stdout" in str(err)


def test_command_json_but_not_an_object(tmp_path: Path) -> None:
    err = _error(_command(tmp_path, "sys.stdin.read(); print('[1, 2, 3]')"))
    assert "not a JSON object" in str(err)


def test_command_missing_artifact_path_key(tmp_path: Path) -> None:
    err = _error(
        _command(
            tmp_path,
            "sys.stdin.read(); print(json.dumps({'holdout_predictions': [0, 0, 0, 0]}))",
        )
    )
    assert "'artifact_path' is missing" in str(err)
    assert "holdout_predictions" in str(err)


def test_command_missing_predictions_key(tmp_path: Path) -> None:
    err = _error(
        _command(
            tmp_path,
            "sys.stdin.read(); open(ART, 'wb').write(b'm'); "
            "print(json.dumps({'artifact_path': ART}))",
        )
    )
    assert "'holdout_predictions' is missing" in str(err)


def test_command_wrong_prediction_count(tmp_path: Path) -> None:
    err = _error(
        _command(
            tmp_path,
            "sys.stdin.read(); open(ART, 'wb').write(b'm'); "
            "print(json.dumps({'artifact_path': ART, 'holdout_predictions': [1, 0]}))",
        )
    )
    assert "has 2 predictions for 4 holdout examples" in str(err)
    assert not err.transient


def test_command_probabilities_instead_of_labels_are_rejected(tmp_path: Path) -> None:
    err = _error(
        _command(
            tmp_path,
            "sys.stdin.read(); open(ART, 'wb').write(b'm'); "
            "print(json.dumps({'artifact_path': ART, 'holdout_predictions': [[0.2, 0.8]] * 4}))",
        )
    )
    assert "holdout_predictions[0]" in str(err)


def test_command_metrics_must_be_an_object(tmp_path: Path) -> None:
    err = _error(
        _command(
            tmp_path,
            "sys.stdin.read(); open(ART, 'wb').write(b'm'); print(json.dumps("
            "{'artifact_path': ART, 'holdout_predictions': [0] * 4, 'metrics': [1]}))",
        )
    )
    assert "'metrics' must be a JSON object" in str(err)


def test_command_missing_artifact_file(tmp_path: Path) -> None:
    err = _error(
        _command(
            tmp_path,
            "sys.stdin.read(); "
            "print(json.dumps({'artifact_path': ART, 'holdout_predictions': [0] * 4}))",
        )
    )
    assert "does not exist" in str(err)
    assert "model.bin" in str(err)
    assert not err.transient


def test_command_unreadable_artifact_path(tmp_path: Path) -> None:
    err = _error(
        _command(
            tmp_path,
            "sys.stdin.read(); print(json.dumps("
            "{'artifact_path': os.path.dirname(ART), 'holdout_predictions': [0] * 4}))",
        )
    )
    assert "cannot read artifact_path" in str(err)


def test_command_program_not_found() -> None:
    err = _error(CommandTrainer(["/nonexistent/train-it"]))
    assert "could not be started" in str(err)
    assert not err.transient


def test_command_that_ignores_stdin_still_works(tmp_path: Path) -> None:
    # A big job and a command that never reads stdin must not break on the closed pipe.
    trainer = _command(
        tmp_path,
        """
        open(ART, "wb").write(b"m")
        print(json.dumps({"artifact_path": ART, "holdout_predictions": [0] * 4}))
        """,
    )
    job = _job()
    big = TrainingJob(job.request, "v1", job.train * 20000, job.holdout)  # ~5 MB of JSON
    assert trainer(big).artifact == b"m"


def test_command_unexpected_failure_is_still_a_trainer_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("streamproc.service.training.trainers.subprocess.Popen", broken)
    err = _error(_command(tmp_path, GOOD))
    assert "failed unexpectedly" in str(err)
    assert "boom" in str(err)


@pytest.mark.parametrize("argv", [[], "python train.py", [1, 2]])
def test_command_argv_is_validated(argv: Any) -> None:
    with pytest.raises(ValueError, match="non-empty list of strings"):
        CommandTrainer(argv)


# --------------------------------------------------------------------------- webhook server


@dataclass
class Hook:
    """A real HTTP server on 127.0.0.1 that records POSTs and answers ``status``."""

    url: str
    status: int = 202
    body: bytes = b'{"accepted": true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def hook() -> Iterator[Hook]:
    state: Hook

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length", "0"))
            state.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": self.rfile.read(n)}
            )
            if state.delay_s:
                time.sleep(state.delay_s)
            try:
                self.send_response(state.status)
                for k, v in state.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(state.body)))
                self.end_headers()
                self.wfile.write(state.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and hung up: that is the test

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Hook(url=f"http://127.0.0.1:{server.server_address[1]}/train")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _webhook_error(trainer: WebhookTrainer) -> TrainerError:
    with pytest.raises(TrainerError) as info:
        trainer.start(_job())
    return info.value


def test_webhook_posts_job_with_callback_and_token(hook: Hook) -> None:
    trainer = WebhookTrainer(hook.url, token="s3cret", results_topic=RESULTS_TOPIC)
    job = _job()
    trainer.start(job)
    [req] = hook.requests
    assert req["path"] == "/train"
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert headers["content-type"] == "application/json"
    assert headers["authorization"] == "Bearer s3cret"
    body = orjson.loads(req["body"])
    assert body["request"]["request_id"] == "rr-abc"
    assert body["request"]["model_id"] == "m1"
    assert body["callback"] == {"topic": RESULTS_TOPIC, "key": "m1"}
    assert len(body["holdout"]) == len(job.holdout)
    assert len(body["train"]) == len(job.train)
    assert "s3cret" not in repr(trainer)


def test_webhook_without_token_sends_no_authorization(hook: Hook) -> None:
    hook.status = 200
    WebhookTrainer(hook.url, results_topic=RESULTS_TOPIC).start(_job())
    headers = {k.lower() for k in hook.requests[0]["headers"]}
    assert "authorization" not in headers


def test_webhook_500_is_transient(hook: Hook) -> None:
    hook.status, hook.body = 500, b"database is down"
    err = _webhook_error(WebhookTrainer(hook.url, results_topic=RESULTS_TOPIC))
    assert err.transient
    assert "HTTP 500" in str(err)
    assert "database is down" in str(err)


def test_webhook_429_is_transient_and_says_retry_after(hook: Hook) -> None:
    hook.status, hook.headers = 429, {"Retry-After": "7"}
    err = _webhook_error(WebhookTrainer(hook.url, results_topic=RESULTS_TOPIC))
    assert err.transient
    assert "HTTP 429" in str(err)
    assert "Retry-After: 7" in str(err)


def test_webhook_400_is_not_transient_and_quotes_the_body(hook: Hook) -> None:
    hook.status, hook.body = 400, b'{"error": "unknown model m1"}'
    err = _webhook_error(WebhookTrainer(hook.url, results_topic=RESULTS_TOPIC))
    assert not err.transient
    assert "HTTP 400" in str(err)
    assert "unknown model m1" in str(err)


def test_webhook_401_hints_at_the_token(hook: Hook) -> None:
    hook.status = 401
    err = _webhook_error(WebhookTrainer(hook.url, token="wrong", results_topic=RESULTS_TOPIC))
    assert not err.transient
    assert "token" in str(err)
    assert "wrong" not in str(err)


def test_webhook_redirect_is_not_followed(hook: Hook) -> None:
    hook.status, hook.headers = 302, {"Location": "http://127.0.0.1:1/elsewhere"}
    err = _webhook_error(WebhookTrainer(hook.url, results_topic=RESULTS_TOPIC))
    assert not err.transient
    assert "HTTP 302" in str(err)
    assert len(hook.requests) == 1


def test_webhook_timeout_is_transient(hook: Hook) -> None:
    hook.delay_s = 1.5
    started = time.monotonic()
    err = _webhook_error(WebhookTrainer(hook.url, timeout_s=0.3, results_topic=RESULTS_TOPIC))
    assert time.monotonic() - started < 1.4
    assert err.transient


def test_webhook_connection_refused_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on the port once the socket is closed.
    trainer = WebhookTrainer(f"http://127.0.0.1:{port}/train", results_topic=RESULTS_TOPIC)
    err = _webhook_error(trainer)
    assert err.transient
    assert "unreachable" in str(err)


@pytest.mark.parametrize("url", ["ftp://x/train", "127.0.0.1:8080/train", ""])
def test_webhook_url_must_be_http(url: str) -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        WebhookTrainer(url, results_topic=RESULTS_TOPIC)


# --------------------------------------------------------------------------- candidate_from_result


def _result(**changes: Any) -> RetrainResult:
    obj: dict[str, Any] = {
        "request_id": "rr-abc",
        "model_id": "m1",
        "status": "succeeded",
        "ts": 200.0,
        "candidate_version": "ext-7",
        "metrics": {"holdout_predictions": [0, 1, 0, 1], "auc": 0.91},
        "artifact_uri": "s3://models/m1/ext-7.pkl",
    }
    obj.update(changes)
    obj = {k: v for k, v in obj.items() if v is not None}
    return parse_retrain_result(orjson.dumps(obj))


def test_candidate_from_result_top_level_artifact_uri() -> None:
    cand = candidate_from_result(_result(), holdout_len=4)
    assert cand.holdout_predictions == (0, 1, 0, 1)
    assert cand.artifact_uri == "s3://models/m1/ext-7.pkl"
    assert cand.artifact is None
    assert dict(cand.metrics) == {"auc": 0.91}  # predictions are not republished as metrics


def test_candidate_from_result_artifact_uri_in_metrics() -> None:
    metrics = {"holdout_predictions": ["a", "b"], "artifact_uri": "gs://b/m.bin", "f1": 0.5}
    cand = candidate_from_result(_result(artifact_uri=None, metrics=metrics), holdout_len=2)
    assert cand.artifact_uri == "gs://b/m.bin"
    assert cand.holdout_predictions == ("a", "b")
    assert dict(cand.metrics) == {"f1": 0.5}


def test_candidate_from_result_failed_carries_the_error() -> None:
    result = RetrainResult("rr-abc", "m1", "failed", 200.0, error="GPU out of memory")
    with pytest.raises(TrainerError, match="GPU out of memory") as info:
        candidate_from_result(result, holdout_len=4)
    assert not info.value.transient


def test_candidate_from_result_rejected() -> None:
    result = RetrainResult("rr-abc", "m1", "rejected", 200.0)
    with pytest.raises(TrainerError, match="rejected"):
        candidate_from_result(result, holdout_len=4)


def test_candidate_from_result_without_predictions() -> None:
    with pytest.raises(TrainerError, match=r"lacks metrics\.holdout_predictions") as info:
        candidate_from_result(_result(metrics={"auc": 0.9}), holdout_len=4)
    assert not info.value.transient
    assert "rr-abc" in str(info.value)


def test_candidate_from_result_wrong_prediction_count() -> None:
    with pytest.raises(TrainerError, match="has 4 predictions for 5 holdout examples"):
        candidate_from_result(_result(), holdout_len=5)


def test_candidate_from_result_predictions_not_a_list() -> None:
    with pytest.raises(TrainerError, match="must be a list"):
        candidate_from_result(_result(metrics={"holdout_predictions": "0101"}), holdout_len=4)


def test_candidate_from_result_without_artifact_uri() -> None:
    with pytest.raises(TrainerError, match="lacks an artifact_uri") as info:
        candidate_from_result(_result(artifact_uri=None), holdout_len=4)
    assert not info.value.transient


def test_candidate_from_result_artifact_uri_not_a_string() -> None:
    with pytest.raises(TrainerError, match="lacks an artifact_uri"):
        candidate_from_result(_result(artifact_uri=42), holdout_len=4)


# --------------------------------------------------------------------------- trainer_from_config


def test_config_builtin() -> None:
    assert trainer_from_config("builtin", RESULTS_TOPIC) is builtin_trainer
    assert trainer_from_config({"kind": "builtin"}, RESULTS_TOPIC) is builtin_trainer
    assert trainer_from_config({"kind": "builtin", "learner": "logistic"}, RESULTS_TOPIC) is (
        builtin_trainer
    )


def test_config_builtin_learner_tree_trains_a_tree() -> None:
    trainer = trainer_from_config({"kind": "builtin", "learner": "tree"}, RESULTS_TOPIC)
    assert not isinstance(trainer, WebhookTrainer)
    job = _job(n_train=16)
    assert trainer(job).metrics["learner"] == "tree"
    assert builtin_trainer(job).metrics["learner"] == "logistic"


def test_config_command(tmp_path: Path) -> None:
    cfg = {"kind": "command", "argv": [sys.executable, "train.py"], "timeout_s": 30}
    trainer = trainer_from_config(cfg, RESULTS_TOPIC)
    assert isinstance(trainer, CommandTrainer)
    assert trainer.argv == [sys.executable, "train.py"]
    assert trainer.timeout_s == 30
    default = trainer_from_config({"kind": "command", "argv": ["x"]}, RESULTS_TOPIC)
    assert isinstance(default, CommandTrainer)
    assert default.timeout_s == 600


def test_config_command_runs(tmp_path: Path) -> None:
    script = tmp_path / "t.py"
    script.write_text(
        "import json, sys\n"
        f"art = {str(tmp_path / 'a.bin')!r}\n"
        "job = json.load(sys.stdin); open(art, 'wb').write(b'A')\n"
        "print(json.dumps({'artifact_path': art, "
        "'holdout_predictions': [0] * len(job['holdout'])}))\n"
    )
    trainer = trainer_from_config(
        {"kind": "command", "argv": [sys.executable, str(script)]}, RESULTS_TOPIC
    )
    assert isinstance(trainer, CommandTrainer)
    assert trainer(_job()).artifact == b"A"


def test_config_webhook_reads_token_from_env(hook: Hook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SP_TEST_TOKEN", "tok-123")
    cfg = {"kind": "webhook", "url": hook.url, "timeout_s": 5, "token_env": "SP_TEST_TOKEN"}
    trainer = trainer_from_config(cfg, RESULTS_TOPIC)
    assert isinstance(trainer, WebhookTrainer)
    assert trainer.timeout_s == 5
    assert "tok-123" not in repr(trainer)
    trainer.start(_job())
    headers = {k.lower(): v for k, v in hook.requests[0]["headers"].items()}
    assert headers["authorization"] == "Bearer tok-123"
    assert orjson.loads(hook.requests[0]["body"])["callback"]["topic"] == RESULTS_TOPIC


def test_config_webhook_unset_token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SP_TEST_TOKEN", raising=False)
    cfg = {"kind": "webhook", "url": "http://127.0.0.1/x", "token_env": "SP_TEST_TOKEN"}
    with pytest.raises(ValueError, match="SP_TEST_TOKEN"):
        trainer_from_config(cfg, RESULTS_TOPIC)


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ("gpu", "unknown"),
        ({"kind": "sagemaker"}, "unknown"),
        ({}, "unknown"),
        ({"argv": ["x"]}, "unknown"),
        ({"kind": "command"}, "'argv' is required"),
        ({"kind": "command", "argv": "python train.py"}, "'argv' is required"),
        ({"kind": "command", "argv": ["x"], "timeout_s": 0}, "timeout_s"),
        ({"kind": "command", "argv": ["x"], "timeout_s": "60"}, "timeout_s"),
        ({"kind": "command", "argv": ["x"], "timeout": 60}, r"unknown key\(s\) \['timeout'\]"),
        ({"kind": "command", "argv": ["x"], "env": {"A": 1}}, "'env'"),
        ({"kind": "webhook"}, "'url' is required"),
        ({"kind": "webhook", "url": "ftp://x"}, "'url' is required"),
        ({"kind": "webhook", "url": "http://x", "token_env": ""}, "token_env"),
        ({"kind": "builtin", "argv": ["x"]}, "unknown key"),
        (
            {"kind": "builtin", "learner": "forest"},
            r"'learner' must be one of \('logistic', 'tree'\)",
        ),
    ],
)
def test_config_errors_are_value_errors(cfg: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        trainer_from_config(cfg, RESULTS_TOPIC)


# --------------------------------------------------------------------------- retry_delays


def test_retry_delays_double_and_cap() -> None:
    assert retry_delays() == [1.0, 2.0, 4.0]
    assert retry_delays(6, base_s=2.0, cap_s=20.0) == [2.0, 4.0, 8.0, 16.0, 20.0, 20.0]
    assert retry_delays(0) == []
    assert retry_delays(3) == retry_delays(3)  # deterministic


def test_retry_delays_many_attempts_stay_finite() -> None:
    delays = retry_delays(5000, base_s=1.0, cap_s=30.0)
    assert len(delays) == 5000
    assert max(delays) == 30.0


def test_retry_delays_rejects_negatives() -> None:
    with pytest.raises(ValueError):
        retry_delays(-1)


def test_environment_is_not_modified_by_command_env(tmp_path: Path) -> None:
    _command(tmp_path, GOOD, env={"TRAIN_FLAG_X": "1"})(_job())
    assert "TRAIN_FLAG_X" not in os.environ
