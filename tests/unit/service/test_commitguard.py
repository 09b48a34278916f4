"""The commit guard: faust's commits held to the records this worker released (issue 17)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

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
    assert guard.look() == {} and guard.look() == {}


def test_releases_of_an_older_generation_do_not_count() -> None:
    guard = CommitGuard(["predictions"])
    released(guard, P0, range(100), gen=1)
    assert guard.clamp({P0: 100}, {P0: 0}, generation=2).allowed == {}  # a new assignment
    released(guard, P0, range(100, 150), gen=1)  # a revocation's late releases: ignored
    assert guard.clamp({P0: 150}, {P0: 0}, generation=2).allowed == {}
    released(guard, P0, range(0, 30), gen=2)
    assert guard.clamp({P0: 150}, {P0: 0}, generation=2).allowed == {P0: 30}


def test_a_held_partition_that_catches_up_is_not_rewound() -> None:
    guard = CommitGuard(["predictions"])
    released(guard, P0, range(100))
    guard.clamp({P0: 200}, {P0: 40}, generation=1)
    assert guard.look() == {}
    released(guard, P0, range(100, 150))  # records keep coming: fetched after the assignment
    assert guard.look() == {}
    released(guard, P0, range(150, 200))
    assert guard.look() == {} and guard.look() == {}  # all of them applied: forgotten


def test_a_held_partition_with_no_progress_for_a_look_is_rewound_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = CommitGuard(["predictions"])
    released(guard, P0, range(100))
    released(guard, P1, range(10))
    guard.clamp({P0: 200, P1: 10}, {P0: 40, P1: 0}, generation=1)
    assert guard.look() == {}  # a look's time to move
    caplog.set_level(logging.WARNING, "streamproc.service.commitguard")
    assert guard.look() == {P0: 100}
    assert guard.rewinds == 1
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "up to offset 200 as done" in warning and "fetching them again from 100" in warning
    assert guard.look() == {}  # once: the next hold starts its own count


def test_a_new_generation_forgets_what_was_held() -> None:
    guard = CommitGuard(["predictions"])
    released(guard, P0, range(100))
    guard.clamp({P0: 200}, {P0: 40}, generation=1)
    guard.look()
    released(guard, P0, range(0, 5), gen=2)  # faust fetches from the committed offset itself
    assert guard.look() == {}


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


def test_a_jump_in_offsets_is_fetched_again_and_believed_only_when_it_can_be_real(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # faust's fetch loop would record offsets 195..530 as acked (a "gap") and commit them.
    from faust.types import TP

    from streamproc.config import Settings
    from streamproc.service.app import create_app
    from streamproc.service.faust_compat import refuse_gaps

    consumer = create_app(Settings(data_dir=tmp_path), "127.0.0.1:1").app.consumer
    p2, p3 = TP("t-predictions", 2), TP("t-predictions", 3)
    fetches = [
        [(p2, _Msg(p2.topic, 531)), (p2, _Msg(p2.topic, 532)), (p3, _Msg(p3.topic, 242))],
        [(p2, _Msg(p2.topic, 194)), (p2, _Msg(p2.topic, 195))],  # fetched again: in order
        [(p3, _Msg(p3.topic, 244))],  # one offset missing (a commit marker) ...
        [(p3, _Msg(p3.topic, 244))],  # ... found again: believed
        [(p3, _Msg(p3.topic, 900))],  # a jump over records the broker still has ...
        [(p3, _Msg(p3.topic, 900))],  # ... found again: refused, every time
        [(p3, _Msg(p3.topic, 900))],
    ]
    sought: list[tuple[object, int]] = []
    log_start = {p3: 0}

    async def getmany(timeout: float):  # type: ignore[no-untyped-def]
        for tp, msg in fetches.pop(0):
            yield tp, msg

    async def seek(tp: object, offset: int) -> None:
        sought.append((tp, offset))
        consumer._read_offset[tp] = offset

    async def earliest_offsets(*tps: object) -> dict[object, int]:
        return {tp: log_start[tp] for tp in tps}  # type: ignore[index]

    consumer.getmany, consumer.seek = getmany, seek
    consumer.earliest_offsets = earliest_offsets
    consumer.app.topics.acks_enabled_for = lambda topic: True
    consumer._read_offset.update({p2: 194, p3: 241})
    assert refuse_gaps(consumer)

    async def fetch() -> list[tuple[object, int]]:
        delivered = []
        async for tp, m in consumer.getmany(timeout=1.0):
            delivered.append((tp, m.offset))
            consumer._read_offset[tp] = m.offset  # as faust's loop does after delivery
        return delivered

    caplog.set_level(logging.INFO, "streamproc.service.faust_compat")
    assert asyncio.run(fetch()) == [(p3, 242)]  # p2's batch dropped, sought back to 194
    assert sought == [(p2, 194)]
    assert "jumped from offset 194 to 531" in caplog.text
    assert asyncio.run(fetch()) == [(p2, 194), (p2, 195)]
    assert asyncio.run(fetch()) == [] and sought[-1] == (p3, 242)
    assert asyncio.run(fetch()) == [(p3, 244)] and len(sought) == 2
    assert asyncio.run(fetch()) == [] and sought[-1] == (p3, 244)
    assert asyncio.run(fetch()) == [] and len(sought) == 4  # refused again, with an error
    assert "keeps jumping from offset 244 to 900" in caplog.text
    log_start[p3] = 800  # now the broker has deleted them: believed
    assert asyncio.run(fetch()) == [(p3, 900)]
    assert "deleted (retention)" in caplog.text
