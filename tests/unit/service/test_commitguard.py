"""The commit guard: faust's commits held to the records this worker released (issue 17)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from streamproc.service.commitguard import CommitGuard

P0, P1, L0 = ("predictions", 0), ("predictions", 1), ("labels", 0)


def released(guard: CommitGuard, tp: tuple[str, int], offsets: range, gen: int = 1) -> None:
    for offset in offsets:
        guard.released(tp, offset, gen)


def test_commits_up_to_what_was_released_pass_unchanged() -> None:
    guard = CommitGuard(["predictions"])
    released(guard, P0, range(100))
    got = guard.clamp({P0: 100, L0: 7}, {P0: 40}, generation=1)
    assert got.allowed == {P0: 100, L0: 7} and got.held == {}


def test_a_commit_past_the_released_records_is_held_to_them() -> None:
    # faust acked 100..199 without the worker applying them (skipped in its stream, or a
    # "gap"): committing 200 would lose them.
    guard = CommitGuard(["predictions"])
    released(guard, P0, range(100))
    got = guard.clamp({P0: 200}, {P0: 40}, generation=1)
    assert got.allowed == {P0: 100} and got.held == {P0: 100}


def test_nothing_is_committed_when_nothing_new_was_released() -> None:
    guard = CommitGuard(["predictions"])
    got = guard.clamp({P0: 200}, {P0: 40}, generation=1)
    assert got.allowed == {} and got.held == {P0: 40}


def test_during_an_assignment_nothing_is_committed_and_nothing_held() -> None:
    # faust has forgotten the committed offset (revoked) and this generation released none.
    guard = CommitGuard(["predictions"])
    got = guard.clamp({P0: 200}, {P0: None}, generation=2)
    assert got.allowed == {} and got.held == {}
    assert guard.look(1) == {} and guard.look(1) == {}


def test_another_generation_forgets_what_was_released_before() -> None:
    guard = CommitGuard(["predictions"])
    released(guard, P0, range(100), gen=1)
    assert guard.clamp({P0: 100}, {P0: 0}, generation=2).allowed == {}  # a new assignment
    released(guard, P0, range(0, 30), gen=2)
    assert guard.clamp({P0: 150}, {P0: 0}, generation=2).allowed == {P0: 30}
    # A group created anew (deleted by an admin) counts from 1 again: it is another one too.
    assert guard.clamp({P0: 30}, {P0: 0}, generation=1).allowed == {}
    released(guard, P0, range(0, 10), gen=1)
    assert guard.clamp({P0: 10}, {P0: 0}, generation=1).allowed == {P0: 10}


def test_a_held_partition_that_catches_up_is_not_rewound() -> None:
    guard = CommitGuard(["predictions"])
    released(guard, P0, range(100))
    guard.clamp({P0: 200}, {P0: 40}, generation=1)
    assert guard.look(1) == {}
    released(guard, P0, range(100, 150))  # records keep coming: fetched after the assignment
    assert guard.look(1) == {}
    released(guard, P0, range(150, 200))
    assert guard.look(1) == {} and guard.look(1) == {}  # all of them applied: forgotten


def test_a_held_partition_with_no_progress_for_a_look_is_rewound_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = CommitGuard(["predictions"])
    released(guard, P0, range(100))
    released(guard, P1, range(10))
    guard.clamp({P0: 200, P1: 10}, {P0: 40, P1: 0}, generation=1)
    assert guard.look(1) == {}  # a look's time to move
    caplog.set_level(logging.WARNING, "streamproc.service.commitguard")
    assert guard.look(1) == {P0: 100}
    assert guard.rewinds == 1
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "up to offset 200 as done" in warning and "fetching them again from 100" in warning
    assert guard.look(1) == {}  # once: the next hold starts its own count


def test_a_new_generation_forgets_what_was_held() -> None:
    guard = CommitGuard(["predictions"])
    released(guard, P0, range(100))
    guard.clamp({P0: 200}, {P0: 40}, generation=1)
    guard.look(1)
    assert guard.look(2) == {}  # faust fetches every partition from its committed offset itself


def test_faust_commits_pass_through_the_guard(tmp_path: Path) -> None:
    # The wiring on a real (unstarted) faust consumer: what reaches faust's own commit.
    from faust.types import TP

    from streamproc.config import Settings
    from streamproc.service.app import create_app
    from streamproc.service.faust_compat import guard_commits

    settings = Settings(data_dir=tmp_path, topic_prefix="t-")
    consumer = create_app(settings, "127.0.0.1:1").app.consumer
    passed: list[dict[object, int]] = []

    async def commit(offsets: dict[object, int], *args: object, **kwargs: object) -> bool:
        passed.append(dict(offsets))
        return True

    consumer._commit_offsets = commit
    guard = CommitGuard(["t-predictions"])
    assert guard_commits(consumer, guard)
    consumer.app.consumer_generation_id = 4
    p0, other = TP("t-predictions", 0), TP("t-sp-monitors-changelog", 0)
    consumer._committed_offset[p0] = 40
    released(guard, ("t-predictions", 0), range(40, 100), gen=4)
    assert asyncio.run(consumer._commit_offsets({p0: 250, other: 9}))
    assert passed == [{p0: 100, other: 9}]
    consumer._committed_offset[p0] = 100
    assert not asyncio.run(consumer._commit_offsets({p0: 300}))  # nothing new: no commit
    assert passed == [{p0: 100, other: 9}]


class _Msg:
    def __init__(self, topic: str, offset: int) -> None:
        self.topic, self.offset = topic, offset


class FakeFetch:
    """A broker's partitions as offset lists, fetched from a position as aiokafka does (the
    position moves past a whole batch when it is handed over), and faust's fetch loop on top:
    its read offset and the gaps it would record."""

    def __init__(self, consumer: Any, logs: dict[Any, list[int]], start: dict[Any, int]) -> None:
        self.consumer, self.logs, self.position = consumer, logs, dict(start)
        self.delivered: dict[Any, list[int]] = {tp: [] for tp in logs}
        self.gaps: list[tuple[Any, int, int]] = []
        self.seeks: list[tuple[Any, int]] = []

    async def getmany(self, timeout: float):  # type: ignore[no-untyped-def]
        for tp, log in self.logs.items():
            batch = [o for o in log if o >= self.position[tp]][:50]
            if batch:
                self.position[tp] = batch[-1] + 1
            for offset in batch:
                yield tp, _Msg(tp.topic, offset)

    async def seek_wait(self, partitions: dict[Any, int]) -> None:
        for tp, offset in partitions.items():
            self.seeks.append((tp, offset))
            self.position[tp] = offset
            self.consumer._read_offset[tp] = offset

    def drain(self, rounds: int) -> None:
        async def run() -> None:
            read = self.consumer._read_offset
            for _ in range(rounds):
                async for tp, m in self.consumer.getmany(timeout=1.0):
                    r = read.get(tp)
                    if r and m.offset - r > 1:
                        self.gaps.append((tp, r + 1, m.offset))
                    self.delivered[tp].append(m.offset)
                    read[tp] = m.offset

        asyncio.run(run())


def test_a_jump_in_offsets_is_fetched_again_and_believed_only_where_records_are_missing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from faust.types import TP

    from streamproc.config import Settings
    from streamproc.service.app import create_app
    from streamproc.service.faust_compat import refuse_gaps, rewind

    consumer = create_app(Settings(data_dir=tmp_path), "127.0.0.1:1").app.consumer
    p2, p3 = TP("t-predictions", 2), TP("t-predictions", 3)
    logs = {
        p2: list(range(700)),
        # 243 a transaction's commit marker; 261..299 compacted away or aborted: no records
        p3: [*range(240, 243), *range(244, 261), *range(300, 311)],
    }
    # The traced bug: committed (and read) offset 194, but the fetch position at 531.
    fake = FakeFetch(consumer, logs, {p2: 531, p3: 240})
    consumer.getmany = fake.getmany
    consumer._thread.seek_wait = fake.seek_wait
    consumer.assignment = lambda: {p2, p3}
    consumer.app.topics.acks_enabled_for = lambda topic: True
    consumer._read_offset.update({p2: 194, p3: 240})
    assert refuse_gaps(consumer)
    caplog.set_level(logging.INFO, "streamproc.service.faust_compat")

    fake.drain(rounds=20)
    assert fake.delivered[p2] == list(range(194, 700))  # in order, from the commit: none lost
    assert fake.seeks[0] == (p2, 194)
    assert "jumped from offset 194 to 531" in caplog.text
    # p3: the marker passes at once, without a gap faust would count twice; the real hole is
    # fetched again once (from 260, which comes twice: skipped by offset in the monitors),
    # then believed, and faust records that gap as before.
    assert fake.delivered[p3] == [*range(240, 243), *range(244, 261), 260, *range(300, 311)]
    assert fake.seeks[1:] == [(p3, 260)]
    assert fake.gaps == [(p3, 261, 300)]
    assert "no records between offsets 260 and 300" in caplog.text

    # A rewind the watchdog asks for is made by the fetch loop, before its next fetch.
    assert rewind(consumer, {p2: 650, TP("t-predictions", 9): 5}) == [p2]
    fake.drain(rounds=2)
    assert fake.seeks[-1] == (p2, 650) and fake.delivered[p2][-50:] == list(range(650, 700))
