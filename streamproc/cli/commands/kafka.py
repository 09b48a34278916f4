"""``streamproc kafka``: install, start, stop or check the local Apache Kafka broker."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from streamproc.cli.common import add_common, settings_of


def add_parser(sub: Any) -> None:
    k = sub.add_parser("kafka", help="manage the local Apache Kafka broker")
    k.add_argument(
        "action",
        choices=["install", "start", "stop", "status"],
        help="install (download Kafka), start (prints the bootstrap address), stop, status",
    )
    k.add_argument("--port", type=int, help="broker port (default: a free one)")
    k.add_argument("--kafka-dir", help="broker data dir (default: DATA_DIR/kafka)")
    add_common(k)
    k.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streamproc.devkit.localkafka import broker_status, ensure_kafka, start_broker, stop_broker

    settings = settings_of(args)
    if args.action == "install":
        print(ensure_kafka())
        return 0
    if settings.broker:
        print(f"STREAMPROC_BROKER is set: using {settings.broker}; no local broker is managed.")
        return 0
    kafka_dir = Path(args.kafka_dir) if args.kafka_dir else settings.data_dir / "kafka"
    if args.action == "start":
        print(start_broker(port=args.port, data_dir=kafka_dir))
    elif args.action == "stop":
        print("stopped" if stop_broker(kafka_dir) else "not running")
    else:
        status = broker_status(kafka_dir)
        if not status:
            print("not running")
            return 1
        if not status.get("ready"):
            print(f"starting or unresponsive at {status['bootstrap']} (pid {status['pid']})")
            return 1
        print(f"running at {status['bootstrap']} (pid {status['pid']}, data {kafka_dir})")
    return 0
