"""Batched records: the same stream one event per record and in batches gives the same results."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.cli.replay import instant_deployment, replay
from streamproc.core.batches import columns, is_batch, split
from streamproc.core.events import SourceRef, encode
from streamproc.core.monitor import ModelMonitor
from streamproc.core.router import Monitors, iter_record, route, route_record
from streamproc.sim.scenarios import interactions, rule_model

Rec = tuple[str, dict[str, Any]]


def stream(seed: int = 3, n: int = 1500, block: int = 40) -> list[Rec]:
    """Two models, a concept change each, labels delayed by a block, missing values, bad events."""
    rng = random.Random(seed)
    out: list[Rec] = []
    per_model = {
        m: list(
            interactions(
                m,
                lambda i, c=c: "A" if i < c else "B",
                lambda i: ("v1", rule_model("A", flip=0.05)),
                0,
                n,
                seed=seed + k,
            )
        )
        for k, (m, c) in enumerate((("m1", n // 3), ("m2", n // 2)))
    }
    for start in range(0, n, block):
        for x in [x for m in per_model for x in per_model[m][start : start + block]]:
            p = dict(x.prediction, features=dict(x.prediction["features"]))
            if rng.random() < 0.05:
                p["features"]["x2"] = None  # a missing value
            p["score"] = round(rng.random(), 3) if rng.random() < 0.7 else None
            if rng.random() < 0.003:
                p["ts"] = "yesterday"  # a bad event: a dead letter alone
            out.append(("predictions", {k: v for k, v in p.items() if v is not None}))
        labels = [x.label for m in per_model for x in per_model[m][start : start + block]]
        rng.shuffle(labels)
        out.extend(("labels", lab) for lab in labels)
    return out


def batched(records: list[Rec], size: int, many_models: bool) -> list[Rec]:
    """Runs of consecutive records of one topic (and one model unless ``many_models``)."""
    out: list[Rec] = []
    run: list[dict[str, Any]] = []
    for i, (topic, value) in enumerate(records):
        run.append(value)
        nxt = records[i + 1] if i + 1 < len(records) else None
        same = (
            nxt is not None
            and nxt[0] == topic
            and (many_models or nxt[1]["model_id"] == value["model_id"])
        )
        if len(run) == size or not same:
            kind = topic.removesuffix("s")
            out.append((topic, columns(kind, run)))
            run = []
    return out


def drive(records: list[Rec]) -> tuple[list[Any], Monitors]:
    """The replay's loop on the core: each request deployed at once, before the next event."""
    monitors = Monitors()
    emitted: list[Any] = []
    offsets = {"predictions": 0, "labels": 0, "deployments": 0}
    for topic, value in records:
        offsets[topic] += 1
        src = SourceRef(topic, 0, offsets[topic])
        for out in iter_record(monitors, topic, orjson.dumps(value), src, 0.0):
            if out.dead_letter is not None:
                emitted.append(out.dead_letter)
            for req in out.requests:
                emitted.append(req)
                monitors.sent(req)  # as the replay: written out, out of the outbox
                dep = instant_deployment(req)
                offsets["deployments"] += 1
                route(monitors, "deployments", encode(dep), SourceRef("deployments", 0, 0), 0.0)
    return emitted, monitors


def comparable(x: Any) -> Any:
    """An emitted event without where it came from (offsets differ between the two wires)."""
    d = orjson.loads(encode(x))
    d.pop("source", None)
    d.pop("raw", None)
    if "error" in d:
        d["error"] = d["error"].split("of the batch: ", 1)[-1]
    return d


def state(monitors: Monitors) -> dict[str, Any]:
    out = {}
    for mid, mon in monitors.live.items():
        s = orjson.loads(mon.snapshot())
        s.pop("offsets")
        s.pop("batch_pos")
        for row in s["join"]["early"].values():
            assert len(row) == 3  # [ts, label, where the label came from]: offsets again
            del row[2]
        out[mid] = s
    return out


@pytest.mark.parametrize("size", [1, 7, 100, 10_000])
@pytest.mark.parametrize("many_models", [False, True])
def test_batched_stream_gives_the_same_requests_evidence_ids_and_state(
    size: int, many_models: bool
) -> None:
    single = stream()
    one, mons_one = drive(single)
    many, mons_many = drive(batched(single, size, many_models))
    assert sum(1 for x in one if type(x).__name__ == "RetrainRequest") >= 2  # it did something
    assert sum(1 for x in one if type(x).__name__ == "DeadLetter") >= 1
    assert [comparable(x) for x in many] == [comparable(x) for x in one]
    assert state(mons_many) == state(mons_one)


def test_replay_of_batched_lines_emits_what_single_lines_emit() -> None:
    single = stream(seed=5)

    def emitted(records: list[Rec]) -> list[tuple[str, Any]]:
        lines = [orjson.dumps({"topic": t, "value": v}) for t, v in records]
        return [(e.topic, comparable_dict(e.value)) for e in replay(lines)]

    one = emitted(single)
    assert any(t == "deployments" for t, _ in one)
    assert emitted(batched(single, 250, many_models=True)) == one


def comparable_dict(d: dict[str, Any]) -> dict[str, Any]:
    d = dict(d)
    d.pop("source", None)
    d.pop("raw", None)
    if "error" in d:
        d["error"] = d["error"].split("of the batch: ", 1)[-1]
    return d


def test_replay_dead_letter_of_a_batch_event_names_its_line_and_index() -> None:
    value = {
        "model_id": "m",
        "model_version": "v1",
        "event_id": ["a", "b", "c"],
        "ts": [1.0, "noon", 3.0],
        "prediction": [1, 0, 1],
    }
    out = list(replay([orjson.dumps({"topic": "predictions", "value": value})]))
    assert [(e.topic, e.value["source"]) for e in out] == [
        ("dead-letters", {"topic": "predictions", "partition": 0, "offset": 0, "index": 1})
    ]
    assert out[0].value["error"].startswith("event 1 of the batch: prediction: field 'ts'")


# --------------------------------------------------------------------------- dead letters


def batch(**over: Any) -> bytes:
    value: dict[str, Any] = {
        "model_id": "m",
        "model_version": "v1",
        "event_id": ["a", "b", "c"],
        "ts": [1.0, 2.0, 3.0],
        "prediction": [1, 0, 1],
        "features": {"x": [0.1, None, 0.3]},
    }
    value.update(over)
    return orjson.dumps({k: v for k, v in value.items() if v is not None})


def outcomes(raw: bytes, offset: int = 0, monitors: Monitors | None = None) -> list[Any]:
    src = SourceRef("predictions", 2, offset)
    return list(route_record(monitors or Monitors(), "predictions", raw, src, 0.0))


def test_a_bad_event_is_one_dead_letter_with_its_index_and_the_rest_is_applied() -> None:
    monitors = Monitors()
    outs = outcomes(batch(score=[0.5, 7.0, None]), monitors=monitors)
    assert [o.dead_letter is None for o in outs] == [True, False, True]
    dl = outs[1].dead_letter
    assert dl.source == SourceRef("predictions", 2, 0, 1)
    assert dl.error.startswith("event 1 of the batch: prediction: field 'score' is 7.0")
    assert orjson.loads(dl.raw)["event_id"] == "b"  # the event alone: fix it, send it again
    assert monitors.live["m"].counts["predictions"] == 2


@pytest.mark.parametrize(
    ("over", "says"),
    [
        ({"ts": [1.0, 2.0]}, "field 'ts' has 2 values but 'event_id' has 3"),
        ({"ts": 5.0}, "field 'ts' is not an array"),
        ({"prediction": None}, "field 'prediction' is missing"),
        ({"features": [1, 2, 3]}, "field 'features' is not an object"),
        ({"features": {"x": 1.0}}, "field 'features.x' is not an array"),
        ({"features": {"x": [1.0]}}, "field 'features.x' has 1 values"),
        ({"model_id": ["m", "n"]}, "field 'model_id' has 2 values"),
        ({"model_id": 7}, "field 'model_id' must be a non-empty string or an array"),
        ({"event_id": [], "ts": [], "prediction": []}, "'event_id' is an empty array"),
    ],
)
def test_a_malformed_batch_is_one_dead_letter_saying_what_is_wrong(
    over: dict[str, Any], says: str
) -> None:
    outs = outcomes(batch(**over))
    assert len(outs) == 1
    dl = outs[0].dead_letter
    assert dl is not None and dl.source.index is None
    assert dl.error.startswith("prediction batch: ") and says in dl.error, dl.error
    assert "; send" in dl.error


def test_a_batch_over_the_size_limit_is_one_dead_letter() -> None:
    n = 60_000
    raw = batch(
        event_id=[f"event-{i:08d}" for i in range(n)],
        ts=[1.0] * n,
        prediction=[1] * n,
        features=None,
    )
    (out,) = outcomes(raw)
    assert out.dead_letter is not None and out.dead_letter.reason == "too_large"
    assert "fewer events per record" in out.dead_letter.error


# --------------------------------------------------------------------------- redelivery


def test_every_event_of_a_batch_is_applied_once_and_a_redelivered_batch_not_again() -> None:
    monitors = Monitors()
    many = batch(model_id=["m", "n", "m"], model_version="v1")
    first = outcomes(many, offset=5, monitors=monitors)
    assert [o.model_id for o in first] == ["m", "n", "m"]
    assert not any(o.redelivered for o in first)
    assert monitors.live["m"].counts["predictions"] == 2
    before = {m: mon.snapshot() for m, mon in monitors.live.items()}
    again = outcomes(many, offset=5, monitors=monitors)
    assert all(o.redelivered for o in again)
    for m, mon in monitors.live.items():
        snap = orjson.loads(mon.snapshot())
        assert snap.pop("counts").pop("redelivered") >= 1
        old = orjson.loads(before[m])
        old["counts"].pop("redelivered", None)
        snap["counts"] = old["counts"]
        assert snap == old
    nxt = outcomes(batch(event_id=["d", "e", "f"]), offset=6, monitors=monitors)
    assert not any(o.redelivered for o in nxt)


def test_accept_orders_events_by_offset_then_index_and_survives_a_snapshot() -> None:
    mon = ModelMonitor("m")
    src = SourceRef("predictions", 0, 5, 0)
    assert mon.accept(src)
    assert mon.accept(SourceRef("predictions", 0, 5, 2))
    mon = ModelMonitor.restore(mon.snapshot())  # a crash after index 2 of offset 5
    assert not mon.accept(SourceRef("predictions", 0, 5, 1))
    assert not mon.accept(SourceRef("predictions", 0, 5, 2))
    assert mon.accept(SourceRef("predictions", 0, 5, 3))
    assert not mon.accept(SourceRef("predictions", 0, 4, 9))
    assert mon.accept(SourceRef("predictions", 0, 6))  # a single-event record, applied whole
    assert not mon.accept(SourceRef("predictions", 0, 6))
    assert not mon.accept(SourceRef("predictions", 0, 6, 0))
    assert mon.accept(SourceRef("predictions", 1, 0, 0))  # another partition: its own order


def test_snapshot_from_before_batches_restores() -> None:
    snap = orjson.loads(ModelMonitor("m").snapshot())
    del snap["batch_pos"]
    assert ModelMonitor.restore(orjson.dumps(snap)).batch_pos == {}


# --------------------------------------------------------------------------- the format


feature_value = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.text(max_size=5)
)
event = st.fixed_dictionaries(
    {
        "event_id": st.text(min_size=1, max_size=8),
        "model_id": st.sampled_from(["a", "b"]),
        "model_version": st.sampled_from(["v1", "v2"]),
        "ts": st.floats(0, 2e9),
        "prediction": st.one_of(st.booleans(), st.integers(0, 3)),
        "features": st.fixed_dictionaries({"x": feature_value, "y": feature_value}),
    },
    optional={"score": st.floats(0, 1)},
)


@settings(max_examples=60, deadline=None)
@given(st.lists(event, min_size=1, max_size=20))
def test_columns_then_split_gives_the_events_back(events: list[dict[str, Any]]) -> None:
    cols = columns("prediction", events)
    assert is_batch(cols)
    back = split(orjson.loads(orjson.dumps(cols)), "prediction")
    assert back == events


def test_a_single_event_record_is_not_a_batch_and_routes_as_before() -> None:
    raw = orjson.dumps(
        {"event_id": "a", "model_id": "m", "model_version": "v1", "ts": 1.0, "prediction": 1}
    )
    assert not is_batch(orjson.loads(raw))
    (out,) = route_record(Monitors(), "predictions", raw, SourceRef("predictions", 0, 0), 0.0)
    assert out.model_id == "m" and out.dead_letter is None


def test_unknown_batch_fields_are_kept_in_every_event() -> None:
    raw = batch(region="eu")
    events = split(orjson.loads(raw), "prediction")
    assert [e["region"] for e in events] == ["eu"] * 3


def test_a_request_raised_inside_a_batch_names_the_event_s_index_and_round_trips() -> None:
    from streamproc.core.events import Reason, RetrainRequest, parse_retrain_request

    src = SourceRef("labels", 3, 17, 42)
    req = RetrainRequest(
        "rr-1", "m", "v1", 5.0, (Reason("error", "cusum", 1.0, 0.5, 9),), source=src
    )
    raw = encode(req)
    assert orjson.loads(raw)["source"] == {
        "topic": "labels",
        "partition": 3,
        "offset": 17,
        "index": 42,
    }
    assert parse_retrain_request(raw).source == src
    single = encode(
        RetrainRequest("rr-2", "m", "v1", 5.0, req.reasons, source=SourceRef("l", 0, 1))
    )
    assert "index" not in orjson.loads(single)["source"]
