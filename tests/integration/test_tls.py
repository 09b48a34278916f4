"""TLS on a real broker: the local broker's SSL and SASL_SSL listeners (certificates made with
the JDK's keytool), a worker configured only through the environment (the CA file, and SCRAM
credentials for SASL_SSL) running the loop on events the SDK sends over TLS up to the retrain
request and the deployment (and over SASL_SSL with OAUTHBEARER, the token read from a file); and
a client that does not trust the broker's CA is told which setting to fix."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamproc.client import DeploymentWatcher, LabelLogger, MetricLogger, PredictionLogger
from streamproc.config import Settings
from streamproc.devkit.harness import TopicReader, WorkerProcess, free_port, wait_caught_up
from streamproc.devkit.localkafka import LocalKafka
from streamproc.security import KafkaSecurity
from streamproc.sim.scenarios import T0, interactions, rule_model

pytestmark = pytest.mark.integration

MODEL = "fraud-eu"
USERS = {"alice": secrets.token_urlsafe(16), "bob": secrets.token_urlsafe(16)}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A broker of our own with SSL and SASL_SSL listeners (and alice and bob for SASL)."""
    kafka = LocalKafka()
    try:
        kafka.start(data_dir=tmp_path_factory.mktemp("tls-kafka"), sasl_users=USERS, tls=True)
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unsigned JWT, which the local broker's OAUTHBEARER (unsecured validator) accepts."""

    def part(doc: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    claims = {"sub": "carol", "exp": int(time.time()) + 3 * 3600}
    path = tmp_path_factory.mktemp("oauth") / "token"
    path.write_text(f"{part({'alg': 'none'})}.{part(claims)}.\n")
    return path


def security(
    broker: LocalKafka, protocol: str, user: str = "alice", token: Path | None = None
) -> KafkaSecurity:
    if protocol == "SSL":
        return KafkaSecurity("SSL", ssl_cafile=str(broker.ca_file))
    if protocol == "OAUTHBEARER":
        assert token is not None
        return KafkaSecurity(
            "SASL_SSL", "OAUTHBEARER", oauth_token_file=str(token), ssl_cafile=str(broker.ca_file)
        )
    return KafkaSecurity(
        "SASL_SSL", "SCRAM-SHA-512", user, USERS[user], ssl_cafile=str(broker.ca_file)
    )


def listener(broker: LocalKafka, protocol: str) -> str:
    bootstrap = broker.ssl_bootstrap if protocol == "SSL" else broker.sasl_ssl_bootstrap
    assert bootstrap is not None
    return bootstrap


def test_the_tls_listeners_serve_a_certificate_for_127_0_0_1_signed_by_the_local_ca(
    broker: LocalKafka,
) -> None:
    assert broker.ca_file is not None and broker.ca_file.is_file()
    for protocol in ("SSL", "SASL_SSL"):
        host, _, port = listener(broker, protocol).rpartition(":")
        context = ssl.create_default_context(cafile=str(broker.ca_file))
        pem = ssl.get_server_certificate((host, int(port)))  # fetched without verification
        with (
            socket.create_connection((host, int(port)), 10) as s,
            context.wrap_socket(s, server_hostname=host) as tls,
        ):
            cert = tls.getpeercert()
        assert ("IP Address", "127.0.0.1") in cert["subjectAltName"]
        assert "BEGIN CERTIFICATE" in pem


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL", "OAUTHBEARER"])
def test_a_worker_on_tls_runs_the_loop_on_events_the_sdk_sends_over_tls(
    broker: LocalKafka, protocol: str, tmp_path: Path, token_file: Path
) -> None:
    bootstrap = listener(broker, protocol)
    sdk = security(broker, protocol, token=token_file)
    # The worker reads its security from the environment only, as in a deployment.
    env = {k: v for k, v in sdk.to_env().items() if v}
    prefix = protocol.lower().replace("_", "") + "-"
    settings = Settings(
        broker=bootstrap, topic_prefix=prefix, partitions=2, data_dir=tmp_path, app_id="sp"
    ).with_(web_port=free_port())
    worker = WorkerProcess(settings, bootstrap, tmp_path / "worker.log", env)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(worker.stop)
        worker.start().wait_assigned(120)
        outputs = [settings.topic("retrain-requests"), settings.topic("deployments")]
        reader = TopicReader(bootstrap, outputs, sdk)
        cleanup.callback(reader.close)
        watcher = DeploymentWatcher(
            bootstrap,
            settings.topic_prefix,
            [MODEL],
            registry_root=settings.registry_dir,
            security=security(broker, protocol, "bob", token_file),
        ).start()
        cleanup.callback(watcher.stop)
        assert watcher.wait_ready(60)
        with (
            PredictionLogger(bootstrap, prefix, security=sdk) as preds,
            LabelLogger(bootstrap, prefix, security=sdk) as labels,
            MetricLogger(bootstrap, prefix, security=sdk) as metrics,
        ):
            served = ("v1", rule_model("A", flip=0.2))
            for x in interactions(MODEL, lambda i: "A", lambda i: served, 0, 300, seed=3):
                p = x.prediction
                eid = preds.log(
                    MODEL, "v1", p["features"], p["prediction"], event_id=p["event_id"], ts=p["ts"]
                )
                labels.log(MODEL, eid, x.label["label"], ts=x.label["ts"])
            assert preds.flush(60) and labels.flush(60)
            assert (preds.sent, labels.sent, preds.failed + labels.failed) == (300, 300, 0)
            inputs = [settings.topic(t) for t in ("predictions", "labels")]
            wait_caught_up(bootstrap, prefix + "sp", inputs, timeout=120, security=sdk)
            metrics.log(MODEL, "drift", 0.5, model_version="v1", ts=T0 + 400)
            assert metrics.flush(60) and metrics.sent == 1

        reader.wait_for(lambda r: bool(r.of(outputs[1])), timeout=120, what="a deployment")
        (request,) = [r.json() for r in reader.of(outputs[0])]
        assert request["model_id"] == MODEL
        assert request["reasons"][0]["signal"] == "metric:drift"
        (deployment,) = [r.json() for r in reader.of(outputs[1])]
        assert watcher.wait_for_version(MODEL, deployment["version"], timeout=60)
    log = worker.log_path.read_text(errors="replace")
    assert "Worker ready" in log
    assert USERS["alice"] not in log


def test_a_client_that_does_not_trust_the_broker_ca_is_told_to_set_the_ca_file(
    broker: LocalKafka,
) -> None:
    untrusting = KafkaSecurity("SSL")  # the system's CAs, which never signed the local CA
    why = asyncio.run(untrusting.explain(listener(broker, "SSL"), RuntimeError("bootstrap")))
    assert "certificate verify failed" in why, why
    assert "STREAMPROC_SSL_CAFILE" in why, why
    # And a TLS client sent to the plaintext port is told the listener speaks another protocol.
    assert broker.bootstrap is not None
    trusting = security(broker, "SSL")
    why = asyncio.run(trusting.explain(broker.bootstrap, RuntimeError("bootstrap")))
    assert "STREAMPROC_SECURITY_PROTOCOL" in why, why
