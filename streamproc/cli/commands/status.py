"""``streamproc status``: each model's version, signals and retrains, from the workers' web API."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from streamproc.cli.common import add_common, settings_of


def add_parser(sub: Any) -> None:
    st = sub.add_parser("status", help="each model's version, signals and retrains, as a table")
    add_common(st)
    st.add_argument("--web", action="append", help="a worker's web address (repeat for each)")
    st.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streamproc.cli.status import format_table, gather

    urls = args.web or [f"http://127.0.0.1:{settings_of(args).web_port}"]
    models, errors = gather(urls)
    for err in errors:
        print(f"streamproc: {err}", file=sys.stderr)
    if models or not errors:
        print(format_table(models))
    return 1 if errors else 0
