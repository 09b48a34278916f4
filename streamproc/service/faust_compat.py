"""The one place streamproc changes how faust-streaming 0.15 behaves (private attributes).

faust keeps, per partition, a list of acked offsets (``Consumer._acked``) and commits up to the
end of the first run of consecutive offsets in it; an offset in the list twice ends the run
there, and each such duplicate holds the commit back one commit interval (issue 17: after
rebalances under load, commits trailed what was applied by thousands of records for minutes).

Where the duplicates came from (traced: on the assignment after a kill, three ``_add_gap`` of
26-27 offsets, those of two of them acked as well): faust resumes a worker's stream partitions
before it seeks them back to their committed offsets, so records fetched in between are
delivered; the seek then rewinds faust's read offset while its fetch loop is still in such a
batch, and the batch's next record looks like a jump ahead. faust marks the offsets "skipped"
as a gap, which its commit counts as acked; they had been delivered and acked too.
:func:`pause_streams_while_seeking` keeps the stream partitions paused during that seek, and
:func:`rewind_uncommitted` seeks those with no committed offset, which that seek skips, to
their start. Only faust-streaming 0.15 is touched; another version is left alone, with one
warning, and the watchdog still reports duplicates it sees.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["pause_streams_while_seeking", "supported"]

SUPPORTED = ("0.15.",)


def _faust_version() -> str:
    try:
        return version("faust-streaming")
    except PackageNotFoundError:
        return "unknown"


FAUST_VERSION = _faust_version()
_USED = ("perform_seek", "pause_partitions", "resume_partitions", "assignment",
         "_get_active_partitions", "_is_changelog_tp", "_committed_offset", "_thread",
         "app")  # fmt: skip
_warned: list[bool] = []


def supported(consumer: Any) -> bool:
    """faust-streaming 0.15 and a consumer with the methods this module relies on."""
    ok = FAUST_VERSION.startswith(SUPPORTED) and all(hasattr(consumer, name) for name in _USED)
    if not ok and not _warned:
        _warned.append(True)
        log.warning(
            "faust-streaming %s: stream partitions are not paused while faust seeks them "
            "(written for %s); commits may trail after rebalances (issue 17): watch "
            "streamproc_uncommitted_age_seconds",
            FAUST_VERSION,
            "/".join(SUPPORTED),
        )
    return ok


def pause_streams_while_seeking(consumer: Any) -> bool:
    """Keep faust from delivering a stream partition's records while it seeks it back.

    After each assignment faust resumes the stream partitions, *then* awaits its seek to the
    committed offsets (``Recovery.on_recovery_completed``; the seek takes a round trip to the
    broker). Records fetched in between, from wherever the fetch position was, are delivered;
    the seek then sets faust's read offset back to the committed one while its fetch loop is
    in the middle of such a batch, so the batch's next record looks like a jump ahead, and
    faust records the offsets in between as a gap, which its commit counts as acked
    (``Consumer._add_gap``, ``_new_offset``). Those records were in fact delivered and acked
    too: each is then in the acked list twice (issue 17), and had they not been processed
    (a record still buffered at the last revocation), the gap would commit past them.

    Pausing them for the seek (faust's own ``pause_partitions``, which its fetch loop checks
    record by record) drops the rest of such a batch; fetching resumes at the committed
    offset. They are resumed after the seek unless a new rebalance started meanwhile (that
    one pauses and resumes them itself). Returns whether it was installed (faust 0.15 only).
    """
    if not supported(consumer):
        return False
    seek = consumer.perform_seek
    app = consumer.app
    # faust also seeks from its fetch loop when it finds the flow stopped; seeks may overlap,
    # and only the last one to finish resumes what they paused.
    seeking = {"depth": 0, "rebalances": 0}
    paused: set[Any] = set()

    async def perform_seek() -> None:
        streams = {
            tp for tp in consumer._get_active_partitions() if not consumer._is_changelog_tp(tp)
        }
        seeking["depth"] += 1
        seeking["rebalances"] = app.rebalancing_count
        paused.update(streams)
        consumer.pause_partitions(streams)
        try:
            await seek()
            await rewind_uncommitted(consumer)
        finally:
            seeking["depth"] -= 1
            if not seeking["depth"]:
                if app.rebalancing_count == seeking["rebalances"]:
                    consumer.resume_partitions(paused & set(consumer.assignment()))
                paused.clear()

    consumer.perform_seek = perform_seek
    return True


async def rewind_uncommitted(consumer: Any) -> list[Any]:
    """Seek the stream partitions with no committed offset to their first record.

    faust's seek to the committed offsets is aiokafka's ``seek_to_committed``, which seeks a
    partition only when its committed offset is above 0: one with none stays wherever its
    fetch position is. faust drops records it fetched before recovery ended (its streams skip
    them while flow control is off, and a worker's first assignment fetches before it pauses
    the new partitions) and counts on that seek to fetch them again; on a partition never
    committed they were lost until the next rebalance. A worker restarted after a kill -9
    mid-retrain never saw the request again (issue 12, item 17). Seeking them to the beginning
    is what ``consumer_auto_offset_reset="earliest"`` means for a partition with no commit.
    Returns the partitions rewound.
    """
    from aiokafka import TopicPartition

    committed = consumer._committed_offset
    tps = [
        TopicPartition(tp.topic, tp.partition)
        for tp in consumer.assignment()
        if not consumer._is_changelog_tp(tp) and committed.get(tp) is None
    ]
    if tps:
        await consumer._thread.seek_to_beginning(*tps)
    return tps
