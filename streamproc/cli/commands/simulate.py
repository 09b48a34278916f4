"""``streamproc simulate``: an inference server on a drifting world (:mod:`streamproc.sim.live`)."""

from __future__ import annotations

import argparse
from typing import Any

from streamproc.cli.common import add_common, resolve_broker, settings_of


def add_parser(sub: Any) -> None:
    sim = sub.add_parser("simulate", help="an inference server on a drifting world, live")
    add_common(sim)
    sim.add_argument(
        "--stream",
        default="stagger",
        choices=("sea", "stagger", "hyperplane", "sea_shift"),
        help="the drifting world (streamproc.sim.worlds; default: stagger)",
    )
    sim.add_argument("--events", type=int, default=25_000, help="events to serve (default: 25000)")
    sim.add_argument(
        "--lag", type=int, default=50, help="events before a label arrives (default: 50)"
    )
    sim.add_argument("--rate", type=float, default=2000.0, help="events per second (default: 2000)")
    sim.add_argument("--model-id", default="sim", help="the simulated model's id (default: sim)")
    sim.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streamproc.sim.live import simulate, summary_lines

    settings = settings_of(args)
    outcome = simulate(
        settings,
        resolve_broker(settings, start=False),
        stream=args.stream,
        events=args.events,
        lag=args.lag,
        rate=args.rate,
        model_id=args.model_id,
        say=print,
    )
    print("\n".join(summary_lines(outcome)))
    return 0
