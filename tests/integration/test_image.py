"""The container image, built from the Dockerfile, runs the whole loop against the real broker.

CI builds the image with ``deploy/image/build.sh`` (buildah, no Docker engine) and names it in
``STREAMPROC_TEST_IMAGE``; elsewhere the test is skipped (it fails instead where
``STREAMPROC_REQUIRE_TOOLS`` is set). The worker runs inside the image as the image's own user,
with buildah's chroot isolation, which shares the host's network: it reaches the test broker on
127.0.0.1 and serves its web port there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from test_loop import run_seed_table

from streamproc.devkit.harness import WorkerProcess, free_port, missing_tool

pytestmark = pytest.mark.integration

BUILDAH = ["buildah", "--storage-driver", "vfs"]


@pytest.fixture
def container() -> Iterator[str]:
    image = os.environ.get("STREAMPROC_TEST_IMAGE")
    if not image or shutil.which("buildah") is None:
        missing_tool("no image to test: build one with deploy/image/build.sh, then set "
                     "STREAMPROC_TEST_IMAGE to its tag (needs buildah)")  # fmt: skip
    name = subprocess.run(
        [*BUILDAH, "from", image], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        yield name
    finally:
        subprocess.run([*BUILDAH, "rm", name], capture_output=True)


@dataclass
class ImageWorker(WorkerProcess):
    """``streamproc worker`` inside the image: the image's user, PATH and working folder."""

    container: str = ""

    def start(self) -> ImageWorker:
        s = self.settings
        env = {"STREAMPROC_WEB_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"}
        cmd = [
            *BUILDAH, "run", "--isolation", "chroot",
            *(f"--env={k}={v}" for k, v in env.items()),
            self.container, "--",
            "streamproc", "worker",
            "--broker", self.bootstrap,
            "--prefix", s.topic_prefix,
            "--partitions", str(s.partitions),
            "--data-dir", "/data/worker",  # the image's volume, owned by its user
            "--app-id", s.app_id,
            "--web-port", str(s.web_port),
        ]  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        return self


def test_the_image_runs_the_loop_as_its_own_user(stack: Any, container: str) -> None:
    whoami = subprocess.run(
        [*BUILDAH, "run", "--isolation", "chroot", container, "--", "id", "-u"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    assert whoami == "10001"  # the Dockerfile's USER, not root
    s = stack.settings.with_(web_port=free_port())
    worker = ImageWorker(s, stack.bootstrap, s.data_dir / "image-worker.log", container=container)
    stack.workers.append(worker.start())
    worker.wait_assigned(180)
    requests, deployments, steps = run_seed_table(stack)
    assert steps == [3, 5]
    assert [r["reasons"][0]["value"] for r in requests] == [0.12, 0.15]
    assert len(deployments) == 2
    with urllib.request.urlopen(f"http://127.0.0.1:{s.web_port}/health", timeout=10) as resp:
        assert resp.status == 200
