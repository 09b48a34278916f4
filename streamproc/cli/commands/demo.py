"""``streamproc demo``: the live demo on a local broker (:mod:`streamproc.cli.demo`)."""

from __future__ import annotations

import argparse
from typing import Any

from streamproc.cli.common import add_common, settings_of


def add_parser(sub: Any) -> None:
    d = sub.add_parser("demo", help="live demo on a local broker: drift -> retrain -> deploy")
    add_common(d)
    d.add_argument("--linger", type=float, default=0.0, help="keep the dashboard up N s at the end")
    d.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streamproc.cli.demo import run_demo

    return run_demo(settings_of(args), linger_s=args.linger)
