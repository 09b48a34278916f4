"""The one place streamproc touches faust's private API (checked on faust-streaming 0.15.3).

Every name below is private to faust (or undocumented behaviour); nothing else in streamproc
uses one. When raising the faust-streaming bound in ``pyproject.toml``, read each against the
new version's source; ``tests/unit/service/test_private_apis.py`` fails, naming the attribute,
when one is gone.

==========================================  ==================================================
``Consumer._acked``, ``._acked_index``      acked offsets per partition (read, and rewritten
                                            without duplicates: :func:`drop_duplicate_acks`;
                                            read: :func:`acked_offsets`)
``Consumer._active_partitions``             the partitions faust fetches (read, and written
                                            back by the watchdog: :func:`active_partitions`)
``Consumer._paused_partitions``,            paused, and held back for a full buffer (read:
``._buffered_partitions``                   :func:`paused_partitions`, :func:`buffered_partitions`)
``faust.streams._current_event``            the event being processed, which a table write
                                            takes its partition from (:func:`at_partition`,
                                            :func:`no_current_event`)
``faust.web.base.BlueprintManager``,        the built-in views a web server mounts at start
``Web.blueprints``                          (:func:`without_builtin_views`)
==========================================  ==================================================

``Collection._sensor_on_set`` is no longer used: a table write reports to the sensors through the
public ``app.sensors.on_table_set`` it aliases. Public names whose behaviour the checkpoints rely on
(listed so an upgrade checks them too): ``Message.incref``/``Message.ack`` (an event held until a
checkpoint is not committable), ``Sensors.on_message_out``, ``App.consumer_generation_id``,
``App.flow_control.is_active()`` and ``Message.generation_id`` (records fetched before a
rebalance), ``Collection.on_key_set``/``send_changelog``/``partition_for_key`` (overridden by
:class:`~streamproc.service.app.ModelTable`).

Duplicate acked offsets
-----------------------
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
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import faust
from faust.streams import _current_event
from faust.web.base import BlueprintManager

log = logging.getLogger(__name__)

__all__ = [
    "PRIVATE",
    "PRIVATE_CONSUMER",
    "acked_offsets",
    "active_partitions",
    "at_partition",
    "buffered_partitions",
    "drop_duplicate_acks",
    "no_current_event",
    "paused_partitions",
    "supported",
    "without_builtin_views",
]

SUPPORTED = ("0.15.",)
# Every private name used here, for tests/unit/service/test_private_apis.py: (module, name) of a
# module attribute, and the consumer's own attributes (set in faust's Consumer.__init__).
PRIVATE = (("faust.streams", "_current_event"), ("faust.web.base", "BlueprintManager"))
PRIVATE_CONSUMER = (
    "_acked",
    "_acked_index",
    "_active_partitions",
    "_paused_partitions",
    "_buffered_partitions",
)


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
