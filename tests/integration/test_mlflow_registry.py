"""The MLflow registry against a real MLflow tracking server (sqlite store) on 127.0.0.1.

The server is the full ``mlflow`` package of the ``test`` extra, started and stopped (by its
process group) by the ``mlflow_server`` fixture; the registry itself only uses the client.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamproc.core.events import DeploymentEvent
from streamproc.core.registry import CHAMPION, Registry, RegistryError
from streamproc.core.training import train
from streamproc.devkit.harness import as_json, free_port, produce

pytestmark = pytest.mark.integration

mlflow = pytest.importorskip("mlflow", reason="the test extra installs mlflow (the server)")

START_S = 240.0  # a busy 2-core machine imports mlflow's server in 10-90 s


class MlflowServer:
    def __init__(self, root: Path, proxied: bool = False) -> None:
        self.root = root
        self.proxied = proxied
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.artifacts = root / "artifacts"
        self.log_path = root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MlflowServer:
        argv = [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            *(["--artifacts-destination", str(self.artifacts)] if self.proxied
              else ["--default-artifact-root", str(self.artifacts)]),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--workers", "1",
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            # Its own process group: the server forks uvicorn and a job runner; stop() ends all.
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server not healthy after {START_S:.0f} s:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # the group this fixture created (start_new_session)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        # Children (uvicorn, the job runner) may outlive the CLI by a moment.
        for _ in range(60):
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.5)
        os.killpg(pgid, signal.SIGKILL)

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def proxied_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """Artifacts served through the server (mlflow-artifacts:/), as a remote MLflow does."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-proxied"), proxied=True).start()
    try:
        yield server
    finally:
        server.stop()


def test_registry_through_proxied_artifacts(proxied_server: MlflowServer) -> None:
    from mlflow import MlflowClient

    from streamproc.service.training.mlflow_registry import MlflowRegistry

    reg = MlflowRegistry(proxied_server.url)
    mv = reg.register("proxied", "v-p", b"weights over http", created_ts=1.0)
    client = MlflowClient(tracking_uri=proxied_server.url)
    source = client.get_model_version_download_uri(reg.name("proxied"), "1")
    assert source.startswith("mlflow-artifacts:/")  # uploaded to the server, not a local path
    assert reg.load("proxied", "v-p") == b"weights over http"
    reg.set_alias("proxied", CHAMPION, "v-p")
    assert reg.load_uri(f"models:/proxied@{CHAMPION}") == b"weights over http"
    (stored,) = proxied_server.artifacts.rglob("artifact.bin")
    stored.write_bytes(b"tampered")
    with pytest.raises(RegistryError, match="fails its checksum"):
        reg.load_uri(mv.artifact_uri)


def test_registry_round_trip_aliases_and_checksums(mlflow_server: MlflowServer) -> None:
    from mlflow import MlflowClient

    from streamproc.client import DeploymentWatcher
    from streamproc.service.training.mlflow_registry import TAG_SHA256, TAG_VERSION, MlflowRegistry

    reg = MlflowRegistry(mlflow_server.url)
    assert isinstance(reg, Registry)
    mid = "fraud/eu:1"  # "/" and ":" are not allowed in MLflow names: escaped
    name = reg.name(mid)
    model_a = train([[{"x": float(i % 10)}, i % 10 >= 5] for i in range(200)])
    model_b = train([[{"x": float(i % 10)}, i % 10 >= 3] for i in range(200)])
    art_a, art_b = pickle.dumps(model_a), pickle.dumps(model_b)

    metrics = {"candidate_error": 0.1, "gate": "better"}
    mv_a = reg.register(
        mid, "v-a", art_a, created_ts=100.0, parent_version="v1", request_id="rr-a", metrics=metrics
    )
    mv_b = reg.register(mid, "v-b", art_b, created_ts=200.0, parent_version="v-a")
    again = reg.register(mid, "v-a", art_a, created_ts=100.0)  # a re-run after a crash
    assert again == mv_a

    # Found by tag with MLflow's own search, independently of the registry's code.
    client = MlflowClient(tracking_uri=mlflow_server.url)
    found = client.search_model_versions(f"name = '{name}' and tags.`{TAG_VERSION}` = 'v-b'")
    assert [mv.tags[TAG_SHA256] for mv in found] == [mv_b.sha256]
    assert len(client.search_model_versions(f"name = '{name}'")) == 2  # the re-run added none

    assert reg.get(mid, "v-a") == mv_a
    assert mv_a.metrics == {"candidate_error": 0.1, "gate": "better"}
    assert mv_a.parent_version == "v1" and mv_a.request_id == "rr-a"
    assert mv_a.artifact_uri.startswith(f"models:/{name}/")
    assert reg.get(mid, "v-missing") is None
    assert [v.version for v in reg.versions(mid)] == ["v-a", "v-b"]
    assert reg.load(mid, "v-a") == art_a and reg.load(mid, "v-b") == art_b
    assert reg.load_uri(mv_b.artifact_uri) == art_b

    # The champion alias: set, moved by a promotion, moved back by a rollback.
    assert reg.get_alias(mid, CHAMPION) is None
    reg.set_alias(mid, CHAMPION, "v-a")
    assert client.get_model_version_by_alias(name, CHAMPION).tags[TAG_VERSION] == "v-a"
    reg.set_alias(mid, CHAMPION, "v-b")  # promotion
    assert reg.get_alias(mid, CHAMPION) == mv_b
    assert reg.load_uri(f"models:/{name}@{CHAMPION}") == art_b
    reg.set_alias(mid, CHAMPION, "v-a")  # rollback
    assert client.get_model_version_by_alias(name, CHAMPION).tags[TAG_VERSION] == "v-a"
    assert reg.load_uri(f"models:/{name}@{CHAMPION}") == art_a
    with pytest.raises(RegistryError, match="register it first"):
        reg.set_alias(mid, CHAMPION, "v-never-registered")
    reg.delete_alias(mid, CHAMPION)  # what a deployment of an unregistered version does
    assert reg.get_alias(mid, CHAMPION) is None
    assert CHAMPION not in client.get_registered_model(name).aliases
    reg.delete_alias(mid, CHAMPION)  # nothing to delete: no error

    # The SDK's watcher loads the models:/ URI a deployment event carries.
    watcher = DeploymentWatcher("127.0.0.1:1", "", [mid], registry=reg)
    dep = DeploymentEvent("dep-b", mid, "v-b", "promote", ts=1.0, artifact_uri=mv_b.artifact_uri)
    assert watcher.handle(dep)
    assert watcher.current(mid).version == "v-b"
    assert watcher.predict(mid, {"x": 4.0}) == model_b.predict({"x": 4.0})

    # An artifact changed in the store fails its checksum: never loaded, never served.
    stored = list(mlflow_server.artifacts.rglob("artifact.bin"))
    assert len(stored) == 2
    for path in stored:
        path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(RegistryError, match="fails its checksum"):
        reg.load(mid, "v-a")
    rollback = DeploymentEvent(
        "dep-a", mid, "v-a", "rollback", ts=2.0, artifact_uri=mv_a.artifact_uri
    )
    watcher._previous.clear()  # force a load from the registry, not the swap's memory
    assert not watcher.handle(rollback)
    assert watcher.failures == 1 and watcher.current(mid).version == "v-b"


def test_live_worker_registers_in_mlflow_and_moves_champion(
    mlflow_server: MlflowServer, stack: Any
) -> None:
    """A worker with STREAMPROC_REGISTRY=mlflow: retrains land in MLflow, champion follows."""
    from test_retraining import ask_retrain, of, send_traffic, wait_until

    from streamproc.service.training.mlflow_registry import MlflowRegistry

    env = {"STREAMPROC_REGISTRY": "mlflow", "MLFLOW_TRACKING_URI": mlflow_server.url}
    stack.start_worker(env=env)
    reg = MlflowRegistry(mlflow_server.url)
    mid = "mlf-live"
    reader = stack.reader("retrain-results", "deployments")
    send_traffic(stack, mid, 400, flip=0.05)
    stack.wait_processed()

    def champion() -> str | None:
        mv = reg.get_alias(mid, CHAMPION)
        return None if mv is None else mv.version

    deployed: list[dict[str, Any]] = []
    for n, rid in enumerate(["rq-mlf-1", "rq-mlf-2"], start=1):
        ask_retrain(stack, (mid, rid))
        reader.wait_for(lambda r, n=n: len(of(r, stack, "deployments", mid)) >= n, 120, rid)
        dep = of(reader, stack, "deployments", mid)[n - 1]
        assert dep["action"] == "promote"
        assert dep["artifact_uri"].startswith(f"models:/{reg.name(mid)}/")
        wait_until(lambda dep=dep: champion() == dep["version"], 60, "champion on the promotion")
        model = pickle.loads(reg.load_uri(dep["artifact_uri"]))
        assert callable(model.predict)
        deployed.append(dep)
    results = of(reader, stack, "retrain-results", mid)
    assert [r["status"] for r in results] == ["succeeded", "succeeded"]

    # An operator's rollback to the first candidate, as the web API publishes it.
    first, second = deployed
    rollback = {
        "deployment_id": "manual-rb-mlf",
        "model_id": mid,
        "version": first["version"],
        "previous_version": second["version"],
        "artifact_uri": first["artifact_uri"],
        "action": "rollback",
        "ts": time.time(),
    }
    produce(stack.bootstrap, [(stack.topic("deployments"), mid, as_json(rollback))])
    wait_until(lambda: champion() == first["version"], 60, "champion back on the rollback")
    assert [v.version for v in reg.versions(mid)] == [first["version"], second["version"]]
