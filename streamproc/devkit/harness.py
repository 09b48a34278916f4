"""Test and demo kit: run workers as real processes, produce to and read from real topics.

Used by the integration tests and ``streamproc demo``; nothing here is mocked.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streamproc.config import Settings
from streamproc.security import KafkaSecurity


def _secured(security: KafkaSecurity | None) -> dict[str, Any]:
    """aiokafka keyword arguments of ``security``, or of the environment's settings."""
    return (security if security is not None else KafkaSecurity.from_env()).aiokafka_kwargs()


def missing_tool(message: str) -> None:
    """Skip the calling test for a missing tool, or fail it where the tools are required (CI)."""
    import pytest

    if os.environ.get("STREAMPROC_REQUIRE_TOOLS"):
        pytest.fail(f"{message} (STREAMPROC_REQUIRE_TOOLS is set: CI must run this test)")
    pytest.skip(message)


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    def json(self) -> Any:
        return orjson.loads(self.value) if self.value else None


# (topic, key, value), or (topic, key, value, timestamp in ms since the epoch)
Outgoing = tuple[str, str | bytes | None, bytes] | tuple[str, str | bytes | None, bytes, int]


async def produce_async(
    bootstrap: str,
    records: Iterable[Outgoing],
    security: KafkaSecurity | None = None,
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        max_request_size=16 * 1024 * 1024,
        **_secured(security),
    )
    await producer.start()
    try:
        futs = []
        for topic, key, value, *ts in records:
            k = key.encode() if isinstance(key, str) else key
            futs.append(
                await producer.send(topic, value=value, key=k, timestamp_ms=ts[0] if ts else None)
            )
        await asyncio.gather(*futs)
    finally:
        await producer.stop()


def produce(
    bootstrap: str,
    records: Iterable[Outgoing],
    security: KafkaSecurity | None = None,
) -> None:
    """Send ``(topic, key, value)`` records in order and wait for every ack; a fourth element,
    if given, is the record's timestamp (ms since the epoch; else the time of sending).

    ``security`` defaults to the environment's (``KafkaSecurity.from_env``), as everywhere here.
    """
    asyncio.run(produce_async(bootstrap, list(records), security))


def as_json(value: Any) -> bytes:
    return orjson.dumps(value)


async def group_lag(
    bootstrap: str,
    group_id: str,
    topics: Sequence[str],
    security: KafkaSecurity | None = None,
) -> int:
    """Records in ``topics`` not yet committed by consumer group ``group_id``."""
    secured = _secured(security)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, **secured)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **secured)
    await consumer.start()
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
        parts = [
            TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]
        ]
        if len({tp.topic for tp in parts}) != len(set(topics)):
            raise RuntimeError(f"some of {topics} do not exist (found {parts})")
        ends = await consumer.end_offsets(parts)
        committed = await admin.list_consumer_group_offsets(group_id, partitions=parts)
        lag = 0
        for tp in parts:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag += max(ends[tp] - done, 0)
        return lag
    finally:
        await admin.close()
        await consumer.stop()


def wait_caught_up(
    bootstrap: str,
    group_id: str,
    topics: Sequence[str],
    timeout: float = 60.0,
    security: KafkaSecurity | None = None,
    on_poll: Callable[[], object] = lambda: None,
) -> None:
    """Block until the group has committed every record now in ``topics``.

    ``on_poll`` runs between looks (a test plays the process manager there).
    """
    deadline = time.monotonic() + timeout
    lag = -1
    while time.monotonic() < deadline:
        on_poll()
        lag = asyncio.run(group_lag(bootstrap, group_id, topics, security))
        if lag == 0:
            return
        time.sleep(0.5)
    raise TimeoutError(f"group {group_id} still {lag} records behind after {timeout}s")


class TopicReader:
    """Reads topics from the beginning, keeping everything seen, for polling from sync code."""

    def __init__(
        self, bootstrap: str, topics: Sequence[str], security: KafkaSecurity | None = None
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = list(topics)
        self._secured = _secured(security)
        self.records: list[Record] = []
        self._loop = asyncio.new_event_loop()
        self._consumer: AIOKafkaConsumer | None = None

    def _start(self) -> None:
        async def start() -> AIOKafkaConsumer:
            c = AIOKafkaConsumer(
                *self.topics,
                bootstrap_servers=self.bootstrap,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                group_id=None,
                **self._secured,
            )
            await c.start()
            return c

        self._consumer = self._loop.run_until_complete(start())

    def poll(self, timeout: float = 0.5) -> list[Record]:
        if self._consumer is None:
            self._start()
        assert self._consumer is not None
        batches = self._loop.run_until_complete(
            self._consumer.getmany(timeout_ms=int(timeout * 1000), max_records=10000)
        )
        new = [
            Record(tp.topic, tp.partition, m.offset, m.key, m.value)
            for tp, msgs in batches.items()
            for m in msgs
        ]
        self.records.extend(new)
        return new

    def of(self, topic: str) -> list[Record]:
        return [r for r in self.records if r.topic == topic]

    def wait_for(
        self,
        predicate: Callable[[TopicReader], bool],
        timeout: float = 60.0,
        what: str = "",
        on_poll: Callable[[], object] = lambda: None,
    ) -> None:
        """Poll until ``predicate(self)`` holds; raise TimeoutError saying what was awaited.
        ``on_poll`` runs between polls (a test plays the process manager there)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll(0.3)
            if predicate(self):
                return
            on_poll()
        counts = {t: len(self.of(t)) for t in self.topics}
        raise TimeoutError(
            f"timed out after {timeout}s waiting for {what or predicate}; seen {counts}"
        )

    def settle(self, quiet_s: float = 2.0, timeout: float = 30.0) -> None:
        """Read to the end offsets of the call (:meth:`read_to_end`), then poll until nothing new
        has arrived for ``quiet_s`` seconds (for records produced after the call).

        The first step is an event: a quiet spell alone can be faked by a consumer slow to
        start, which then misses what the topics already held.
        """
        self.read_to_end(timeout)
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_new < quiet_s:
            if self.poll(0.3):
                last_new = time.monotonic()

    def read_to_end(self, timeout: float = 120.0) -> None:
        """Poll until every record the topics held when this was called has been read.

        Waits for an event (the reader's position reaches the end offsets taken at the call),
        where :meth:`settle` waits for a quiet spell, which a consumer slow to start (a fresh
        broker, a busy machine) can fake. ``timeout`` only separates slow from hung.
        """
        if self._consumer is None:
            self._start()
        consumer = self._consumer
        assert consumer is not None

        async def ends() -> dict[TopicPartition, int]:
            parts = [
                TopicPartition(t, p)
                for t in self.topics
                for p in sorted(consumer.partitions_for_topic(t) or ())
            ]
            return dict(await consumer.end_offsets(parts)) if parts else {}

        async def behind(end: dict[TopicPartition, int]) -> list[TopicPartition]:
            return [tp for tp, off in end.items() if await consumer.position(tp) < off]

        deadline = time.monotonic() + timeout
        end = self._loop.run_until_complete(ends())
        while len(end) < len(self.topics) and time.monotonic() < deadline:  # metadata pending
            self.poll(0.3)
            end = self._loop.run_until_complete(ends())
        while True:
            late = self._loop.run_until_complete(behind(end))
            if not late:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"read_to_end: still behind on {late} after {timeout}s")
            self.poll(0.3)

    def close(self) -> None:
        if self._consumer is not None:
            self._loop.run_until_complete(self._consumer.stop())
        self._loop.close()


@dataclass
class WorkerProcess:
    """A ``streamproc worker`` running as a separate OS process, as in production.

    The child inherits the environment, then gets ``settings.security`` (unless plaintext) as
    ``STREAMPROC_SECURITY_PROTOCOL`` / ``STREAMPROC_SASL_*`` / ``STREAMPROC_SSL_*`` and
    ``settings.web_host`` as ``STREAMPROC_WEB_HOST``, ``TMPDIR`` in its data dir, then
    ``extra_env``, which wins.
    """

    settings: Settings
    bootstrap: str
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        s = self.settings
        cmd = [
            sys.executable, "-m", "streamproc", "worker",
            "--broker", self.bootstrap,
            "--prefix", s.topic_prefix,
            "--partitions", str(s.partitions),
            "--data-dir", str(s.data_dir),
            "--app-id", s.app_id,
            "--web-port", str(s.web_port),
        ]  # fmt: skip
        if s.policy_file:
            cmd += ["--policy", s.policy_file]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child from here on
        # Temporary files of the worker and of what it runs (trainer commands' artifacts) go in
        # its data dir, removed with it, instead of piling up in /tmp.
        tmp = s.data_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **({} if s.security.plaintext else s.security.to_env()),
            "STREAMPROC_WEB_HOST": s.web_host,  # the CLI has no flag for it
            "TMPDIR": str(tmp),
            **self.extra_env,
            "PYTHONUNBUFFERED": "1",
        }
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        return self

    def wait_assigned(self, timeout: float = 60.0) -> None:
        """Block until the worker's log shows it joined the group and got its partitions."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.tail()}")
            if "Worker ready" in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready after {timeout}s:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def dump_tasks(self) -> str:
        """Where the worker waits, in a few dozen lines: a test's timeout message.

        A live worker logs every asyncio task's stack (SIGUSR1); what comes back is its log's
        notable lines (warnings, errors, rebalances, recoveries, retrains), the stacks of the
        tasks that run streamproc code, and faust's view of its partitions. A full log would
        be cut by CI's output limit, and faust's start-up lines hide what matters."""
        if self.proc is None:
            return "(never started)"
        if self.proc.poll() is not None:
            return f"(exited with {self.proc.returncode})\n{self.tail(10)}"
        self.proc.send_signal(signal.SIGUSR1)
        time.sleep(1.0)
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return diagnosis(text)

    def healthy(self) -> bool | None:
        """What the worker's ``/health`` says: True, False (503: stalled), None (no answer)."""
        import urllib.error
        import urllib.request

        url = f"http://127.0.0.1:{self.settings.web_port}/health"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return bool(resp.status == 200)
        except urllib.error.HTTPError as err:
            return False if err.code == 503 else None
        except OSError:
            return None

    def restart(self) -> WorkerProcess:
        """Stop (kill if need be) and start again with the same settings, as a supervisor does."""
        self.stop()
        return self.start()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


_TASK = "streamproc.service.worker: task "  # how dump_tasks (service.worker) starts a stack
_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_NOTABLE = re.compile(
    r" (WARNING|ERROR|CRITICAL) |[Rr]ebalanc|Recovery|[Aa]ssign|[Rr]evok|retrain|deploy"
    r"|Worker ready|\[\^Worker\]: (Starting|Stopping)"
)


def diagnosis(log_text: str, notable: int = 40) -> str:
    """A worker log cut to what says where it waits (see :meth:`WorkerProcess.dump_tasks`).

    The last task dump in ``log_text`` is kept only for tasks whose stack runs streamproc code,
    plus the consumer-state record that ends it; before it, the last ``notable`` one-line
    records that warn, fail, rebalance, recover, retrain or deploy.
    """
    records: list[list[str]] = []
    for line in log_text.splitlines():
        if _RECORD.match(line) or not records:
            records.append([line])
        else:
            records[-1].append(line)
    dump_at = max((i for i, r in enumerate(records) if _TASK in r[0]), default=len(records))
    while dump_at > 0 and _TASK in records[dump_at - 1][0]:
        dump_at -= 1  # back to the dump's first task
    before = [r[0] for r in records[:dump_at] if _NOTABLE.search(r[0])][-notable:]
    dump = [
        "\n".join(r)
        for r in records[dump_at:]
        if _TASK not in r[0] or any("streamproc/" in line for line in r[1:])
    ]
    return "\n".join(["notable log lines:", *before, "streamproc tasks:", *dump])
