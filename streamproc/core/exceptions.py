"""The root of every error streamproc raises on purpose.

Every project exception derives from :class:`StreamprocError`, so a caller (the command line,
an operator's script) catches them all with one ``except`` and can tell them from bugs. Each
keeps its historic second base (``ValueError`` for bad input or configuration, ``RuntimeError``
for a failed operation), so ``except ValueError`` callers keep working.

The root lives in the core because the core raises most of these errors and must import
nothing outside itself; the edges (configuration, security, the command line, the local broker)
import it from here. It is re-exported as ``streamproc.StreamprocError``.

Examples
--------
>>> from streamproc.core.events import InvalidEvent
>>> issubclass(InvalidEvent, StreamprocError), issubclass(InvalidEvent, ValueError)
(True, True)
"""

from __future__ import annotations

__all__ = ["StreamprocError"]


class StreamprocError(Exception):
    """An error streamproc raised on purpose; the message says what was wrong and what to do.

    Catch it to handle every project error at once (the command line prints the message and
    exits with status 2). Anything else escaping streamproc is a bug.
    """
