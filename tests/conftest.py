"""Fixtures: one real Kafka broker per test session, and an isolated stack per test.

The broker is the project's own local Kafka (assembled from Maven Central, KRaft, 127.0.0.1);
STREAMPROC_TEST_BROKER points the tests at another cluster instead. Each test gets its own topic
prefix, consumer group and data dir, so tests never see each other's records.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from streamproc.config import Settings
from streamproc.devkit.harness import TopicReader, WorkerProcess, free_port, wait_caught_up


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("STREAMPROC_TEST_BROKER")
    if external:
        yield external
        return
    from streamproc.devkit.localkafka import LocalKafka

    broker = LocalKafka()
    bootstrap = broker.start(data_dir=tmp_path_factory.mktemp("kafka"))
    try:
        yield bootstrap
    finally:
        broker.stop()


# Scripts the integration tests run as external trainers: programs, not test modules.
collect_ignore_glob = ["integration/trainers/*"]

_counter = itertools.count()


@dataclass
class Stack:
    """An isolated streamproc deployment on the session broker: topics, workers, a reader."""

    bootstrap: str
    settings: Settings
    workers: list[WorkerProcess] = field(default_factory=list)
    readers: list[TopicReader] = field(default_factory=list)

    def topic(self, logical: str) -> str:
        return self.settings.topic(logical)

    @property
    def group_id(self) -> str:
        return self.settings.topic_prefix + self.settings.app_id

    def start_worker(self, env: dict[str, str] | None = None, **overrides: object) -> WorkerProcess:
        s = self.settings.with_(web_port=free_port(), **overrides)
        log = s.data_dir / f"worker{len(self.workers)}.log"
        w = WorkerProcess(s, self.bootstrap, log, extra_env=env or {})
        self.workers.append(w.start())
        w.wait_assigned(90)
        return w

    def reader(self, *logical: str) -> TopicReader:
        r = TopicReader(self.bootstrap, [self.topic(t) for t in logical])
        self.readers.append(r)
        return r

    def wait_processed(self, *logical: str, timeout: float = 60.0) -> None:
        names = [self.topic(t) for t in (logical or ("predictions", "labels", "metrics"))]
        wait_caught_up(self.bootstrap, self.group_id, names, timeout)

    def close(self) -> None:
        for r in self.readers:
            r.close()
        for w in self.workers:
            w.stop()


@pytest.fixture
def stack(kafka: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    prefix = f"t{next(_counter)}{uuid.uuid4().hex[:6]}-"
    settings = Settings(
        broker=kafka, topic_prefix=prefix, partitions=2, data_dir=tmp_path, app_id="sp"
    )
    st = Stack(kafka, settings)
    try:
        yield st
    finally:
        st.close()
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            for w in st.workers:
                print(f"--- {w.log_path} (tail)\n{w.tail(60)}")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
