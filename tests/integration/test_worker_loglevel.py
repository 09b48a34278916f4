"""``streamproc worker -l LEVEL`` logs at that level (issue 12 item 7), on a real broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest

from streamproc.devkit.harness import as_json, free_port, produce

pytestmark = pytest.mark.integration


def run_worker(stack: Any, level: str) -> tuple[str, int]:
    """Start a worker at ``level``, have it make one retrain request, stop it; its log."""
    s = stack.settings
    port = free_port()
    log_path = s.data_dir / f"worker-{level}.log"
    cmd = [
        sys.executable, "-m", "streamproc", "worker", "-l", level,
        "--broker", stack.bootstrap, "--prefix", s.topic_prefix,
        "--partitions", str(s.partitions), "--data-dir", str(s.data_dir),
        "--app-id", f"{s.app_id}-{level.lower()}", "--web-port", str(port),
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # up when its web server answers
            assert proc.poll() is None, log_path.read_text(errors="replace")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        reader = stack.reader("retrain-requests")
        before = len(reader.records)
        metric = {"model_id": f"m-{level}", "ts": 1.0, "name": "drift", "value": 0.9}
        produce(stack.bootstrap, [(stack.topic("metrics"), f"m-{level}", as_json(metric))])
        reader.wait_for(
            lambda r: any(f"m-{level}".encode() in x.value for x in r.records[before:]),
            timeout=90,
            what="the worker's retrain request",
        )
    finally:
        proc.terminate()
        proc.wait(30)
    return log_path.read_text(errors="replace"), proc.returncode


def test_warning_hides_info_and_debug_shows_debug(stack: Any) -> None:
    quiet, _ = run_worker(stack, "WARNING")
    assert " INFO " not in quiet and " DEBUG " not in quiet
    loud, _ = run_worker(stack, "debug")
    assert " DEBUG " in loud and "retrain requested" in loud
