"""The predictions and labels topics applied in record-time order: records wait, in order and
uncommitted, while ahead of the other topic's; their partition is paused meanwhile."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from streamproc.core.topics import LABELS, PREDICTIONS
from streamproc.service import alignment, faust_compat
from streamproc.service.alignment import TopicAlignment

TOPICS = {PREDICTIONS: "p-predictions", LABELS: "p-labels"}


class _Consumer:
    """What the alignment and the holds read of faust's consumer: highwaters, the assignment,
    pause/resume, flow control."""

    def __init__(
        self, highwater: dict[TP, int | None], committed: dict[TP, int] | None = None
    ) -> None:
        self.hw = highwater
        self._committed_offset = committed or {}
        self.active: set[TP] = set(highwater)
        self._paused_partitions: set[TP] = set()
        self._buffered_partitions: set[TP] = set()
        self.app = SimpleNamespace(flow_control=SimpleNamespace(is_active=lambda: True))

    def highwater(self, tp: TP) -> int | None:
        return self.hw[tp]  # None: not fetched yet

    def assignment(self) -> set[TP]:
        return set(self.hw)

    def _get_active_partitions(self) -> set[TP]:
        return self.active

    def pause_partitions(self, tps: set[TP]) -> None:
        self._paused_partitions |= tps
        self.active -= tps

    def resume_partitions(self, tps: set[TP]) -> None:
        self._paused_partitions -= tps
        self.active |= tps


class _Msg:
    def __init__(self, side: str, partition: int, offset: int, ts: float) -> None:
        self.topic, self.partition, self.offset, self.timestamp = (
            TOPICS[side],
            partition,
            offset,
            ts,
        )
        self.tp = TP(self.topic, partition)
        self.refcount = 0

    def incref(self) -> None:
        self.refcount += 1

    def decref(self) -> int:
        self.refcount -= 1
        return self.refcount


def _event(side: str, offset: int, ts: float, partition: int = 0) -> Any:
    return SimpleNamespace(message=_Msg(side, partition, offset, ts), side=side)


@pytest.fixture
def holds(monkeypatch: pytest.MonkeyPatch) -> list[set[TP]]:
    """What the alignment asked to hold, call by call (faust_compat.hold stood in for)."""
    asked: list[set[TP]] = []

    def hold(consumer: Any, partitions: Any) -> bool:
        asked.append(set(partitions))
        return True

    monkeypatch.setattr(alignment, "hold", hold)
    return asked


def _aligned(consumer: _Consumer, clock: list[float] | None = None) -> TopicAlignment:
    now = clock if clock is not None else [0.0]
    return TopicAlignment(consumer, TOPICS, lead_s=0.0, clock=lambda: now[0])


def _out(pairs: Any) -> list[Any]:
    out = []
    for side, event in pairs:
        assert side == event.side
        out.append(event)
    return out


def test_labels_ahead_wait_in_order_and_go_when_their_predictions_catch_up(
    holds: list[set[TP]],
) -> None:
    consumer = _Consumer({TP("p-predictions", 0): 100, TP("p-labels", 0): 2})
    a = _aligned(consumer)
    pred = _event(PREDICTIONS, 9, ts=100.0)  # 90 more to read
    assert _out(a.offer(PREDICTIONS, pred)) == []  # the labels' first record is awaited
    early = [_event(LABELS, 0, ts=150.0), _event(LABELS, 1, ts=99.0)]
    # The prediction goes before the first label, which then waits, and the 2nd behind it.
    assert [_out(a.offer(LABELS, e)) for e in early] == [[pred], []]
    assert [e.message.refcount for e in early] == [1, 1]  # uncommitted while they wait
    assert _out(a.due()) == [] and holds[-1] == {TP("p-labels", 0)}

    later = _event(PREDICTIONS, 10, ts=149.0)
    assert _out(a.offer(PREDICTIONS, later)) == [later]  # still behind the first label
    last = _event(PREDICTIONS, 11, ts=151.0)
    # The labels first (150 < 151); then no label is left to read: the prediction goes.
    assert _out(a.offer(PREDICTIONS, last)) == [*early, last]
    assert _out(a.due()) == [] and holds[-1] == set()
    for e in [pred, *early, later, last]:
        a.applied(e)
    assert {e.message.refcount for e in [pred, *early, later, last]} == {0}


def test_predictions_ahead_wait_for_the_labels_too(holds: list[set[TP]]) -> None:
    consumer = _Consumer({TP("p-predictions", 0): 100, TP("p-labels", 0): 10})
    a = _aligned(consumer)
    first = _event(LABELS, 0, ts=10.0)
    assert _out(a.offer(LABELS, first)) == []  # the predictions' first record is awaited
    waits = _event(PREDICTIONS, 0, ts=20.0)
    assert _out(a.offer(PREDICTIONS, waits)) == [first]
    list(a.due())
    assert holds[-1] == {TP("p-predictions", 0)}
    label = _event(LABELS, 1, ts=15.0)
    assert _out(a.offer(LABELS, label)) == [label]
    label2 = _event(LABELS, 2, ts=25.0)  # the prediction goes; this label waits for the next
    assert _out(a.offer(LABELS, label2)) == [waits] and a.waiting[LABELS, 0][0][0] is label2


def test_a_topic_at_its_end_holds_nothing_back(holds: list[set[TP]]) -> None:
    consumer = _Consumer({TP("p-predictions", 0): 10, TP("p-labels", 0): 0})
    a = _aligned(consumer)
    assert len(_out(a.offer(PREDICTIONS, _event(PREDICTIONS, 9, ts=100.0)))) == 1  # no label
    assert len(_out(a.offer(LABELS, _event(LABELS, 0, ts=1e9)))) == 1  # no prediction left


def test_records_waiting_for_a_stalled_topic_go_after_a_while(holds: list[set[TP]]) -> None:
    clock = [0.0]
    labels0 = TP("p-labels", 0)
    a = _aligned(_Consumer({TP("p-predictions", 0): 100, labels0: 10}, {labels0: 10}), clock)
    assert len(_out(a.offer(PREDICTIONS, _event(PREDICTIONS, 0, ts=100.0)))) == 1
    label = _event(LABELS, 0, ts=200.0)
    assert _out(a.offer(LABELS, label)) == [] and _out(a.due()) == []
    clock[0] = 10.0
    assert _out(a.due()) == [label] and holds[-1] == set()


def _label_waiting_with_predictions_fetched_ahead(
    clock: list[float],
) -> tuple[TopicAlignment, _Consumer, dict[TP, object], Any]:
    """A label waiting for predictions the client fetched and has not handed over: the
    alignment, the consumer, the client's fetched records by partition, the label."""
    preds0, labels0 = TP("p-predictions", 0), TP("p-labels", 0)
    consumer = _Consumer({preds0: 100, labels0: 10}, {labels0: 10})
    records: dict[TP, object] = {preds0: object()}
    client = SimpleNamespace(_fetcher=SimpleNamespace(_records=records))
    consumer._thread = SimpleNamespace(_ensure_consumer=lambda: client)  # type: ignore[attr-defined]
    a = _aligned(consumer, clock)
    assert len(_out(a.offer(PREDICTIONS, _event(PREDICTIONS, 0, ts=100.0)))) == 1
    label = _event(LABELS, 0, ts=200.0)
    assert _out(a.offer(LABELS, label)) == []
    return a, consumer, records, label


def test_a_topic_whose_fetched_records_wait_their_turn_is_not_stalled(
    holds: list[set[TP]],
) -> None:
    """The client hands over one partition's fetch before the next one's: predictions
    fetched but not handed over yet are coming, however long that takes (60 s at most)."""
    clock = [0.0]
    a, _, records, label = _label_waiting_with_predictions_fetched_ahead(clock)
    clock[0] = 30.0
    assert _out(a.due()) == [] and holds[-1] == {TP("p-labels", 0)}
    records.clear()  # handed over, and none fetched since: a stall
    assert _out(a.due()) == [label] and holds[-1] == set()


def test_records_of_a_partition_faust_does_not_fetch_are_not_ahead(holds: list[set[TP]]) -> None:
    """faust pauses by leaving a partition out of its fetches (aiokafka keeps its records
    untouched): they are not coming, so the stall counts."""
    clock = [0.0]
    a, consumer, _, label = _label_waiting_with_predictions_fetched_ahead(clock)
    consumer.pause_partitions({TP("p-predictions", 0)})
    clock[0] = 10.0
    assert _out(a.due()) == [label]


def test_a_rebalance_drops_what_waits(holds: list[set[TP]]) -> None:
    a = _aligned(_Consumer({TP("p-predictions", 0): 100, TP("p-labels", 0): None}))
    pred = _event(PREDICTIONS, 0, ts=100.0)
    assert _out(a.offer(PREDICTIONS, pred)) == []  # the labels' highwater is not known yet
    waiting = _event(LABELS, 0, ts=200.0)
    assert _out(a.offer(LABELS, waiting)) == [pred]
    list(a.due())
    assert holds[-1] == {TP("p-labels", 0)}
    a.forget()  # faust fetches it again from the last commit; this copy stays unacked
    assert not a.waiting and a.count == 0 and waiting.message.refcount == 1
    assert not a.rule.knows(PREDICTIONS, 0) and not a.rule.knows(LABELS, 0)


def test_without_pauses_nothing_waits() -> None:
    """faust_compat's fetch wrapper not installed (another faust): waiting would be unbounded."""
    a = _aligned(_Consumer({TP("p-predictions", 0): 100}))
    list(a.offer(PREDICTIONS, _event(PREDICTIONS, 0, ts=100.0)))
    assert len(_out(a.offer(LABELS, _event(LABELS, 0, ts=1e9)))) == 1


@pytest.mark.parametrize("seed", range(20))
def test_any_fetch_order_is_applied_in_the_order_written(holds: list[set[TP]], seed: int) -> None:
    """Two topics written in one record-time order, fetched in any order that keeps each
    topic's own: every record comes out once, in the order written."""
    rng = random.Random(seed)
    written = []
    count = {PREDICTIONS: 0, LABELS: 0}
    for k in range(rng.randint(1, 200)):
        side = rng.choice([PREDICTIONS, PREDICTIONS, LABELS])
        written.append(_event(side, count[side], ts=float(k)))
        count[side] += 1
    # Each topic ends with a transaction's commit marker: a backlog of one is none.
    consumer = _Consumer({TP(TOPICS[s], 0): n + 1 for s, n in count.items()})
    a = _aligned(consumer)
    fetched = {s: [e for e in written if e.side == s] for s in count}
    out: list[Any] = []
    while fetched[PREDICTIONS] or fetched[LABELS]:
        side = rng.choice([s for s in fetched if fetched[s]])
        for _ in range(rng.randint(1, 30)):  # a fetch: a run of one topic's records
            if fetched[side]:
                event = fetched[side].pop(0)
                out += _out(a.offer(side, event))
        out += _out(a.due())
    assert out == written
    assert a.count == 0 and not a.waiting and holds[-1] == set()


def test_holds_pause_and_resume_at_a_fetch_and_never_during_a_rebalance() -> None:
    labels0, labels1 = TP("labels", 0), TP("labels", 1)
    consumer = _Consumer({labels0: 10, labels1: 10})
    holds = faust_compat._Holds()
    holds.wanted = frozenset({labels0, TP("labels", 7)})  # 7: not assigned here
    holds.apply(consumer)
    assert consumer._paused_partitions == {labels0} and consumer.active == {labels1}

    holds.wanted = frozenset({labels1})
    consumer.app.flow_control.is_active = lambda: False  # a rebalance: faust's own pauses
    holds.apply(consumer)
    assert consumer._paused_partitions == {labels0}
    consumer.app.flow_control.is_active = lambda: True
    holds.apply(consumer)
    assert consumer._paused_partitions == {labels1} and consumer.active == {labels0}

    consumer.resume_partitions({labels1})  # faust resumed it (after a rebalance's seek)
    holds.wanted = frozenset()
    holds.apply(consumer)
    assert consumer._paused_partitions == set() and holds.paused == set()


def test_a_held_partition_faust_makes_active_after_a_full_buffer_is_paused_again() -> None:
    """faust's on_buffer_drop puts a partition it held back for a full buffer into the active
    set without looking at the paused one (found in review)."""
    labels0 = TP("labels", 0)
    consumer = _Consumer({labels0: 10})
    consumer.active.discard(labels0)
    consumer._buffered_partitions.add(labels0)  # faust's on_buffer_full, then our pause
    holds = faust_compat._Holds()
    holds.wanted = frozenset({labels0})
    holds.apply(consumer)
    assert labels0 in consumer._paused_partitions and not consumer._buffered_partitions
    consumer.active.add(labels0)  # what on_buffer_drop would do had it stayed buffered
    holds.apply(consumer)
    assert labels0 not in consumer.active


def test_a_rebalance_neither_holds_nor_resumes() -> None:
    """At a revocation the holds are forgotten, not resumed: faust resumes every stream
    partition itself after its seek; resumed earlier, one is fetched while the tables are
    recovered (found in review)."""
    labels0 = TP("labels", 0)
    consumer = _Consumer({labels0: 10})
    holds = faust_compat._Holds()
    faust_compat._HOLDS[consumer] = holds
    assert faust_compat.hold(consumer, {labels0})
    holds.apply(consumer)
    faust_compat.forget_holds(consumer)
    consumer.pause_partitions({labels0})  # faust, for the rebalance
    holds.apply(consumer)  # a fetch during recovery
    assert labels0 in consumer._paused_partitions and labels0 not in consumer.active


def test_a_record_waits_at_most_max_wait_s(holds: list[set[TP]]) -> None:
    clock = [0.0]
    a = _aligned(_Consumer({TP("p-predictions", 0): 10**6, TP("p-labels", 0): 10**6}), clock)
    preds = [_event(PREDICTIONS, k, ts=float(k)) for k in range(3)]
    list(a.offer(LABELS, _event(LABELS, 0, ts=0.0)))
    assert len(_out(a.offer(PREDICTIONS, preds[0]))) == 2
    future = _event(LABELS, 1, ts=1e12)  # a producer's clock glitch
    assert _out(a.offer(LABELS, future)) == []
    clock[0] = 30.0  # the predictions keep moving: no stall
    assert _out(a.offer(PREDICTIONS, preds[1])) == [preds[1]]
    clock[0] = alignment.MAX_WAIT_S
    assert _out(a.offer(PREDICTIONS, preds[2])) == [preds[2], future] and a.forced == 1


def test_past_max_waiting_records_the_oldest_go(
    holds: list[set[TP]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alignment, "MAX_WAITING", 3)
    a = _aligned(_Consumer({TP("p-predictions", 0): 10**6, TP("p-labels", 0): 10**6}))
    list(a.offer(LABELS, _event(LABELS, 0, ts=0.0)))
    list(a.offer(PREDICTIONS, _event(PREDICTIONS, 0, ts=0.0)))
    ahead = [_event(LABELS, k, ts=100.0 + k) for k in range(1, 6)]
    out = [e for ev in ahead for e in _out(a.offer(LABELS, ev))]
    # Past 3 waiting, the oldest goes: the 4th and 5th offers each let one go.
    assert out == ahead[:2] and a.count == 3 and a.forced == 2


def test_the_other_topic_not_assigned_here_is_not_waited_for(holds: list[set[TP]]) -> None:
    a = _aligned(_Consumer({TP("p-labels", 0): 10}))  # predictions 0: another worker's
    assert len(_out(a.offer(LABELS, _event(LABELS, 0, ts=1e9)))) == 1
