"""The one place streamproc changes faust's private commit bookkeeping (faust-streaming 0.15).

faust keeps, per partition, a list of acked offsets (``Consumer._acked``) and commits up to the
end of the first run of consecutive offsets in it. An offset in that list twice ends the run
there: each duplicate holds the commit back one commit interval (``broker_commit_interval``,
1 s). After rebalances under load the list of a worker held hundreds of duplicates, and the
committed offsets trailed what was applied by thousands of records for minutes (issue 17).
The first cause found was streamproc's own acks during a revocation, after faust had cleared the
list (no longer done: :meth:`Checkpointer.release`); duplicates still formed afterwards, on a
worker's first assignment too, by a path inside faust not pinned down. So after each release
of held events, :func:`drop_duplicate_acks` rewrites the lists without duplicates.

A duplicate carries no information (the offset is acked either way), so dropping it changes
nothing but the commit's pace. Only faust-streaming 0.15 is touched (the attributes are
private); another version is left alone, with one warning, and the watchdog still reports
duplicates it sees.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["drop_duplicate_acks", "supported"]

SUPPORTED = ("0.15.",)


def _faust_version() -> str:
    try:
        return version("faust-streaming")
    except PackageNotFoundError:
        return "unknown"


FAUST_VERSION = _faust_version()
_warned: list[bool] = []


def supported(consumer: Any) -> bool:
    """faust-streaming 0.15 and a consumer with the bookkeeping this module knows."""
    ok = FAUST_VERSION.startswith(SUPPORTED) and isinstance(getattr(consumer, "_acked", None), dict)
    if not ok and not _warned:
        _warned.append(True)
        log.warning(
            "faust-streaming %s: duplicate acked offsets are not dropped (written for %s); "
            "commits may trail after rebalances (issue 17): watch "
            "streamproc_uncommitted_age_seconds",
            FAUST_VERSION,
            "/".join(SUPPORTED),
        )
    return ok


def drop_duplicate_acks(consumer: Any) -> dict[Any, int]:
    """Rewrite faust's acked-offset lists without duplicates; return how many went, by partition.

    The index faust checks before it appends an ack gets every listed offset, so an offset
    already listed is not appended again.
    """
    if not supported(consumer):
        return {}
    dropped: dict[Any, int] = {}
    index = consumer._acked_index
    for tp, acked in consumer._acked.items():
        distinct = set(acked)
        if len(distinct) != len(acked):
            dropped[tp] = len(acked) - len(distinct)
            acked[:] = sorted(distinct)
            index[tp].update(distinct)
    return dropped
