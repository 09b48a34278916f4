"""The README's inference server runs as written, against the real local broker and a worker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_server() -> str:
    """The README's ```python block after "A complete small inference server", as written."""
    text = README.read_text()
    at = text.index("A complete small inference server")
    m = re.compile(r"^```python\n(.*?)^```$", re.M | re.S).search(text, at)
    assert m, "no python block after 'A complete small inference server' in README.md"
    return m.group(1)


def test_the_readme_inference_server_runs_as_written(stack: Any, tmp_path: Path) -> None:
    stack.start_worker()  # as the README says: the worker is running (and made the topics)
    script = tmp_path / "server.py"
    script.write_text(readme_server())
    env = {
        **os.environ,
        "STREAMPROC_BROKER": stack.bootstrap,
        "STREAMPROC_TOPIC_PREFIX": stack.settings.topic_prefix,
        "STREAMPROC_DATA_DIR": str(stack.settings.data_dir),
    }
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = done.stdout.strip().splitlines()[-1]
    assert "'prediction': True" in answer, answer
    # What it sent is on the topics: the prediction, and the label answering it.
    reader = stack.reader("predictions", "labels")
    reader.wait_for(
        lambda r: bool(r.of(stack.topic("labels")) and r.of(stack.topic("predictions"))),
        timeout=30,
        what="the README server's prediction and label",
    )
    [pred] = [x.json() for x in reader.of(stack.topic("predictions"))]
    [label] = [x.json() for x in reader.of(stack.topic("labels"))]
    assert pred["model_id"] == "fraud-eu" and pred["model_version"] == "v1"
    assert pred["features"] == {"amount": 250.0, "country": "DE"} and pred["prediction"] is True
    assert label["event_id"] == pred["event_id"] and label["label"] is False
    assert f"'event_id': '{pred['event_id']}'" in answer
