"""The one place streamproc touches faust's private API (checked on faust-streaming 0.15.3).

Every name below is private to faust (or undocumented behaviour); nothing else in streamproc
uses one. When raising the faust-streaming bound in ``pyproject.toml``, read each against the
new version's source; ``tests/unit/service/test_private_apis.py`` fails, naming the attribute,
when one is gone.

==========================================  ==================================================
``Consumer.perform_seek``                   wrapped: stream partitions paused while faust
                                            seeks them (:func:`pause_streams_while_seeking`)
``Consumer._get_active_partitions``,        the partitions faust seeks, its changelog test,
``._is_changelog_tp``,                      its committed and read offsets, its consumer
``._committed_offset``, ``._read_offset``,  thread (:func:`rewind_uncommitted`,
``._thread``                                :func:`committed_offsets`, :func:`read_offsets`)
``Consumer.getmany``                        wrapped: a jump in a partition's offsets is
                                            fetched again, not skipped (:func:`refuse_gaps`)
``Consumer._commit_offsets``                wrapped: every commit held to what was applied
                                            (:func:`guard_commits`)
``Consumer._acked``                         acked offsets per partition (read only:
                                            :func:`acked_offsets`)
``Consumer._active_partitions``             the partitions faust fetches (read, and written
                                            back by the watchdog: :func:`active_partitions`)
``Consumer._paused_partitions``,            paused, and held back for a full buffer (read:
``._buffered_partitions``                   :func:`paused_partitions`, :func:`buffered_partitions`;
                                            the partitions :func:`hold` asks for are paused by
                                            faust's ``pause_partitions``, and taken out of the
                                            buffered set, which faust makes active again
                                            without looking at the paused one)
``ConsumerThread._ensure_consumer``,        the records aiokafka fetched and has not handed
aiokafka's ``Consumer._fetcher``,           to faust yet, per partition (read only, a
``Fetcher._records``                        membership test: :func:`fetched_ahead`)
``faust.streams._current_event``            the event being processed, which a table write
                                            takes its partition from (:func:`at_partition`,
                                            :func:`no_current_event`)
``faust.web.base.BlueprintManager``,        the built-in views a web server mounts at start
``Web.blueprints``                          (:func:`without_builtin_views`)
``Producer._producer``                      the aiokafka producer under faust's; its
                                            ``client.add_topic`` (public in aiokafka) keeps
                                            every written topic's metadata
                                            (:func:`track_written_topics`)
==========================================  ==================================================

``Collection._sensor_on_set`` is no longer used: a table write reports to the sensors through the
public ``app.sensors.on_table_set`` it aliases. Public names whose behaviour the checkpoints rely on
(listed so an upgrade checks them too): ``Message.incref``/``Message.ack`` (an event held until a
checkpoint is not committable), ``Sensors.on_message_out``, ``App.consumer_generation_id``,
``App.flow_control.is_active()`` and ``Message.generation_id`` (records fetched before a
rebalance), ``Collection.on_key_set``/``send_changelog``/``partition_for_key`` (overridden by
:class:`~streamproc.service.app.ModelTable`).

A record stranded in aiokafka's producer
----------------------------------------
aiokafka's client asks for the metadata of the topics it tracks, and of every topic only while
it tracks none; a refresh *replaces* what it knew. A topic is tracked when a send finds its
metadata missing. So once a worker tracks some topics (the changelogs, created after start), a
refresh drops the partitions of every topic it wrote to while the metadata was complete (the
retrain requests, the deployments), and a batch of such a topic appended just before a refresh
finds no leader: the sender asks for metadata again, of the same tracked topics, until the batch
expires (faust's ``producer_request_timeout``, 20 minutes). In the crash test (CI, 2026-11-30)
a retrain request and the retrain agent's ledger write waited so after the survivor's rebalance,
when faust's topic declarations force refreshes. With aiokafka alone (the integration test
``test_producer_metadata.py``): track topic B, send to A (known, untracked), refresh; A's
record is not delivered. :func:`track_written_topics` registers the topics a worker writes
with the client at start (those it created itself: tracking a missing topic could have a broker
auto-create it), so no refresh leaves one out, and a stranded batch finds its leader at the
next refresh.

Duplicate acked offsets (issue 17)
----------------------------------
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

import asyncio
import logging
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import faust
from faust.streams import _current_event
from faust.web.base import BlueprintManager

from streamproc.service.commitguard import CommitGuard

log = logging.getLogger(__name__)

__all__ = [
    "PRIVATE",
    "PRIVATE_CLIENT",
    "PRIVATE_CONSUMER",
    "acked_offsets",
    "active_partitions",
    "at_partition",
    "buffered_partitions",
    "committed_offsets",
    "forget_holds",
    "guard_commits",
    "hold",
    "no_current_event",
    "pause_streams_while_seeking",
    "paused_partitions",
    "read_offsets",
    "refuse_gaps",
    "rewind",
    "rewind_uncommitted",
    "supported",
    "track_topics",
    "track_written_topics",
    "without_builtin_views",
]

SUPPORTED = ("0.15.",)
# Every private name used here, for tests/unit/service/test_private_apis.py: (module, name) of a
# module attribute, and the consumer's own attributes (set in faust's Consumer.__init__).
PRIVATE = (("faust.streams", "_current_event"), ("faust.web.base", "BlueprintManager"))
# The faust consumer thread's, then aiokafka's consumer's and fetcher's (fetched_ahead).
PRIVATE_CLIENT = ("_ensure_consumer", "_fetcher", "_records")

PRIVATE_CONSUMER = (
    "_commit_offsets",
    "_acked",
    "_active_partitions",
    "_paused_partitions",
    "_buffered_partitions",
    "_committed_offset",
    "_read_offset",
    "_thread",
    "_get_active_partitions",
    "_is_changelog_tp",
)


def _faust_version() -> str:
    try:
        return version("faust-streaming")
    except PackageNotFoundError:
        return "unknown"


FAUST_VERSION = _faust_version()
_USED = ("perform_seek", "seek", "pause_partitions", "resume_partitions", "assignment",
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
    (the Consumer methods ``_add_gap`` and ``_new_offset``). Those records were in fact
    delivered and acked too: each is then in the acked list twice (issue 17), and had they
    not been processed (a record still buffered at the last revocation), the gap would commit
    past them.

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


# -- commits held to what was applied (streamproc.service.commitguard) ---------------------------


def guard_commits(consumer: Any, guard: CommitGuard) -> bool:
    """Pass every commit faust makes through ``guard`` (``Consumer._commit_offsets``).

    faust records what it passes on as committed (``_committed_offset``), so a partition
    held back stays held until records are released past it. Returns whether it was
    installed (faust 0.15 only).
    """
    if not supported(consumer) or not hasattr(consumer, "_commit_offsets"):
        return False
    commit = consumer._commit_offsets

    async def _commit_offsets(offsets: Any, *args: Any, **kwargs: Any) -> bool:
        committed = {tp: consumer._committed_offset.get(tp) for tp in offsets}
        clamped = guard.clamp(offsets, committed, consumer.app.consumer_generation_id)
        if not clamped.allowed:
            return False
        return bool(await commit(clamped.allowed, *args, **kwargs))

    consumer._commit_offsets = _commit_offsets
    return True


# Rewinds asked for outside the fetch loop (the watchdog), done by refuse_gaps' wrapper at the start
# of its next fetch: a seek made while the loop waits on a record would be undone by the loop
# setting that record's read offset after it.
_REWINDS: weakref.WeakKeyDictionary[Any, dict[Any, int]] = weakref.WeakKeyDictionary()
# Partitions to hold (pause) and those this module paused, applied by the same wrapper at the
# start of a fetch: faust's fetch loop drops, unread, the rest of a batch's records of a
# partition paused while it iterates the batch (its position already past them).
_HOLDS: weakref.WeakKeyDictionary[Any, _Holds] = weakref.WeakKeyDictionary()


class _Holds:
    def __init__(self) -> None:
        self.wanted: frozenset[Any] = frozenset()
        self.paused: set[Any] = set()

    def apply(self, consumer: Any) -> None:
        """Pause what is wanted, resume what no longer is; never during a rebalance (faust
        pauses and resumes every stream partition itself then: :func:`forget_holds`)."""
        if not (self.wanted or self.paused) or not consumer.app.flow_control.is_active():
            return
        assigned = set(consumer.assignment())
        active = consumer._get_active_partitions()
        buffered: set[Any] = getattr(consumer, "_buffered_partitions", set())
        # Paused again if faust fetches it: when its stream buffer drains, faust makes a
        # partition it held back for a full buffer active again, paused or not.
        pause = {tp for tp in self.wanted & assigned
                 if tp not in self.paused or tp in active or tp in buffered}  # fmt: skip
        if pause:
            buffered.difference_update(pause)
            consumer.pause_partitions(pause)
            self.paused |= pause
        resume = self.paused - self.wanted
        if resume:
            consumer.resume_partitions(resume & assigned)
            self.paused -= resume


def refuse_gaps(consumer: Any) -> bool:
    """Never let faust skip records it did not deliver: fetch them again instead.

    faust's fetch loop (its consumer's message drain) treats a record whose offset is more
    than one past the partition's read offset as a gap: it records the offsets in between as
    acked, delivers the record, and commits past them. After rebalances under load such jumps
    were false: a worker given a partition at committed offset 194 was handed offset 531
    next (traced), and the 336 records between were committed unapplied (issue 17). Applying
    the later record first would also make the monitors skip the earlier ones as redelivered
    (they keep the last offset applied). So before faust sees a record past a jump on a
    partition it acks, the partition is sought back to the read offset (on the consumer
    thread) and the rest of its batch dropped: the records come again in order.

    A jump found again at the same offsets after that is believed: the broker has no records
    there (transaction markers, compaction, retention), and faust records its gap as before.
    A jump over one offset is believed at once, as a transaction's commit marker, and faust's
    read offset is moved up to it so that faust does not list the record after it twice. (A
    false jump over exactly one offset would thus lose that record: none was seen; the ones
    traced skipped hundreds.) Wraps ``Consumer.getmany`` (faust 0.15 only); returns whether
    it was installed. :func:`rewind` queues seeks that the wrapper makes.
    """
    if not supported(consumer) or not hasattr(consumer, "getmany"):
        return False
    getmany = consumer.getmany
    read = consumer._read_offset
    acks_enabled_for = consumer.app.topics.acks_enabled_for
    pending = _REWINDS.setdefault(consumer, {})
    holds = _HOLDS.setdefault(consumer, _Holds())
    tried: dict[Any, tuple[int, int]] = {}  # partition -> (read offset, offset jumped to)

    async def seek(tp: Any, offset: int) -> None:
        if tp not in consumer.assignment():
            return  # revoked meanwhile: faust seeks it at its next assignment
        try:
            await consumer._thread.seek_wait({tp: offset})  # sets faust's read offset too
        except Exception as exc:  # the fetch loop must not die of it
            log.warning("%s[%d]: could not seek to offset %d (%r)",
                        tp.topic, tp.partition, offset, exc)  # fmt: skip

    async def refetching(timeout: float) -> Any:
        for tp in list(pending):
            await seek(tp, pending.pop(tp))
        holds.apply(consumer)
        dropped: set[Any] = set()
        async for tp, message in getmany(timeout=timeout):
            if tp in dropped:
                continue
            r_offset = read.get(tp)
            jump = message.offset - r_offset if r_offset else 0
            if jump > 1 and acks_enabled_for(message.topic) and not consumer._is_changelog_tp(tp):
                if jump == 2:
                    read[tp] = message.offset - 1  # a commit marker: no gap, no duplicate ack
                elif tried.get(tp) == (r_offset, message.offset):
                    log.info("%s[%d]: no records between offsets %d and %d (fetched again)",
                             tp.topic, tp.partition, r_offset, message.offset)  # fmt: skip
                else:
                    tried[tp] = (r_offset, message.offset)
                    log.warning(
                        "%s[%d]: faust's fetch jumped from offset %d to %d; fetching the "
                        "records between again instead of committing them unapplied (issue 17)",
                        tp.topic, tp.partition, r_offset, message.offset,
                    )  # fmt: skip
                    dropped.add(tp)
                    await seek(tp, r_offset)
                    continue
            jumped_to = tried.get(tp)
            if jumped_to is not None and message.offset >= jumped_to[1]:
                del tried[tp]  # past the jump: the records between came, or there are none
            yield tp, message

    consumer.getmany = refetching
    return True


def rewind(consumer: Any, offsets: dict[Any, int]) -> list[Any]:
    """Queue seeks of the assigned partitions among ``offsets`` to those offsets; the fetch
    loop makes them before its next fetch (:func:`refuse_gaps`, which must be installed).
    Returns the partitions queued."""
    pending = _REWINDS.get(consumer)
    if pending is None:
        return []
    assigned = set(consumer.assignment())
    queued = [tp for tp in offsets if tp in assigned]
    for tp in queued:
        pending[tp] = offsets[tp]
    return queued


def hold(consumer: Any, partitions: Iterable[Any]) -> bool:
    """Have faust fetch none of ``partitions`` (paused from its next fetch on, and resumed when
    a later call leaves them out). Returns whether holds are applied here (:func:`refuse_gaps`
    installed)."""
    holds = _HOLDS.get(consumer)
    if holds is None:
        return False
    holds.wanted = frozenset(partitions)
    return True


def fetched_ahead(consumer: Any, tp: Any) -> bool:
    """Whether the Kafka client holds records of ``tp`` it fetched and has not handed to faust
    yet, and faust fetches ``tp`` (an active partition, or one held back for a full buffer).
    The client hands over at most ``broker_max_poll_records`` per pass, draining one
    partition's fetch before the next one's, so such a partition can wait its turn for many
    seconds while others are served (a catch-up on single-event records: some 60,000 per
    fetch). A partition faust does not fetch keeps its records there untouched: not ahead.
    False when this faust or aiokafka does not expose it (logged once)."""
    try:
        records = consumer._thread._ensure_consumer()._fetcher._records
    except Exception as exc:  # another client version, or not started
        if not _warned_fetch:
            _warned_fetch.append(True)
            log.warning("cannot see the records aiokafka fetched ahead (%r): a partition "
                        "waiting its turn counts as stalled after 10 s", exc)  # fmt: skip
        return False
    return tp in records and (
        tp in consumer._get_active_partitions() or tp in consumer._buffered_partitions
    )


_warned_fetch: list[bool] = []


def forget_holds(consumer: Any) -> None:
    """At a revocation: hold nothing, and resume nothing either. faust pauses every assigned
    stream partition for the rebalance and resumes them after its seek to the committed
    offsets (:func:`pause_streams_while_seeking`); resumed earlier, one would be fetched while
    the tables are recovered, and before that seek (found in review)."""
    holds = _HOLDS.get(consumer)
    if holds is not None:
        holds.wanted = frozenset()
        holds.paused.clear()


# -- the partitions faust fetches (read by the watchdog; faust issue #629) ------------------------


def active_partitions(consumer: Any) -> set[Any] | None:
    """faust's own set of the partitions it fetches (adding to it fetches one again); None if
    this faust keeps none."""
    return getattr(consumer, "_active_partitions", None)


def paused_partitions(consumer: Any) -> set[Any]:
    """The partitions faust has paused (a copy)."""
    return set(getattr(consumer, "_paused_partitions", ()))


def buffered_partitions(consumer: Any) -> set[Any]:
    """The partitions faust holds back because their buffer is full (a copy)."""
    return set(getattr(consumer, "_buffered_partitions", ()))


def acked_offsets(consumer: Any) -> dict[Any, list[int]]:
    """faust's acked offsets per partition (read only; empty if this faust keeps none)."""
    return getattr(consumer, "_acked", None) or {}


def committed_offsets(consumer: Any) -> dict[Any, int]:
    """faust's committed offset per partition (read only; empty if this faust keeps none)."""
    return dict(getattr(consumer, "_committed_offset", None) or {})


def read_offsets(consumer: Any) -> dict[Any, int]:
    """faust's read offset per partition (read only; empty if this faust keeps none)."""
    return dict(getattr(consumer, "_read_offset", None) or {})


# -- the event a table write takes its partition from ---------------------------------------


class _At:
    """Stands in for the event being processed: all faust reads of it is the partition."""

    def __init__(self, partition: int) -> None:
        self.message = self
        self.partition = partition


@contextmanager
def at_partition(partition: int) -> Iterator[None]:
    """Table writes within go to ``partition``, as if an event of that partition were processed."""
    at = _At(partition)
    token = _current_event.set(weakref.ref(at))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


@contextmanager
def no_current_event() -> Iterator[None]:
    """Table reads within look in every partition this worker holds, not the current event's."""
    token = _current_event.set(None)
    try:
        yield
    finally:
        _current_event.reset(token)


# -- the web server -----------------------------------------------------------------------------


def without_builtin_views(app: faust.App) -> None:
    """Serve none of faust's built-in web views, not even its index at ``/``.

    With their settings off faust still mounts a placeholder index at ``/``; streamproc's own
    ``GET /`` (a redirect to the dashboard) takes that path, so the blueprint list is emptied
    before the server applies it.
    """
    app.web.blueprints = BlueprintManager([])


async def track_written_topics(app: faust.App, names: Iterable[str]) -> None:
    """Have faust's producer track ``names`` (see "A record stranded in aiokafka's producer"
    above); :func:`track_topics` on its aiokafka client."""
    client = getattr(getattr(app.producer, "_producer", None), "client", None)
    if client is None:
        log.warning("faust's producer has no aiokafka client here; topic metadata not tracked")
        return
    await track_topics(client, names)


async def track_topics(client: Any, names: Iterable[str]) -> None:
    """Add ``names`` to the topics aiokafka's ``client`` refreshes metadata for, and await the
    refresh that forces (public aiokafka API: ``AIOKafkaClient.add_topic``)."""
    await asyncio.gather(*(client.add_topic(name) for name in sorted(set(names))))
