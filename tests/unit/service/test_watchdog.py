"""The stall watchdog's judgement, on offsets it is shown (the broker look is integration)."""

from __future__ import annotations

from streamproc.service.watchdog import Watchdog

P0, P1 = ("predictions", 0), ("predictions", 1)


class TP:
    def __init__(self, topic: str, partition: int) -> None:
        self.topic, self.partition = topic, partition


def test_waiting_records_with_frozen_commits_become_a_stall_and_progress_ends_it() -> None:
    dumps: list[int] = []
    dog = Watchdog(stall_s=60, dump=lambda: dumps.append(1))
    tp = TP(*P0)
    dog.observe({tp: 0}, {tp: 100}, now=0.0)
    dog.observe({tp: 50}, {tp: 100}, now=30.0)  # records arrive; commits have not moved yet
    assert dog.stalled is None
    dog.observe({tp: 80}, {tp: 100}, now=59.0)
    assert dog.stalled is None
    dog.observe({tp: 80}, {tp: 100}, now=61.0)
    assert dog.stalled is not None and dog.stalled["waiting"] == {"predictions[0]": 80}
    assert dumps == [1]  # the task stacks are logged once per stall
    dog.observe({tp: 80}, {tp: 100}, now=90.0)
    assert dumps == [1]
    dog.observe({tp: 10}, {tp: 170}, now=100.0)  # it commits again
    assert dog.stalled is None


def test_an_idle_worker_is_not_stalled() -> None:
    dog = Watchdog(stall_s=10)
    tps = [TP(*P0), TP(*P1)]
    for t in range(0, 100, 5):
        dog.observe(dict.fromkeys(tps, 0), dict.fromkeys(tps, 7), now=float(t))
    assert dog.stalled is None


def test_a_busy_worker_that_commits_is_not_stalled() -> None:
    dog = Watchdog(stall_s=10)
    tp = TP(*P0)
    for t in range(0, 100, 5):
        dog.observe({tp: 1000}, {tp: t * 10}, now=float(t))
    assert dog.stalled is None


class FakeConsumer:
    def __init__(self, active: set[str], paused: set[str], buffered: set[str]) -> None:
        self._active_partitions = active
        self._paused_partitions = paused
        self._buffered_partitions = buffered


def test_a_partition_faust_stopped_fetching_is_put_back_after_two_looks() -> None:
    from streamproc.service.watchdog import fetch_state, refetch_orphans

    consumer = FakeConsumer({"p0"}, {"p1"}, {"p2"})
    assigned = {"p0", "p1", "p2", "p3"}
    assert fetch_state(consumer, assigned) == (
        "1 fetched, 1 paused, 1 held for a full buffer, 1 in none of these"
    )
    seen: set[object] = set()
    refetch_orphans(consumer, assigned, seen)
    assert consumer._active_partitions == {"p0"}  # once may be a moment of a rebalance
    refetch_orphans(consumer, assigned, seen)
    assert consumer._active_partitions == {"p0", "p3"}  # paused and buffered stay as they are
    refetch_orphans(consumer, assigned, seen)
    assert consumer._active_partitions == {"p0", "p3"} and seen == set()
