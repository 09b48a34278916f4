"""Applied vs committed offsets (issue 17): the gauges, the warning, and the ack rule."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streamproc.service import faust_compat
from streamproc.service.checkpoint import Checkpointer
from streamproc.service.commits import CommitGap
from streamproc.service.watchdog import ack_duplicates

P0, P1 = ("predictions", 0), ("predictions", 1)


def sample(registry: CollectorRegistry, name: str, partition: int) -> float | None:
    return registry.get_sample_value(name, {"topic": "predictions", "partition": str(partition)})


def test_gap_in_records_and_age_of_the_oldest_uncommitted_record() -> None:
    reg = CollectorRegistry()
    gap = CommitGap(bound_s=30.0, registry=reg)
    for offset in range(0, 500):
        gap.note(P0, offset, now=offset / 100)  # 100 records/s from t=0 to t=5
    seen = gap.observe({P0: 200, P1: 7}, now=6.0)
    assert P1 not in seen  # nothing applied there: no figure rather than a wrong one
    assert seen[P0].records == 300 and seen[P0].applied == 500
    # offset 200 was applied at t=2.0 (to the 0.5 s sampling): 4 s ago
    assert 3.5 <= seen[P0].age_s <= 4.0
    assert sample(reg, "streamproc_uncommitted_records", 0) == 300
    seen = gap.observe({P0: 500}, now=7.0)
    assert seen[P0] == (500, 500, 0, 0.0)
    assert sample(reg, "streamproc_uncommitted_age_seconds", 0) == 0.0


def test_redelivered_records_do_not_move_the_applied_offset_back() -> None:
    gap = CommitGap(bound_s=30.0, registry=CollectorRegistry())
    for offset in range(100):
        gap.note(P0, offset, now=1.0)
    for offset in range(40, 60):  # re-sent from the last commit after a rebalance
        gap.note(P0, offset, now=2.0)
    assert gap.observe({P0: 40}, now=3.0)[P0].applied == 100


def test_a_gap_that_stays_above_the_bound_warns_once_and_says_when_it_is_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gap = CommitGap(bound_s=30.0, registry=CollectorRegistry())
    for offset in range(1000):
        gap.note(P0, offset, now=0.0)
    caplog.set_level(logging.WARNING, "streamproc.service.commits")
    gap.observe({P0: 10}, now=20.0)
    assert not caplog.records  # under the bound: a busy worker, not a problem
    gap.observe({P0: 11}, now=40.0)  # commits move, one offset at a time: the shape
    gap.observe({P0: 12}, now=50.0)
    assert len(caplog.records) == 1
    assert "predictions[0]: committed offset 11 trails the applied 1000 by 989" in caplog.text
    gap.observe({P0: 1000}, now=60.0)
    assert len(caplog.records) == 2 and "caught up again" in caplog.records[1].message


def test_forgotten_partitions_drop_their_series() -> None:
    reg = CollectorRegistry()
    gap = CommitGap(bound_s=30.0, registry=reg)
    gap.note(P0, 5, now=0.0)
    gap.observe({P0: 0}, now=1.0)
    assert sample(reg, "streamproc_uncommitted_records", 0) == 6
    gap.forget([P0, P1])
    assert sample(reg, "streamproc_uncommitted_records", 0) is None
    assert gap.observe({P0: 0}, now=2.0) == {}


def test_duplicates_in_fausts_ack_list_are_counted_per_partition() -> None:
    consumer = SimpleNamespace(_acked={P0: [5, 5, 6, 7, 7, 7], P1: [1, 2, 3]})
    assert ack_duplicates(consumer, {P0, P1}) == {P0: 3}
    assert ack_duplicates(SimpleNamespace(), {P0}) == {}  # another faust: nothing to read


class Msg:
    def __init__(self, offset: int, generation: int) -> None:
        self.topic, self.partition, self.offset = "predictions", 0, offset
        self.tp, self.generation_id, self.refs = P0, generation, 1

    def incref(self) -> None:
        self.refs += 1

    def ack(self, consumer: Any) -> bool:
        self.refs -= 1
        return self.refs == 0


def checkpointer() -> Checkpointer:
    app = SimpleNamespace(consumer=None, sensors=SimpleNamespace(on_message_out=lambda *a: None))
    w: Any = SimpleNamespace(app=app)
    return Checkpointer(w, monitors=None, every_s=1.0)  # type: ignore[arg-type]


def test_release_acks_every_held_event() -> None:
    # Held events are released once their state is written, in any generation: acking only
    # outside a rebalance lost records in a rebalance test run (see Checkpointer.release).
    ckpt = checkpointer()
    msgs = [Msg(10, generation=3), Msg(11, generation=2)]
    for m in msgs:
        ckpt.hold(SimpleNamespace(message=m))
        m.ack(None)  # the stream's own ack: ours is the last reference
    if not faust_compat.FAUST_VERSION.startswith(faust_compat.SUPPORTED):
        pytest.skip(f"faust-streaming {faust_compat.FAUST_VERSION} is not touched")
    assert ckpt.release() == 2
    assert [m.refs for m in msgs] == [0, 0]


def faust_consumer(assigned: set[Any]) -> Any:
    """faust's own aiokafka consumer (never started), its assignment given."""
    import faust
    from faust.types import TP

    app = faust.App("commits-test", broker="kafka://127.0.0.1:1")
    app.topic("predictions")
    consumer = app.consumer
    tps = {TP(*tp) for tp in assigned}
    consumer.assignment = lambda: set(tps)
    rewound: list[tuple[str, int]] = []

    async def seek_to_beginning(*partitions: Any) -> None:
        rewound.extend((tp.topic, tp.partition) for tp in partitions)

    consumer._thread = SimpleNamespace(seek_to_beginning=seek_to_beginning, rewound=rewound)
    return consumer


def test_stream_partitions_are_paused_while_faust_seeks_them() -> None:
    # After an assignment faust resumes the stream partitions, then seeks them back to their
    # committed offsets; records fetched in between made it list offsets as acked twice.
    consumer = faust_consumer({P0, P1})
    if not faust_compat.supported(consumer):
        pytest.skip(f"faust-streaming {faust_compat.FAUST_VERSION} is not touched")
    changelog = ("sp-monitors-changelog", 0)
    consumer.app.tables._changelogs["sp-monitors-changelog"] = object()
    consumer.resume_partitions(consumer.assignment())
    consumer.resume_partitions({_tp(changelog)})
    during: list[set[Any]] = []

    async def seek() -> None:
        during.append({(tp.topic, tp.partition) for tp in consumer._get_active_partitions()})

    consumer.perform_seek = seek
    assert faust_compat.pause_streams_while_seeking(consumer)
    asyncio.run(consumer.perform_seek())
    assert during == [{changelog}]  # the stream partitions were not fetched during the seek
    assert {(tp.topic, tp.partition) for tp in consumer._get_active_partitions()} == {
        P0, P1, changelog
    }  # fmt: skip


def test_a_rebalance_during_the_seek_keeps_its_own_pause() -> None:
    consumer = faust_consumer({P0})
    if not faust_compat.supported(consumer):
        pytest.skip(f"faust-streaming {faust_compat.FAUST_VERSION} is not touched")
    consumer.resume_partitions(consumer.assignment())

    async def seek() -> None:
        consumer.app.on_rebalance_start()  # the next rebalance pauses them itself
        consumer.pause_partitions(consumer.assignment())

    consumer.perform_seek = seek
    assert faust_compat.pause_streams_while_seeking(consumer)
    asyncio.run(consumer.perform_seek())
    assert not consumer._get_active_partitions()


def _tp(tp: tuple[str, int]) -> Any:
    from faust.types import TP

    return TP(*tp)


def test_a_stream_partition_never_committed_is_rewound_after_the_seek() -> None:
    # aiokafka's seek to committed offsets leaves a partition with none where it was: records
    # faust fetched and dropped before recovery ended were never fetched again (a retrain
    # request lost after a kill -9). Committed ones are left to faust's own seek.
    consumer = faust_consumer({P0, P1})
    if not faust_compat.supported(consumer):
        pytest.skip(f"faust-streaming {faust_compat.FAUST_VERSION} is not touched")
    consumer.app.tables._changelogs["sp-monitors-changelog"] = object()
    consumer._committed_offset[_tp(P0)] = 120
    consumer._committed_offset[_tp(P1)] = None  # faust stores a committed 0 as None too

    async def seek() -> None:
        return None

    consumer.perform_seek = seek
    faust_compat.pause_streams_while_seeking(consumer)
    asyncio.run(consumer.perform_seek())
    assert consumer._thread.rewound == [P1]


def test_consumer_state_names_each_partitions_fetch_set_and_offsets() -> None:
    from streamproc.service.watchdog import consumer_state

    consumer = faust_consumer({P0, P1})
    consumer.resume_partitions({_tp(P0)})
    consumer.pause_partitions({_tp(P1)})
    consumer._read_offset[_tp(P0)] = 41
    consumer._committed_offset[_tp(P0)] = 40
    consumer._acked[_tp(P0)] = [41, 42]
    assert consumer_state(consumer).splitlines() == [
        "predictions[0]: active, read 41, committed 40, acked 2 from 41",
        "predictions[1]: paused, read ?, committed ?, acked 0 from -",
    ]
    assert consumer_state(SimpleNamespace()).startswith("no assignment to show")
