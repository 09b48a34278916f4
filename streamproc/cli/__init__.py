"""The ``streamproc`` command line: one module per command in :mod:`streamproc.cli.commands`.

Each command's work lives beside it (``preflight``, ``replay``, ``record``, ``status``, ``demo``;
the worker in :mod:`streamproc.service.worker`, the local broker in :mod:`streamproc.devkit`,
``simulate`` in :mod:`streamproc.sim.live`). Every project error becomes one sentence on stderr
and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

from streamproc.cli.common import loglevel
from streamproc.core.exceptions import StreamprocError

__all__ = ["build_parser", "main"]


def _version() -> str:
    from streamproc import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command, each registered by its module."""
    from streamproc.cli.commands import COMMANDS

    parser = argparse.ArgumentParser(
        prog="streamproc", description="Automated model retraining triggers on Kafka."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {_version()}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = loglevel(args).upper()
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
