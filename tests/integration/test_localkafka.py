"""The local Kafka broker (streamproc.devkit.localkafka) serves real clients and stops cleanly."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streamproc.devkit.localkafka import (
    BrokerError,
    LocalKafka,
    broker_status,
    check_java,
    stop_broker,
)

TOPIC = "localkafka-smoke"


def _pid_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


async def _create_topic(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
        assert TOPIC in await admin.list_topics()
    finally:
        await admin.close()


async def _roundtrip(bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(TOPIC, key=b"k", value=b"hello kafka")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        TOPIC, bootstrap_servers=bootstrap, group_id="localkafka-test", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
    finally:
        await consumer.stop()
    assert (record.key, record.value) == (b"k", b"hello kafka")


async def _topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return list(await admin.list_topics())
    finally:
        await admin.close()


@pytest.mark.integration
def test_local_broker_serves_clients_and_stops(tmp_path: Path) -> None:
    data_dir = tmp_path / "kafka"
    broker = LocalKafka()
    bootstrap = broker.start(data_dir=data_dir)
    try:
        assert bootstrap.startswith("127.0.0.1:")
        assert broker.is_running()
        status = broker_status(data_dir)
        assert status is not None
        assert status["bootstrap"] == bootstrap
        assert status["ready"] is True

        asyncio.run(_create_topic(bootstrap))
        asyncio.run(_roundtrip(bootstrap))
    finally:
        pid = broker.pid
        broker.stop()

    assert pid is not None
    assert not broker.is_running()
    assert _pid_gone(pid)
    assert broker_status(data_dir) is None
    assert stop_broker(data_dir) is False


@pytest.mark.integration
def test_restart_keeps_cluster_id_port_and_topics(tmp_path: Path) -> None:
    data_dir = tmp_path / "kafka"
    broker = LocalKafka()
    first = broker.start(data_dir=data_dir)
    try:
        cluster_id = (data_dir / "cluster-id").read_text()
        asyncio.run(_create_topic(first))
    finally:
        broker.stop()

    second = broker.start(data_dir=data_dir)
    try:
        assert second == first
        assert (data_dir / "cluster-id").read_text() == cluster_id
        assert TOPIC in asyncio.run(_topics(second))
    finally:
        pid = broker.pid
        # Stopping through the state file is what the CLI does from another process.
        assert stop_broker(data_dir) is True
    assert pid is not None and _pid_gone(pid)
    assert not broker.is_running()


def test_missing_java_is_reported_in_one_sentence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError, match=r"^Java 17 or newer is required .*docker compose"):
        check_java()
