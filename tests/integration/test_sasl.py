"""SASL on a real broker: a worker configured only through the environment (SCRAM-SHA-256,
password from a file) runs the loop on events the SDK sends over SASL; PLAIN, SCRAM-SHA-512 and
OAUTHBEARER (a token file) work for the SDK; a wrong password is refused at once, with a
sentence saying what to check; and the password never reaches a log."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError

from streamproc.client import DeploymentWatcher, LabelLogger, MetricLogger, PredictionLogger
from streamproc.config import Settings
from streamproc.devkit.harness import TopicReader, WorkerProcess, free_port, produce, wait_caught_up
from streamproc.devkit.localkafka import LocalKafka
from streamproc.security import KafkaSecurity
from streamproc.sim.scenarios import T0, interactions, rule_model

pytestmark = pytest.mark.integration

MODEL = "fraud-eu"
# URL-safe tokens: the local broker writes them unquoted into its JAAS line and SCRAM records.
USERS = {"alice": secrets.token_urlsafe(16), "bob": secrets.token_urlsafe(16)}
WRONG = secrets.token_urlsafe(16)


def sasl(mechanism: str, user: str = "alice", password: str | None = None) -> KafkaSecurity:
    return KafkaSecurity("SASL_PLAINTEXT", mechanism, user, password or USERS[user])


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A broker of our own whose SASL listener knows alice and bob (PLAIN and SCRAM)."""
    kafka = LocalKafka()
    try:
        kafka.start(data_dir=tmp_path_factory.mktemp("sasl-kafka"), sasl_users=USERS)
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture
def bootstrap(broker: LocalKafka) -> str:
    assert broker.sasl_bootstrap is not None
    return broker.sasl_bootstrap


def worker_env(password_file: Path) -> dict[str, str]:
    """The worker's security comes from the environment only, as in a deployment."""
    return {
        "STREAMPROC_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "STREAMPROC_SASL_MECHANISM": "SCRAM-SHA-256",
        "STREAMPROC_SASL_USERNAME": "alice",
        "STREAMPROC_SASL_PASSWORD": "",
        "STREAMPROC_SASL_PASSWORD_FILE": str(password_file),
    }


def test_a_worker_on_scram_runs_the_loop_on_events_the_sdk_sends_over_sasl(
    bootstrap: str, tmp_path: Path
) -> None:
    secret = tmp_path / "alice.password"
    secret.write_text(USERS["alice"] + "\n")
    settings = Settings(
        broker=bootstrap, topic_prefix="scram-", partitions=2, data_dir=tmp_path, app_id="sp"
    ).with_(web_port=free_port())
    worker = WorkerProcess(settings, bootstrap, tmp_path / "worker.log", worker_env(secret))
    sdk = sasl("SCRAM-SHA-256")
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(worker.stop)
        worker.start().wait_assigned(90)
        outputs = [settings.topic("retrain-requests"), settings.topic("deployments")]
        reader = TopicReader(bootstrap, outputs, sdk)
        cleanup.callback(reader.close)
        watcher = DeploymentWatcher(
            bootstrap,
            settings.topic_prefix,
            [MODEL],
            registry_root=settings.registry_dir,
            security=sasl("SCRAM-SHA-512", "bob"),
        ).start()
        cleanup.callback(watcher.stop)
        assert watcher.wait_ready(30)
        with (
            PredictionLogger(bootstrap, settings.topic_prefix, security=sdk) as preds,
            LabelLogger(bootstrap, settings.topic_prefix, security=sdk) as labels,
            MetricLogger(bootstrap, settings.topic_prefix, security=sdk) as metrics,
        ):
            served = ("v1", rule_model("A", flip=0.2))
            for x in interactions(MODEL, lambda i: "A", lambda i: served, 0, 300, seed=3):
                p = x.prediction
                eid = preds.log(
                    MODEL, "v1", p["features"], p["prediction"], event_id=p["event_id"], ts=p["ts"]
                )
                labels.log(MODEL, eid, x.label["label"], ts=x.label["ts"])
            assert preds.flush(30) and labels.flush(30)
            assert (preds.sent, labels.sent, preds.failed + labels.failed) == (300, 300, 0)
            inputs = [settings.topic(t) for t in ("predictions", "labels")]
            wait_caught_up(bootstrap, "scram-sp", inputs, timeout=60, security=sdk)
            metrics.log(MODEL, "drift", 0.5, model_version="v1", ts=T0 + 400)
            assert metrics.flush(30) and metrics.sent == 1

        reader.wait_for(lambda r: bool(r.of(outputs[1])), timeout=60, what="a deployment")
        (request,) = [r.json() for r in reader.of(outputs[0])]
        assert request["reasons"][0]["signal"] == "metric:drift"
        (deployment,) = [r.json() for r in reader.of(outputs[1])]
        assert watcher.wait_for_version(MODEL, deployment["version"], timeout=30)
    log = worker.log_path.read_text(errors="replace")
    assert "Worker ready" in log
    assert USERS["alice"] not in log


def test_plain_and_scram_sha_512_work_for_the_sdk(bootstrap: str) -> None:
    prefix = f"plain{secrets.token_hex(3)}-"

    async def create_topic() -> None:
        bob = sasl("SCRAM-SHA-512", "bob").aiokafka_kwargs()
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **bob)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(f"{prefix}metrics", 1, 1)])
        finally:
            await admin.close()

    asyncio.run(create_topic())
    with MetricLogger(bootstrap, prefix, security=sasl("PLAIN", "bob")) as metrics:
        for i in range(5):
            metrics.log(MODEL, "accuracy", 0.9, ts=T0 + i)
        assert metrics.flush(30)
        assert (metrics.sent, metrics.failed) == (5, 0)
    reader = TopicReader(bootstrap, [f"{prefix}metrics"], sasl("SCRAM-SHA-512"))
    try:
        reader.wait_for(lambda r: len(r.records) == 5, timeout=30, what="5 metrics")
    finally:
        reader.close()


def unsigned_jwt(subject: str, expires: float) -> str:
    """A JWT the broker's unsecured OAUTHBEARER validator accepts: alg none, sub, exp."""

    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part({'sub': subject, 'exp': int(expires)})}."


def test_oauthbearer_with_a_token_file_works_for_the_sdk(bootstrap: str, tmp_path: Path) -> None:
    prefix = f"oauth{secrets.token_hex(3)}-"
    token = tmp_path / "token"
    token.write_text(unsigned_jwt("carol", time.time() + 3600))
    oauth = KafkaSecurity("SASL_PLAINTEXT", "OAUTHBEARER", oauth_token_file=str(token))

    async def create_topic() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **oauth.aiokafka_kwargs())
        await admin.start()
        try:
            await admin.create_topics([NewTopic(f"{prefix}metrics", 1, 1)])
        finally:
            await admin.close()

    asyncio.run(create_topic())
    with MetricLogger(bootstrap, prefix, security=oauth) as metrics:
        for i in range(5):
            metrics.log(MODEL, "accuracy", 0.9, ts=T0 + i)
        assert metrics.flush(30)
        assert (metrics.sent, metrics.failed) == (5, 0)
    reader = TopicReader(bootstrap, [f"{prefix}metrics"], sasl("SCRAM-SHA-512"))
    try:
        reader.wait_for(lambda r: len(r.records) == 5, timeout=30, what="5 metrics")
    finally:
        reader.close()


def test_a_wrong_password_is_refused_at_once_with_a_clear_error(
    bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = sasl("SCRAM-SHA-256", password=WRONG)

    started = time.monotonic()
    with pytest.raises(KafkaConnectionError):
        produce(bootstrap, [("anything", MODEL, b"{}")], security=wrong)
    # Refused, not retried until aiokafka's 40 s request timeout: a bound that holds on a busy
    # machine (the refusal itself is the event checked).
    assert time.monotonic() - started < 40

    caplog.set_level(logging.WARNING)
    metrics = MetricLogger(bootstrap, "wrong-", security=wrong)
    try:
        metrics.log(MODEL, "drift", 0.5, ts=T0)
        deadline = time.monotonic() + 40  # a wait for the event, not a speed check
        refusals: list[Any] = []
        while not refusals and time.monotonic() < deadline:
            time.sleep(0.1)
            refusals = [r for r in caplog.records if "refused the credentials" in r.message]
        assert refusals, caplog.text
        (refusal,) = refusals
        assert refusal.levelno == logging.ERROR
        assert "SASL user 'alice'" in refusal.message
        assert "STREAMPROC_SASL_PASSWORD" in refusal.message
        assert metrics.sent == 0
    finally:
        metrics.close(timeout=1)
    assert WRONG not in caplog.text

    # A worker with the wrong password stops with the broker's reason instead of hanging.
    secret = tmp_path / "wrong.password"
    secret.write_text(WRONG)
    settings = Settings(broker=bootstrap, topic_prefix="wrong-", data_dir=tmp_path, app_id="sp")
    worker = WorkerProcess(
        settings.with_(web_port=free_port()), bootstrap, tmp_path / "w.log", worker_env(secret)
    ).start()
    try:
        assert worker.proc is not None
        code = worker.proc.wait(60)
    finally:
        worker.kill()
    log = (tmp_path / "w.log").read_text(errors="replace")
    assert code != 0
    assert "invalid credentials with SASL mechanism SCRAM-SHA-256" in log, log[-2000:]
    assert WRONG not in log
