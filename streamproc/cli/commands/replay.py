"""``streamproc replay``: backtest a policy on recorded traffic (:mod:`streamproc.cli.replay`)."""

from __future__ import annotations

import argparse
from typing import Any

from streamproc.cli.common import CONTRACTS_URL


def add_parser(sub: Any) -> None:
    r = sub.add_parser(
        "replay",
        help="backtest a policy on recorded traffic (no Kafka)",
        epilog=f"Event fields (every field of every event): {CONTRACTS_URL}",
    )
    r.add_argument("input", help="JSONL: {topic, value} per line, in arrival order")
    r.add_argument("--policy", help="trigger policy TOML file")
    r.add_argument("--out", help="write emitted events here (JSONL)")
    r.add_argument("--retrain", action="store_true", help="run the built-in trainer and gate")
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
