"""Run a real single-node Apache Kafka broker locally (KRaft, 127.0.0.1, no Docker).

The broker's jars are fetched once from Maven Central with ``mvn`` and cached; Java 17+ runs it.
"""

from streamproc.devkit.localkafka.broker import (
    KAFKA_VERSION,
    BrokerError,
    LocalKafka,
    broker_status,
    check_java,
    check_maven,
    default_cache_dir,
    default_data_dir,
    ensure_kafka,
    probe_api_versions,
    start_broker,
    stop_broker,
    wait_ready,
)

__all__ = [
    "KAFKA_VERSION",
    "BrokerError",
    "LocalKafka",
    "broker_status",
    "check_java",
    "check_maven",
    "default_cache_dir",
    "default_data_dir",
    "ensure_kafka",
    "probe_api_versions",
    "start_broker",
    "stop_broker",
    "wait_ready",
]
