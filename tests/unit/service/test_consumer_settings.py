"""The consumer settings the worker's faust app is built with, and why they matter."""

from __future__ import annotations

from pathlib import Path

from streamproc.config import Settings
from streamproc.service.alignment import MAX_WAITING
from streamproc.service.app import MAX_POLL_RECORDS, create_app


def test_one_fetch_pass_hands_faust_fewer_records_than_may_wait_for_alignment(
    tmp_path: Path,
) -> None:
    # faust's default hands over a whole fetch per pass (an 8 MiB fetch: some 60,000
    # single-event records), and a partition paused for record-time alignment stops only at
    # the next pass: a pass must fit, many times over, in what may wait.
    conf = create_app(Settings(data_dir=tmp_path), "127.0.0.1:1").app.conf
    assert conf.broker_max_poll_records == MAX_POLL_RECORDS
    assert 0 < MAX_POLL_RECORDS * 4 <= MAX_WAITING
