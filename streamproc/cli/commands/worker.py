"""``streamproc worker``: check what can be checked without a broker, then run the agents."""

from __future__ import annotations

import argparse
from typing import Any

from streamproc.cli.common import LOG_LEVELS, add_common, loglevel, resolve_broker, settings_of


def add_parser(sub: Any) -> None:
    w = sub.add_parser("worker", help="run the drift and retrain agents")
    add_common(w)
    w.add_argument(
        "-l",
        "--loglevel",
        type=str.lower,
        choices=LOG_LEVELS,
        help="logging level, as faust's -l (default: info, or debug with -v)",
    )
    w.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streamproc.cli.preflight import check_worker
    from streamproc.service.worker import run_worker

    settings = settings_of(args)
    check_worker(settings)  # before a broker starts or a topic is created
    run_worker(settings, resolve_broker(settings), loglevel=loglevel(args))
    return 0
