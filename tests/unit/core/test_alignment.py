"""Record-time alignment: a record of one topic waits while it is ahead of the other's."""

from __future__ import annotations

import random

import pytest

from streamproc.core.alignment import SIDES, RecordTimeAlignment
from streamproc.core.topics import LABELS, PREDICTIONS


def _behind(lead_s: float = 0.0) -> RecordTimeAlignment:
    """Partition 0's predictions at record time 100 s, 500 records still to read, at clock 0."""
    a = RecordTimeAlignment(lead_s=lead_s, stall_s=10.0)
    a.applied(PREDICTIONS, 0, record_ts=100.0, backlog=500, now=0.0)
    return a


def test_a_record_waits_only_while_ahead_of_a_topic_with_a_backlog() -> None:
    a = _behind()
    assert a.may_apply(LABELS, 0, 100.0, None, now=1.0)  # same time: ties go
    assert not a.may_apply(LABELS, 0, 100.5, None, now=1.0)
    a.applied(PREDICTIONS, 0, record_ts=100.2, backlog=0, now=1.0)  # at the topic's end: live
    assert a.may_apply(LABELS, 0, 10_000.0, None, now=1.0)


def test_both_topics_wait_for_each_other() -> None:
    a = RecordTimeAlignment()
    a.applied(LABELS, 0, record_ts=50.0, backlog=10, now=0.0)
    assert not a.may_apply(PREDICTIONS, 0, 60.0, None, now=1.0)
    assert a.may_apply(PREDICTIONS, 0, 50.0, None, now=1.0)


def test_the_other_topics_next_fetched_record_decides_when_there_is_one() -> None:
    a = _behind()
    assert a.may_apply(LABELS, 0, 120.0, 130.0, now=1.0)  # the predictions' next is later
    assert not a.may_apply(LABELS, 0, 120.0, 110.0, now=1.0)
    assert a.may_apply(PREDICTIONS, 0, 110.0, 120.0, now=1.0)  # so the 110 s goes first


def test_partitions_are_aligned_each_on_its_own() -> None:
    a = _behind()
    assert a.may_apply(LABELS, 1, 10_000.0, None, now=1.0)  # no prediction of partition 1 seen
    a.applied(PREDICTIONS, 1, record_ts=20_000.0, backlog=3, now=1.0)
    assert a.may_apply(LABELS, 1, 10_000.0, None, now=1.0)
    assert not a.may_apply(LABELS, 0, 10_000.0, None, now=1.0)


def test_lead_allows_records_that_far_ahead() -> None:
    a = _behind(lead_s=30.0)
    assert a.may_apply(LABELS, 0, 130.0, None, now=1.0)
    assert not a.may_apply(LABELS, 0, 130.5, None, now=1.0)
    assert a.may_apply(LABELS, 0, 140.0, 110.0, now=1.0)


def test_a_record_time_going_back_does_not_move_a_topic_back() -> None:
    a = _behind()
    a.applied(PREDICTIONS, 0, record_ts=50.0, backlog=400, now=1.0)  # a slower producer clock
    assert a.may_apply(LABELS, 0, 100.0, None, now=1.0)


def test_a_topic_that_stalls_holds_nothing_back() -> None:
    a = _behind()
    assert not a.may_apply(LABELS, 0, 200.0, None, now=9.9)
    assert a.may_apply(LABELS, 0, 200.0, None, now=10.0)
    a.applied(PREDICTIONS, 0, record_ts=101.0, backlog=400, now=10.5)  # moving again
    assert not a.may_apply(LABELS, 0, 200.0, None, now=10.5)


def test_forget_starts_over() -> None:
    a = _behind()
    a.forget([1])
    assert not a.may_apply(LABELS, 0, 200.0, None, now=1.0)
    a.forget([0])
    assert a.may_apply(LABELS, 0, 200.0, None, now=1.0)
    a = _behind()
    a.forget()
    assert a.may_apply(LABELS, 0, 200.0, None, now=1.0)


def test_two_fetched_heads_always_let_one_go() -> None:
    """Never both waiting with records of both fetched: the merge cannot deadlock."""
    rng = random.Random(3)
    for _ in range(2000):
        a = RecordTimeAlignment(lead_s=rng.choice([0.0, 0.5, 5.0]))
        for side in SIDES:
            a.applied(side, 0, rng.uniform(0, 100), rng.randint(0, 5), now=0.0)
        heads = {side: rng.uniform(0, 100) for side in SIDES}
        goes = [a.may_apply(s, 0, heads[s], heads[o], now=1.0) for s, o in (SIDES, SIDES[::-1])]
        assert any(goes), heads


@pytest.mark.parametrize(("lead_s", "stall_s"), [(-1.0, 10.0), (0.0, 0.0), (float("nan"), 1.0)])
def test_unusable_settings_are_refused_with_what_to_set(lead_s: float, stall_s: float) -> None:
    with pytest.raises(ValueError, match="set lead_s >= 0 and stall_s > 0"):
        RecordTimeAlignment(lead_s=lead_s, stall_s=stall_s)


def test_a_backlog_of_one_record_is_a_transactions_commit_marker_not_a_backlog() -> None:
    a = _behind()
    a.applied(PREDICTIONS, 0, record_ts=101.0, backlog=1, now=1.0)
    assert a.may_apply(LABELS, 0, 500.0, None, now=1.0)


def test_an_expected_topic_holds_the_other_back_until_its_first_record() -> None:
    a = RecordTimeAlignment()
    a.expect(LABELS, 0, backlog=None, now=0.0)
    assert not a.may_apply(PREDICTIONS, 0, 5.0, None, now=1.0)
    assert a.may_apply(PREDICTIONS, 0, 5.0, None, now=10.0)  # none came for stall_s
    a.expect(LABELS, 1, backlog=0, now=0.0)  # fetched, nothing to read
    assert a.may_apply(PREDICTIONS, 1, 5.0, None, now=1.0)
    a.expect(LABELS, 1, backlog=50, now=0.0)  # known already: unchanged
    assert a.may_apply(PREDICTIONS, 1, 5.0, None, now=1.0) and a.knows(LABELS, 1)
