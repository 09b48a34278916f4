"""The worker's web port on a real worker: /metrics, the status API, token-guarded actions."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import orjson
import pytest

from streamproc.devkit.harness import as_json, produce
from streamproc.sim.scenarios import interactions, rule_model

pytestmark = pytest.mark.integration

MODEL = "ads-ctr"
TOKEN = "s3cret-token"


def http(port: int, path: str, body: Any = None, token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else orjson.dumps(body),
        method="GET" if body is None else "POST",
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def feed(stack: Any, count: int, bad: int = 0) -> None:
    served = ("v1", rule_model("A", flip=0.1))
    batch = list(interactions(MODEL, lambda i: "A", lambda i: served, 0, count, seed=3))
    records = [(stack.topic("predictions"), MODEL, as_json(x.prediction)) for x in batch]
    records += [(stack.topic("labels"), MODEL, as_json(x.label)) for x in batch]
    records += [(stack.topic("predictions"), MODEL, b"{not json")] * bad
    produce(stack.bootstrap, records)


def metric_value(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{want}}} not in /metrics:\n{text[:3000]}")


def test_status_metrics_and_guarded_actions(stack: Any) -> None:
    worker = stack.start_worker(env={"STREAMPROC_ADMIN_TOKEN": TOKEN})
    port = worker.settings.web_port
    feed(stack, 400, bad=3)
    stack.wait_processed()

    assert orjson.loads(http(port, "/health")[1])["ok"] is True
    status, body = http(port, "/api/status")
    assert status == 200
    models = {m["model_id"]: m for m in orjson.loads(body)["models"]}
    assert models[MODEL]["version"] == "v1"
    detail = orjson.loads(http(port, f"/api/models/{MODEL}")[1])
    signals = {s["signal"]: s for s in detail["signals"]}
    assert {"error", "prediction", "feature:x1", "feature:x2"} <= set(signals)
    assert signals["error"]["n"] > 0 and signals["error"]["threshold"] > 0
    assert detail["series"]["error"]["ts"], "the error signal has a plotted series"
    assert http(port, "/api/models/nobody")[0] == 404

    text = http(port, "/metrics")[1].decode()
    assert metric_value(text, "streamproc_events_total", topic="predictions", model=MODEL) == 400
    assert metric_value(text, "streamproc_events_total", topic="labels", model=MODEL) == 400
    assert metric_value(text, "streamproc_dead_letters_total", topic="predictions",
                        reason="not_json") == 3  # fmt: skip
    assert metric_value(text, "streamproc_label_joins_total", model=MODEL) == 400
    assert metric_value(text, "streamproc_label_join_latency_seconds_count") == 400
    assert 'streamproc_signal_statistic{detector="cusum",model="ads-ctr",signal="error"}' in text

    # Manual actions: refused without the token, accepted with it.
    assert http(port, f"/api/models/{MODEL}/retrain", {"note": "x"})[0] == 401
    assert http(port, f"/api/models/{MODEL}/retrain", {"note": "x"}, token="wrong")[0] == 401
    reader = stack.reader("retrain-requests", "deployments")
    status, body = http(port, f"/api/models/{MODEL}/retrain", {"note": "audit"}, token=TOKEN)
    assert status == 202
    rid = orjson.loads(body)["request_id"]
    reader.wait_for(lambda r: len(r.of(stack.topic("deployments"))) >= 1, 90, "the deployment")
    req = next(r.json() for r in reader.of(stack.topic("retrain-requests")))
    assert req["request_id"] == rid and req["reasons"][0]["signal"] == "manual"
    assert req["reasons"][0]["details"]["note"] == "audit"

    stack.wait_processed("deployments")
    detail = orjson.loads(http(port, f"/api/models/{MODEL}")[1])
    kinds = [d["kind"] for d in detail["decisions"] if d["request_id"] == rid]
    # The result and the deployment come on two topics, in no fixed order between them.
    assert kinds[0] == "requested" and sorted(kinds[1:]) == ["accepted", "deployed"], kinds
    new_version = detail["version"]
    assert new_version != "v1"

    # Roll back to the version the promotion replaced.
    status, body = http(port, f"/api/models/{MODEL}/rollback", {}, token=TOKEN)
    assert status == 202 and orjson.loads(body)["version"] == "v1"
    reader.wait_for(lambda r: len(r.of(stack.topic("deployments"))) >= 2, 30, "the rollback")
    back = reader.of(stack.topic("deployments"))[-1].json()
    assert back["action"] == "rollback" and back["previous_version"] == new_version

    # The command line shows the same facts as a table.
    stack.wait_processed("deployments")
    out = subprocess.run(
        [sys.executable, "-m", "streamproc", "status", "--web", f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert out[0].split()[:2] == ["model", "version"]
    row = next(line.split() for line in out if line.startswith(MODEL))
    assert row[1] == "v1" and f"succeeded {rid}".split() == row[-2:], out


def test_manual_actions_are_refused_when_no_token_is_configured(stack: Any) -> None:
    worker = stack.start_worker()
    status, body = http(worker.settings.web_port, f"/api/models/{MODEL}/retrain", {}, token="x")
    assert status == 403
    assert "STREAMPROC_ADMIN_TOKEN" in orjson.loads(body)["error"]


def test_the_watchdog_reads_waiting_records_and_commits_from_the_broker(stack: Any) -> None:
    import asyncio

    from aiokafka import TopicPartition

    from streamproc.service.topics import ensure_topics
    from streamproc.service.watchdog import look

    asyncio.run(ensure_topics(stack.settings, stack.bootstrap))
    feed(stack, 50)
    tps = [TopicPartition(stack.topic(t), p) for t in ("predictions", "labels") for p in (0, 1)]
    waiting, committed = asyncio.run(look(stack.bootstrap, stack.group_id, tps, {}))
    assert sum(waiting.values()) == 100 and set(committed.values()) == {0}  # nobody consumed
    stack.start_worker()
    stack.wait_processed("predictions", "labels")
    waiting, committed = asyncio.run(look(stack.bootstrap, stack.group_id, tps, {}))
    assert sum(waiting.values()) == 0 and sum(committed.values()) == 100
