"""``streamproc status`` formatting and gathering (no worker: an unreachable one is reported)."""

from __future__ import annotations

from streamproc.cli.status import format_table, gather
from streamproc.devkit.harness import free_port


def test_table_lines_up_and_shows_retrains_in_flight() -> None:
    models = [
        {"model_id": "a", "version": "v1", "deployed_at": None, "nearest_signal": None,
         "in_flight": {"request_id": "rr-9"}, "last_result": None},
        {"model_id": "bbbbbbbb", "version": "v-long-version", "deployed_at": 0.0,
         "nearest_signal": {"signal": "feature:x1", "ratio": 1.234},
         "in_flight": None, "last_result": {"status": "rejected", "request_id": "rr-3"}},
    ]  # fmt: skip
    lines = format_table(models, now=7200.0 * 3).splitlines()
    assert lines[0].split()[:2] == ["model", "version"]
    assert lines[1].split() == ["a", "v1", "-", "-", "-", "rr-9", "-"]
    assert lines[2].split() == ["bbbbbbbb", "v-long-version", "6h", "ago", "feature:x1", "1.23",
                                "-", "rejected", "rr-3"]  # fmt: skip
    # Columns start at the same place on every line.
    assert lines[0].index("version") == lines[1].index("v1") == lines[2].index("v-long")


def test_a_worker_that_does_not_answer_is_named_with_what_to_do() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    models, errors = gather([url])
    assert models == []
    assert len(errors) == 1 and url in errors[0] and "--web" in errors[0]
