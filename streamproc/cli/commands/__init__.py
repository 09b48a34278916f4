"""One module per ``streamproc`` command: ``add_parser`` registers it, ``run`` carries it out.

Each module imports what its command needs inside ``run``, so building the parser (and
``streamproc --help``) loads neither Kafka clients nor the core.
"""

from __future__ import annotations

from streamproc.cli.commands import demo, kafka, record, replay, simulate, status, worker

# In the order ``streamproc --help`` lists them.
COMMANDS = (kafka, worker, demo, simulate, status, replay, record)

__all__ = ["COMMANDS"]
