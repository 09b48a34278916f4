"""What the commands share: the common options, the settings they give, the log level, the broker.

Kept light (no Kafka or core imports at module level) so that building the parser stays fast.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from streamproc.config import Settings

log = logging.getLogger("streamproc")

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

# The event contracts, in the repository (and in the installed package's source tree).
CONTRACTS_URL = "docs/contracts.md in the streamproc repository"


def loglevel(args: argparse.Namespace) -> str:
    """The level asked for: ``-l/--loglevel``, else debug with ``-v``, else info."""
    chosen = getattr(args, "loglevel", None)
    return str(chosen) if chosen else ("debug" if getattr(args, "verbose", False) else "info")


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings: the environment, overridden by the common options given."""
    return Settings.from_env(
        broker=getattr(args, "broker", None),
        topic_prefix=getattr(args, "prefix", None),
        partitions=getattr(args, "partitions", None),
        policy_file=getattr(args, "policy", None),
        data_dir=Path(args.data_dir) if getattr(args, "data_dir", None) else None,
        app_id=getattr(args, "app_id", None),
        web_port=getattr(args, "web_port", None),
    )


def add_common(p: argparse.ArgumentParser) -> None:
    """The options every command that reads settings takes (each with its variable)."""
    p.add_argument("--broker", help="bootstrap servers of an existing cluster (STREAMPROC_BROKER)")
    p.add_argument("--prefix", help="topic prefix (STREAMPROC_TOPIC_PREFIX)")
    p.add_argument("--partitions", type=int, help="partitions of created topics")
    p.add_argument("--policy", help="trigger policy TOML file (STREAMPROC_POLICY)")
    p.add_argument("--data-dir", help="state, registry and local broker data (STREAMPROC_DATA_DIR)")
    p.add_argument("--app-id", help="consumer group / app id (STREAMPROC_APP_ID)")
    p.add_argument("--web-port", type=int, help="worker web port (STREAMPROC_WEB_PORT)")


def resolve_broker(settings: Settings, start: bool = True) -> str:
    """The configured cluster, else the local broker (started if it is not running)."""
    if settings.broker:
        from streamproc.cli.preflight import check_broker_reachable

        check_broker_reachable(settings.broker)
        return settings.broker
    from streamproc.devkit.localkafka import broker_status, start_broker

    kafka_dir = settings.data_dir / "kafka"
    status = broker_status(kafka_dir)
    if status and status.get("ready"):
        return str(status["bootstrap"])
    if not start:
        raise SystemExit(
            "no broker: set STREAMPROC_BROKER to your cluster, or run `streamproc kafka start`."
        )
    bootstrap = start_broker(data_dir=kafka_dir)
    log.info(
        "started the local Kafka broker at %s (stop it with `streamproc kafka stop`)", bootstrap
    )
    return bootstrap
