"""The Kafka client settings the worker's faust app is built with, and why they matter."""

from __future__ import annotations

from pathlib import Path

from streamproc.config import Settings
from streamproc.service.alignment import MAX_WAITING
from streamproc.service.app import (
    MAX_POLL_RECORDS,
    PRODUCER_BATCH_BYTES,
    create_app,
    producer_batch_bytes,
)


def test_one_fetch_pass_hands_faust_fewer_records_than_may_wait_for_alignment(
    tmp_path: Path,
) -> None:
    # faust's default hands over a whole fetch per pass (an 8 MiB fetch: some 60,000
    # single-event records), and a partition paused for record-time alignment stops only at
    # the next pass: a pass must fit, many times over, in what may wait.
    conf = create_app(Settings(data_dir=tmp_path), "127.0.0.1:1").app.conf
    assert conf.broker_max_poll_records == MAX_POLL_RECORDS
    assert 0 < MAX_POLL_RECORDS * 4 <= MAX_WAITING


def test_a_changelog_batch_holds_many_snapshots_and_a_request_stays_under_the_brokers_cap(
    tmp_path: Path,
) -> None:
    # faust's default batch (16 KiB) held one snapshot (a fleet model's is about 19 KB), so a
    # checkpoint's writes went a few per request and its wait for their acks took 1-2.8 s
    # of every 4-5 s (10,000 models). A request carries one batch per partition a broker
    # leads, and a broker drops one over 100 MiB (its default): the snapshots' changelog
    # stays within 64 MiB a request up to 4,096 partitions (faust's own default from there).
    conf = create_app(Settings(data_dir=tmp_path), "127.0.0.1:1").app.conf
    assert conf.producer_max_batch_size == PRODUCER_BATCH_BYTES >= 50 * 19_000
    for partitions in (1, 4, 64, 120, 1000, 4096):
        wide = create_app(Settings(data_dir=tmp_path, partitions=partitions), "127.0.0.1:1")
        batch = wide.app.conf.producer_max_batch_size
        assert batch == producer_batch_bytes(partitions) >= 16 * 1024
        assert partitions * batch <= 64 * 1024 * 1024
