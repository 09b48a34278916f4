"""The container image, built from the Dockerfile by Docker, runs the whole loop against the broker.

The test starts its own Docker engine (Debian's docker.io: ``dockerd`` on a private socket, data
and state folders, stopped by its pid at the end), builds the image with
``deploy/image/build.sh`` (a base made from Debian's packages, as Docker Hub may be out of reach,
then ``docker build``) and runs ``streamproc worker`` in a container against the test broker.
The engine runs without a bridge or iptables rules (``--bridge=none --iptables=false``: it
touches nothing of the host's network), so the build and the container use the host's network:
the worker reaches the broker on 127.0.0.1 and serves its web port there. Needs root, dockerd,
docker and debootstrap; without them the test is skipped (it fails instead where
``STREAMPROC_REQUIRE_TOOLS`` is set, as in CI).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from test_loop import run_seed_table

from streamproc.devkit.harness import WorkerProcess, free_port, missing_tool

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TAG = "streamproc:test"


def _mounts_under(folder: Path) -> list[str]:
    """Mount points below ``folder``, deepest first (the order to unmount them)."""
    prefix = str(folder) + "/"
    with open("/proc/mounts") as f:
        points = [line.split()[1] for line in f]
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


def _stop_dockerd(proc: subprocess.Popen[bytes], root: Path) -> None:
    """SIGTERM (dockerd stops its containers and its containerd), then remove its folders.

    dockerd leaves its network namespace (``exec/netns/default``) mounted after it exits, and
    whatever a killed engine left mounted, so those are unmounted before the folder goes.
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    for point in _mounts_under(root):
        subprocess.run(["umount", point], capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def docker_env() -> Iterator[dict[str, str]]:
    """A private dockerd; the environment (``DOCKER_HOST``) a ``docker`` command reaches it with."""
    missing = [t for t in ("dockerd", "docker", "debootstrap") if shutil.which(t) is None]
    if missing or os.geteuid() != 0:
        missing_tool(f"the image test needs root and {', '.join(missing) or 'nothing else'}: "
                     "apt-get install docker.io debootstrap, and run as root")  # fmt: skip
    # A short path: containerd's socket lives under the exec root, and a socket path must stay
    # under 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="streamproc-dockerd-"))
    (root / "daemon.json").write_text("{}")  # not the host's /etc/docker/daemon.json
    log_path = root / "dockerd.log"
    cmd = [
        "dockerd",
        "--iptables=false", "--bridge=none",  # the host's network and firewall untouched
        f"--host=unix://{root}/docker.sock",
        f"--data-root={root}/data",
        f"--exec-root={root}/exec",
        f"--pidfile={root}/dockerd.pid",
        f"--config-file={root}/daemon.json",
    ]  # fmt: skip
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    env = {**os.environ, "DOCKER_HOST": f"unix://{root}/docker.sock"}
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"dockerd exited with {proc.returncode}:\n{_tail(log_path)}")
            ping = subprocess.run(["docker", "version"], env=env, capture_output=True, check=False)
            if ping.returncode == 0:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"dockerd not answering after 120 s:\n{_tail(log_path)}")
            time.sleep(0.5)
        yield env
    finally:
        _stop_dockerd(proc, root)


@pytest.fixture(scope="module")
def image(docker_env: dict[str, str]) -> str:
    """The Dockerfile built on a Debian-made base (``deploy/image/build.sh``)."""
    build = subprocess.run(
        [str(ROOT / "deploy" / "image" / "build.sh"), TAG],
        env=docker_env, capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    assert build.returncode == 0, f"deploy/image/build.sh failed:\n{build.stderr}"
    return build.stdout.strip().splitlines()[-1]


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class ImageWorker(WorkerProcess):
    """``streamproc worker`` in a container of the image: its user, PATH and working folder.

    ``docker run`` stays in the foreground and passes the SIGTERM of ``stop`` on to the worker.
    """

    image: str = ""
    docker_env: dict[str, str] = field(default_factory=dict)
    name: str = field(default_factory=lambda: f"streamproc-test-{uuid.uuid4().hex[:8]}")

    def start(self) -> ImageWorker:
        s = self.settings
        cmd = [
            "docker", "run", "--rm", "--name", self.name,
            "--network", "host",  # the engine has no bridge; the broker is on 127.0.0.1
            "--env", "STREAMPROC_WEB_HOST=127.0.0.1",  # the image's 0.0.0.0 is for a bridge
            self.image,
            "worker",
            "--broker", self.bootstrap,
            "--prefix", s.topic_prefix,
            "--partitions", str(s.partitions),
            "--data-dir", "/data/worker",  # the image's volume, owned by its user
            "--app-id", s.app_id,
            "--web-port", str(s.web_port),
        ]  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=self.docker_env
            )
        return self

    def stop(self, timeout: float = 20.0) -> int | None:
        code = super().stop(timeout)
        # Gone already after a clean exit (--rm); this is for a docker CLI that had to be killed.
        subprocess.run(
            ["docker", "rm", "--force", self.name],
            env=self.docker_env, capture_output=True, check=False,
        )  # fmt: skip
        return code


def test_the_image_runs_the_loop_as_its_own_user(
    stack: Any, docker_env: dict[str, str], image: str
) -> None:
    whoami = subprocess.run(
        ["docker", "run", "--rm", "--network", "host", "--entrypoint", "id", image, "-u"],
        env=docker_env, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    assert whoami == "10001"  # the Dockerfile's USER, not root
    s = stack.settings.with_(web_port=free_port())
    worker = ImageWorker(
        s, stack.bootstrap, s.data_dir / "image-worker.log", image=image, docker_env=docker_env
    )
    stack.workers.append(worker.start())
    worker.wait_assigned(180)
    requests, deployments, steps = run_seed_table(stack)
    assert steps == [3, 5]
    assert [r["reasons"][0]["value"] for r in requests] == [0.12, 0.15]
    assert len(deployments) == 2
    with urllib.request.urlopen(f"http://127.0.0.1:{s.web_port}/health", timeout=10) as resp:
        assert resp.status == 200
