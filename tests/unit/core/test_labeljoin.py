"""Delayed-label join: ordering, duplicates, bounded buffers, eviction counts, state round trips."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.core.labeljoin import Joined, LabelJoin, WaitingPrediction, entry_bytes, row_bytes


def pred(j: LabelJoin, eid: str, ts: float, p: Any = 1, version: str = "v1") -> Joined | None:
    return j.add_prediction(eid, ts=ts, version=version, prediction=p, features={"id": eid})


def counts(j: LabelJoin, **expected: int) -> None:
    want = dict.fromkeys(
        (
            "joined",
            "evicted_predictions",
            "evicted_labels",
            "duplicate_labels",
            "duplicate_predictions",
            "evicted_for_bytes",
        ),
        0,
    )
    want.update(expected)
    assert j.counts == want


# --------------------------------------------------------------------------- joining


def test_join_in_order() -> None:
    j = LabelJoin()
    assert pred(j, "a", 10.0, p="cat", version="v7") is None
    assert j.pending == 1
    got = j.add_label("a", ts=25.0, label="dog")
    assert got == Joined("a", "v7", "cat", "dog", {"id": "a"}, 10.0, 25.0)
    assert got.latency_s == 15.0
    assert j.pending == 0
    counts(j, joined=1)


def test_many_predictions_joined_out_of_order() -> None:
    j = LabelJoin()
    for i in range(10):
        pred(j, f"e{i}", float(i), p=i)
    order = [3, 9, 0, 5, 1, 2, 8, 4, 7, 6]
    got = [j.add_label(f"e{i}", ts=100.0 + i, label=-i) for i in order]
    assert [(g.event_id, g.prediction, g.label) for g in got if g] == [
        (f"e{i}", i, -i) for i in order
    ]
    assert j.pending == 0
    counts(j, joined=10)


def test_label_before_prediction_waits_then_joins() -> None:
    j = LabelJoin()
    assert j.add_label("a", ts=5.0, label=0) is None
    assert j.pending == 0  # early labels are not pending predictions
    got = pred(j, "a", 3.0, p=1)
    assert got is not None
    assert (got.prediction, got.label, got.prediction_ts, got.label_ts) == (1, 0, 3.0, 5.0)
    assert got.latency_s == 2.0
    assert j.pending == 0
    counts(j, joined=1)
    assert j.state()["early"] == {}


def test_a_label_record_ahead_of_its_prediction_record_joins_whole_by_default() -> None:
    # The SDK sends 1,000 labels per record; the worker may read that record before the
    # prediction record they answer (two topics), and with the default limits none is lost.
    j = LabelJoin()
    for i in range(1000):
        assert j.add_label(f"e{i}", ts=10.0 + i, label=i % 2) is None
    joined = [pred(j, f"e{i}", 5.0 + i, p=i % 2) for i in range(1000)]
    assert all(got is not None for got in joined)
    counts(j, joined=1000)


def test_duplicate_label_after_join_is_counted_not_joined() -> None:
    j = LabelJoin()
    pred(j, "a", 1.0)
    assert j.add_label("a", ts=2.0, label=1) is not None
    assert j.add_label("a", ts=3.0, label=1) is None
    assert j.add_label("a", ts=4.0, label=0) is None
    counts(j, joined=1, duplicate_labels=2)
    assert j.state()["early"] == {}  # not held as an orphan either


def test_duplicate_early_label_is_counted_and_first_one_wins() -> None:
    j = LabelJoin()
    assert j.add_label("a", ts=1.0, label="first") is None
    assert j.add_label("a", ts=2.0, label="second") is None
    got = pred(j, "a", 0.5)
    assert got is not None
    assert got.label == "first"
    counts(j, joined=1, duplicate_labels=1)


def test_duplicate_prediction_while_pending_keeps_the_first() -> None:
    j = LabelJoin()
    pred(j, "a", 1.0, p="first")
    assert pred(j, "a", 2.0, p="second") is None
    assert j.pending == 1
    got = j.add_label("a", ts=3.0, label="x")
    assert got is not None
    assert got.prediction == "first"
    counts(j, joined=1, duplicate_predictions=1)


def test_duplicate_prediction_after_join_is_counted() -> None:
    j = LabelJoin()
    pred(j, "a", 1.0)
    j.add_label("a", ts=2.0, label=1)
    assert pred(j, "a", 3.0) is None
    assert j.pending == 0
    counts(j, joined=1, duplicate_predictions=1)


def test_duplicate_prediction_after_early_label_join_is_counted() -> None:
    j = LabelJoin()
    j.add_label("a", ts=1.0, label=1)
    assert pred(j, "a", 2.0) is not None
    assert pred(j, "a", 2.0) is None
    assert j.pending == 0
    counts(j, joined=1, duplicate_predictions=1)


def test_latency_sum_accumulates() -> None:
    j = LabelJoin()
    pred(j, "a", 0.0)
    pred(j, "b", 10.0)
    j.add_label("a", ts=4.0, label=1)
    j.add_label("b", ts=16.0, label=1)
    j.add_label("c", ts=20.0, label=1)
    pred(j, "c", 19.0)  # early label: latency is label_ts - prediction_ts = 1
    assert j.latency_sum == pytest.approx(4.0 + 6.0 + 1.0)
    assert j.counts["joined"] == 3


# --------------------------------------------------------------------------- eviction


def test_ttl_eviction_in_event_time() -> None:
    j = LabelJoin(ttl_s=10.0)
    pred(j, "a", 0.0)
    pred(j, "b", 5.0)
    pred(j, "c", 10.0)  # horizon 0: a (ts 0) is exactly at it and stays
    assert j.pending == 3
    counts(j)
    pred(j, "d", 10.5)  # horizon 0.5: a goes
    assert j.pending == 3
    counts(j, evicted_predictions=1)
    pred(j, "e", 100.0)  # horizon 90: b, c, d go
    assert j.pending == 1
    counts(j, evicted_predictions=4)
    # A label for an evicted prediction cannot join: it waits as an early label.
    assert j.add_label("a", ts=101.0, label=1) is None
    assert "a" in j.state()["early"]


def test_event_time_never_goes_backwards() -> None:
    j = LabelJoin(ttl_s=10.0)
    pred(j, "new", 100.0)
    pred(j, "late", 50.0)  # an old, late arrival does not move the clock back
    assert j.state()["now"] == 100.0
    # Eviction walks arrival order, so the late one waits behind "new" and can still join.
    assert j.pending == 2
    pred(j, "next", 111.0)  # horizon 101: "new" goes, then "late" behind it
    assert list(j.state()["pending"]) == ["next"]
    counts(j, evicted_predictions=2)


def test_max_pending_eviction_drops_the_oldest_arrival() -> None:
    j = LabelJoin(max_pending=3, ttl_s=1e9)
    for i, eid in enumerate("abcde"):
        pred(j, eid, float(i))
    assert j.pending == 3
    counts(j, evicted_predictions=2)
    assert list(j.state()["pending"]) == ["c", "d", "e"]
    assert j.add_label("a", ts=10.0, label=0) is None
    assert j.add_label("e", ts=10.0, label=0) is not None


def test_early_label_eviction_by_count_and_ttl() -> None:
    j = LabelJoin(max_pending=100, ttl_s=50.0, max_early=2)
    for i, eid in enumerate("xyz"):
        assert j.add_label(eid, ts=float(i), label=i) is None
    counts(j, evicted_labels=1)
    assert list(j.state()["early"]) == ["y", "z"]
    j.add_label("w", ts=100.0, label=0)  # horizon 50: y and z go by TTL
    counts(j, evicted_labels=3)
    assert list(j.state()["early"]) == ["w"]
    # The prediction of an evicted early label no longer joins; it waits instead.
    assert pred(j, "x", 99.0) is None
    assert j.pending == 1


def test_everything_evicted_is_counted() -> None:
    """Conservation: every prediction is pending, joined, evicted or a duplicate."""
    rng = random.Random(42)
    j = LabelJoin(max_pending=50, ttl_s=30.0, max_early=20)
    n_pred = n_lab = 0
    ids = [f"e{i}" for i in range(400)]
    ts = 0.0
    for eid in ids:
        ts += rng.random()
        pred(j, eid, ts)
        n_pred += 1
        if rng.random() < 0.7:
            j.add_label(rng.choice(ids[: ids.index(eid) + 1]), ts=ts + rng.random() * 5, label=1)
            n_lab += 1
    c = j.counts
    settled = c["joined"] + c["evicted_predictions"] + c["duplicate_predictions"]
    assert n_pred == j.pending + settled
    early = len(j.state()["early"])
    assert n_lab == c["joined"] + c["duplicate_labels"] + c["evicted_labels"] + early
    assert j.pending <= 50
    assert early <= 20


def test_recent_ids_are_bounded_by_max_pending() -> None:
    j = LabelJoin(max_pending=5)
    for i in range(50):
        pred(j, f"e{i}", float(i))
        j.add_label(f"e{i}", ts=float(i), label=1)
    s = j.state()
    assert len(s["recent"]) == 5
    assert s["recent"] == [f"e{i}" for i in range(45, 50)]
    assert j.add_label("e49", ts=60.0, label=1) is None
    assert j.counts["duplicate_labels"] == 1


# --------------------------------------------------------------------------- state


def limits(j: LabelJoin) -> dict[str, Any]:
    """The limits a join was made with: the policy's, passed again at restore."""
    return {
        "max_pending": j.max_pending,
        "ttl_s": j.ttl_s,
        "max_early": j.max_early,
        "max_bytes": j.max_bytes,
    }


def _populated() -> LabelJoin:
    j = LabelJoin(max_pending=4, ttl_s=20.0, max_early=3)
    for i in range(6):
        pred(j, f"p{i}", float(i), p=i % 2)
    j.add_label("p4", ts=7.0, label=1)
    j.add_label("q1", ts=8.0, label=0)
    j.add_label("q2", ts=8.5, label=1)
    j.add_label("p4", ts=9.0, label=1)  # duplicate
    return j


SCRIPT: list[tuple[str, str, float]] = [
    ("label", "p5", 10.0),
    ("pred", "q1", 10.5),
    ("pred", "p3", 11.0),
    ("label", "p3", 12.0),
    ("label", "zz", 13.0),
    ("pred", "n1", 14.0),
    ("pred", "n2", 15.0),
    ("pred", "n3", 16.0),
    ("label", "p2", 17.0),
    ("pred", "n4", 40.0),
    ("label", "q2", 41.0),
    ("label", "n4", 42.0),
    ("pred", "zz", 43.0),
]


def _run(j: LabelJoin, script: list[tuple[str, str, float]]) -> list[Any]:
    out = []
    for what, eid, ts in script:
        if what == "pred":
            out.append(pred(j, eid, ts, p=eid))
        else:
            out.append(j.add_label(eid, ts=ts, label=eid.upper()))
    return out


def test_state_round_trip_through_bytes_behaves_the_same() -> None:
    a = _populated()
    assert "limits" not in a.state()  # configuration: the policy's, never the state's
    b = LabelJoin.from_state(orjson.loads(orjson.dumps(a.state())), **limits(a))
    assert orjson.dumps(b.state()) == orjson.dumps(a.state())
    assert (b.max_pending, b.ttl_s, b.max_early) == (4, 20.0, 3)
    out_a, out_b = _run(a, SCRIPT), _run(b, SCRIPT)
    assert out_a == out_b
    assert any(x is not None for x in out_a)
    assert a.counts == b.counts
    assert orjson.dumps(a.state()) == orjson.dumps(b.state())


def test_state_round_trip_in_memory_behaves_the_same() -> None:
    a = _populated()
    b = LabelJoin.from_state(a.state(), **limits(a))
    assert _run(a, SCRIPT) == _run(b, SCRIPT)
    assert a.counts == b.counts


def test_state_is_a_snapshot() -> None:
    j = LabelJoin()
    pred(j, "a", 1.0)
    before = orjson.dumps(j.state())
    s = j.state()
    j.add_label("a", ts=2.0, label=1)
    assert orjson.dumps(s) == before


def test_fresh_state_round_trip() -> None:
    j = LabelJoin(max_pending=7, ttl_s=3.0, max_early=2)
    k = LabelJoin.from_state(orjson.loads(orjson.dumps(j.state())), **limits(j))
    assert k.state() == j.state()
    assert k.pending == 0


_events = st.lists(
    st.tuples(
        st.sampled_from(["pred", "label"]),
        st.sampled_from([f"e{i}" for i in range(12)]),
        st.floats(0, 200),
    ),
    max_size=60,
)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(before=_events, after=_events)
def test_state_round_trip_property(
    before: list[tuple[str, str, float]], after: list[tuple[str, str, float]]
) -> None:
    a = LabelJoin(max_pending=5, ttl_s=40.0, max_early=3)
    _run(a, before)
    b = LabelJoin.from_state(orjson.loads(orjson.dumps(a.state())), **limits(a))
    assert _run(a, after) == _run(b, after)
    assert orjson.dumps(a.state()) == orjson.dumps(b.state())
    assert a.pending <= 5
    assert len(a.state()["early"]) <= 3


def test_a_snapshot_from_before_label_origins_still_joins() -> None:
    """Early labels were saved as ``[ts, label]`` rows before they carried their origin."""
    join = LabelJoin()
    join.add_label("a", ts=1.0, label=1, origin=["labels", 0, 5, None])
    state = join.state()
    assert state["early"]["a"] == [1.0, 1, ["labels", 0, 5, None]]
    state["early"]["a"] = [1.0, 1]
    old = LabelJoin.from_state(state, max_pending=10, ttl_s=60.0, max_early=10)
    j = old.add_prediction("a", ts=2.0, version="v1", prediction=0, features={})
    assert j is not None and (j.label, j.early_origin) == (1, None)
    j = LabelJoin.from_state(join.state(), max_pending=10, ttl_s=60.0, max_early=10)
    assert j.add_prediction("a", 2.0, "v1", 0, {}).early_origin == ["labels", 0, 5, None]  # type: ignore[union-attr]


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    max_pending=st.integers(1, 60),
    ttl_s=st.sampled_from([5.0, 50.0, 1e9]),
    max_bytes=st.sampled_from([600, 3000, 10**9]),
)
def test_add_predictions_is_add_prediction_in_turn(
    seed: int, max_pending: int, ttl_s: float, max_bytes: int
) -> None:
    """In bulk or one by one (duplicates, TTL, count and byte evictions), the same state."""
    rng = random.Random(seed)
    one = LabelJoin(max_pending, ttl_s, max_early=5, max_bytes=max_bytes)
    many = LabelJoin(max_pending, ttl_s, max_early=5, max_bytes=max_bytes)
    t = 0.0
    for _ in range(12):
        rows = []
        for _ in range(rng.randint(1, 40)):
            t += rng.random() * 2
            rows.append((f"e{rng.randint(0, 300)}", t - rng.random() * 3, "v1", 1, {"x": t}))
        rows = [r for r in rows if not one.has_early(r[0])]  # those would join
        for r in rows:
            assert one.add_prediction(*r) is None
        many.add_predictions(rows)
        assert one.state() == many.state()
        for j in (one, many):  # labels answer some, come early for others
            for k in range(3):
                j.add_label(f"e{(k * 37 + int(t)) % 300}", t, 0)


def test_add_predictions_pushes_out_the_oldest_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the count limit only: the oldest go in bulk, as one by one, none added per event."""
    one, many = LabelJoin(max_pending=5), LabelJoin(max_pending=5)
    rows = [(f"e{i}", float(i), "v1", i % 2, {"x": i}) for i in range(8)]
    for r in rows:
        one.add_prediction(*r)
    monkeypatch.setattr(many, "add_prediction", None)  # the bulk path must not need it
    many.add_predictions(rows[:3])
    many.add_predictions(rows[3:])
    assert many.state() == one.state()
    assert list(many.state()["pending"]) == ["e3", "e4", "e5", "e6", "e7"]
    assert many.counts["evicted_predictions"] == 3 and many.nbytes == one.nbytes


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    max_pending=st.integers(1, 40),
    max_early=st.integers(1, 40),
    ttl_s=st.sampled_from([5.0, 50.0, 1e9]),
    max_bytes=st.sampled_from([800, 4000, 10**9]),
)
def test_early_labels_held_and_joined_at_once_are_one_by_one(
    seed: int, max_pending: int, max_early: int, ttl_s: float, max_bytes: int
) -> None:
    """``hold_early`` and ``quiet`` + ``add_and_join`` (what the batch paths do at once) give
    the state, joins and byte counts of ``add_label`` and ``add_prediction`` one by one,
    whenever they say they can; and they can often, count evictions included."""
    rng = random.Random(seed)
    one = LabelJoin(max_pending, ttl_s, max_early=max_early, max_bytes=max_bytes)
    many = LabelJoin(max_pending, ttl_s, max_early=max_early, max_bytes=max_bytes)
    t, n, held, joined, over = 0.0, 0, 0, 0, 0
    for _ in range(15):
        labels = []
        for _ in range(rng.randint(1, 20)):  # labels ahead of their predictions
            t += rng.random()
            labels.append((f"e{n + rng.randint(0, 30)}", t - rng.random() * 3, n % 3, None))
        labels = list(dict((r[0], r) for r in labels).values())
        if many.hold_early(labels):
            held += len(labels)
        else:
            for r in labels:
                many.add_label(*r)
        for r in labels:
            one.add_label(*r)
        rows = []
        for _ in range(rng.randint(1, 40)):
            t += rng.random()
            rows.append((f"e{n}", t - rng.random() * 3, "v1", n % 2, {"x": n}))
            n += 1
        answered = [i for i, r in enumerate(rows) if one.has_early(r[0])]
        by_one = [one.add_prediction(*r) for r in rows]
        if many.quiet(rows, answered):
            over += len(many._pending) + len(rows) - len(answered) > max_pending
            by_many = many.add_and_join(rows, answered)
            joined += len(answered)
            assert by_many == [j for j in by_one if j is not None]
        else:
            assert [many.add_prediction(*r) for r in rows] == by_one
        assert one.state() == many.state()
        assert (one.nbytes, one._sizes) == (many.nbytes, many._sizes)
    if max_pending == 40 and max_early == 40 and max_bytes > 4000 and ttl_s > 5:
        assert held and joined, (held, joined)


_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)


@given(
    event_id=st.text(min_size=1, max_size=20),
    ts=st.floats(0, 1e12),
    version=st.text(min_size=1, max_size=10),
    prediction=_JSON_SCALARS,
    features=st.dictionaries(st.text(max_size=8), _JSON_SCALARS, max_size=6),
)
@settings(max_examples=200, deadline=None)
def test_row_bytes_is_the_waiting_entrys_size(
    event_id: str, ts: float, version: str, prediction: Any, features: dict[str, Any]
) -> None:
    # The batch path sizes rows without making their entries; the sizes must be the same.
    row = (event_id, ts, version, prediction, features)
    assert row_bytes(row) == entry_bytes(event_id, WaitingPrediction(*row[1:]))
