"""``streamproc record``: capture live topics into replay's input (:mod:`streamproc.cli.record`)."""

from __future__ import annotations

import argparse
from typing import Any

from streamproc.cli.common import add_common, resolve_broker, settings_of


def add_parser(sub: Any) -> None:
    rec = sub.add_parser("record", help="capture live topics into replay's input format")
    add_common(rec)
    rec.add_argument("--out", required=True, help="JSONL file to write")
    rec.add_argument("--latest", action="store_true", help="only records from now on")
    rec.add_argument("--idle", type=float, default=5.0, help="stop after this many quiet seconds")
    rec.add_argument("--max", type=int, help="stop after this many records")
    rec.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streamproc.cli.record import record_to_file

    settings = settings_of(args)
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
