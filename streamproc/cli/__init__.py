"""The ``streamproc`` command line: one module per command (worker and kafka live with the service
and the devkit; ``simulate`` in :mod:`streamproc.sim.live`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from streamproc.config import Settings
from streamproc.core.exceptions import StreamprocError

log = logging.getLogger("streamproc")

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

# The event contracts, in the repository (and in the installed package's source tree).
CONTRACTS_URL = "docs/contracts.md in the streamproc repository"


def _loglevel(args: argparse.Namespace) -> str:
    """The level asked for: ``-l/--loglevel``, else debug with ``-v``, else info."""
    chosen = getattr(args, "loglevel", None)
    return str(chosen) if chosen else ("debug" if getattr(args, "verbose", False) else "info")


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        broker=getattr(args, "broker", None),
        topic_prefix=getattr(args, "prefix", None),
        partitions=getattr(args, "partitions", None),
        policy_file=getattr(args, "policy", None),
        data_dir=Path(args.data_dir) if getattr(args, "data_dir", None) else None,
        app_id=getattr(args, "app_id", None),
        web_port=getattr(args, "web_port", None),
    )


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


def cmd_kafka(args: argparse.Namespace) -> int:
    from streamproc.devkit.localkafka import broker_status, ensure_kafka, start_broker, stop_broker

    settings = _settings(args)
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


def cmd_worker(args: argparse.Namespace) -> int:
    from streamproc.cli.preflight import check_worker
    from streamproc.service.worker import run_worker

    settings = _settings(args)
    check_worker(settings)  # before a broker starts or a topic is created
    run_worker(settings, resolve_broker(settings), loglevel=_loglevel(args))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from streamproc.cli.demo import run_demo

    return run_demo(_settings(args), linger_s=args.linger)


def cmd_simulate(args: argparse.Namespace) -> int:
    from streamproc.sim.live import simulate, summary_lines

    settings = _settings(args)
    run = simulate(
        settings,
        resolve_broker(settings, start=False),
        stream=args.stream,
        events=args.events,
        lag=args.lag,
        rate=args.rate,
        model_id=args.model_id,
        say=print,
    )
    print("\n".join(summary_lines(run)))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from streamproc.cli.preflight import PreflightError
    from streamproc.cli.replay import ReplaySummary, replay_file
    from streamproc.core.policy import load_policy

    book = load_policy(args.policy)
    try:
        open(args.input, "rb").close()
    except OSError as exc:
        raise PreflightError(
            f"cannot read the replay input {args.input!r} ({exc.strerror}); give a JSONL file "
            "such as `streamproc record --out FILE` writes."
        ) from None
    summary = ReplaySummary()
    replay_file(args.input, args.out, book, retrain_for_real=args.retrain, summary=summary)
    print("\n".join(summary.lines()))
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from streamproc.cli.record import record_to_file

    settings = _settings(args)
    n = record_to_file(
        settings,
        resolve_broker(settings, start=False),
        args.out,
        from_beginning=not args.latest,
        idle_s=args.idle,
        max_records=args.max,
    )
    print(f"recorded {n} records to {args.out}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from streamproc.cli.status import format_table, gather

    urls = args.web or [f"http://127.0.0.1:{_settings(args).web_port}"]
    models, errors = gather(urls)
    for err in errors:
        print(f"streamproc: {err}", file=sys.stderr)
    if models or not errors:
        print(format_table(models))
    return 1 if errors else 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker", help="bootstrap servers of an existing cluster (STREAMPROC_BROKER)")
    p.add_argument("--prefix", help="topic prefix (STREAMPROC_TOPIC_PREFIX)")
    p.add_argument("--partitions", type=int, help="partitions of created topics")
    p.add_argument("--policy", help="trigger policy TOML file (STREAMPROC_POLICY)")
    p.add_argument("--data-dir", help="state, registry and local broker data (STREAMPROC_DATA_DIR)")
    p.add_argument("--app-id", help="consumer group / app id (STREAMPROC_APP_ID)")
    p.add_argument("--web-port", type=int, help="worker web port (STREAMPROC_WEB_PORT)")


def _version() -> str:
    from streamproc import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamproc", description="Automated model retraining triggers on Kafka."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {_version()}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    k = sub.add_parser("kafka", help="manage the local Apache Kafka broker")
    k.add_argument(
        "action",
        choices=["install", "start", "stop", "status"],
        help="install (download Kafka), start (prints the bootstrap address), stop, status",
    )
    k.add_argument("--port", type=int, help="broker port (default: a free one)")
    k.add_argument("--kafka-dir", help="broker data dir (default: DATA_DIR/kafka)")
    _common(k)
    k.set_defaults(func=cmd_kafka)

    w = sub.add_parser("worker", help="run the drift and retrain agents")
    _common(w)
    w.add_argument(
        "-l",
        "--loglevel",
        type=str.lower,
        choices=LOG_LEVELS,
        help="logging level, as faust's -l (default: info, or debug with -v)",
    )
    w.set_defaults(func=cmd_worker)

    d = sub.add_parser("demo", help="live demo on a local broker: drift -> retrain -> deploy")
    _common(d)
    d.add_argument("--linger", type=float, default=0.0, help="keep the dashboard up N s at the end")
    d.set_defaults(func=cmd_demo)

    sim = sub.add_parser("simulate", help="an inference server on a drifting world, live")
    _common(sim)
    sim.add_argument("--stream", default="stagger", help="sea, stagger, hyperplane, sea_shift")
    sim.add_argument("--events", type=int, default=25_000, help="events to serve (default: 25000)")
    sim.add_argument("--lag", type=int, default=50, help="events before a label arrives")
    sim.add_argument("--rate", type=float, default=2000.0, help="events per second")
    sim.add_argument("--model-id", default="sim", help="the simulated model's id (default: sim)")
    sim.set_defaults(func=cmd_simulate)

    st = sub.add_parser("status", help="each model's version, signals and retrains, as a table")
    _common(st)
    st.add_argument("--web", action="append", help="a worker's web address (repeat for each)")
    st.set_defaults(func=cmd_status)

    r = sub.add_parser(
        "replay",
        help="backtest a policy on recorded traffic (no Kafka)",
        epilog=f"Event fields (every field of every event): {CONTRACTS_URL}",
    )
    r.add_argument("input", help="JSONL: {topic, value} per line, in arrival order")
    r.add_argument("--policy", help="trigger policy TOML file")
    r.add_argument("--out", help="write emitted events here (JSONL)")
    r.add_argument("--retrain", action="store_true", help="run the built-in trainer and gate")
    r.set_defaults(func=cmd_replay)

    rec = sub.add_parser("record", help="capture live topics into replay's input format")
    _common(rec)
    rec.add_argument("--out", required=True, help="JSONL file to write")
    rec.add_argument("--latest", action="store_true", help="only records from now on")
    rec.add_argument("--idle", type=float, default=5.0, help="stop after this many quiet seconds")
    rec.add_argument("--max", type=int, help="stop after this many records")
    rec.set_defaults(func=cmd_record)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = _loglevel(args).upper()
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger().setLevel(level)  # also when logging was configured before us
    from aiokafka.errors import KafkaConnectionError

    try:
        return int(args.func(args) or 0)
    except (StreamprocError, ConnectionError) as exc:  # every project error; a refused socket
        print(f"streamproc: {exc}", file=sys.stderr)
        return 2
    except KafkaConnectionError as exc:
        print(
            f"streamproc: cannot connect to the Kafka broker ({exc}); check STREAMPROC_BROKER "
            "(or --broker), or unset it to use the local broker (`streamproc kafka start`).",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
