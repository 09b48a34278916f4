"""The SDK's batching: per model, up to N events or T seconds, every record under its size limit."""

from __future__ import annotations

import orjson
import pytest

from streamproc.client import LabelLogger, MetricLogger, PredictionLogger
from streamproc.client.loggers import _Batcher
from streamproc.core.batches import is_batch, split
from streamproc.core.router import MAX_RECORD_BYTES


def pred(i: int, model: str = "m", **extra: object) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e{i}",
            "model_id": model,
            "model_version": "v1",
            "ts": float(i),
            "prediction": i % 2,
            "features": {"x": i / 3, "text": "a" * (i % 50)},
            **extra,
        }
    )


def events_of(records: list[tuple[bytes, bytes, int]]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for _, value, n in records:
        obj = orjson.loads(value)
        got = split(obj, "prediction") if is_batch(obj) else [obj]
        assert len(got) == n
        out.extend(got)
    return out


def test_a_model_s_events_become_one_record_at_n_events_in_order() -> None:
    b = _Batcher("prediction", max_events=10, max_s=60.0, max_bytes=MAX_RECORD_BYTES)
    ready = []
    for i in range(25):
        ready += b.add(b"m" if i % 2 else b"n", pred(i, "m" if i % 2 else "n"), now=0.0)
    assert [(k, n) for k, _, n in ready] == [(b"n", 10), (b"m", 10)]
    assert len(b) == 5
    rest = b.all()
    assert sorted(n for _, _, n in rest) == [2, 3] and len(b) == 0
    got = events_of(ready + rest)
    for model in ("m", "n"):
        ids = [e["event_id"] for e in got if e["model_id"] == model]
        assert ids == sorted(ids, key=lambda s: int(str(s)[1:]))
    assert {e["event_id"] for e in got} == {f"e{i}" for i in range(25)}


def test_a_batch_is_cut_once_its_oldest_event_waited_t() -> None:
    b = _Batcher("prediction", max_events=1000, max_s=0.1, max_bytes=MAX_RECORD_BYTES)
    assert b.add(b"m", pred(0), now=10.0) == []
    assert b.add(b"m", pred(1), now=10.05) == []
    assert b.due(10.09) == []
    assert b.wait_s(10.09) == pytest.approx(0.01)
    (rec,) = b.due(10.11)
    assert rec[2] == 2 and b.wait_s(10.11) is None


def test_records_stay_under_the_size_limit() -> None:
    limit = 20_000
    b = _Batcher("prediction", max_events=100_000, max_s=60.0, max_bytes=limit)
    ready = []
    for i in range(3000):
        ready += b.add(b"m", pred(i), now=0.0)
    ready += b.all()
    assert all(len(v) <= limit for _, v, _ in ready)
    assert sum(n for _, _, n in ready) == 3000
    assert len(ready) < 3000 / 50  # still batches, not single events
    assert [e["event_id"] for e in events_of(ready)] == [f"e{i}" for i in range(3000)]


def test_an_event_with_extra_fields_goes_alone_after_the_earlier_ones() -> None:
    b = _Batcher("prediction", max_events=100, max_s=60.0, max_bytes=MAX_RECORD_BYTES)
    assert b.add(b"m", pred(0), 0.0) == []
    assert b.add(b"m", pred(1), 0.0) == []
    ready = b.add(b"m", pred(2, region="eu"), 0.0)
    assert [n for _, _, n in ready] == [2, 1]
    assert orjson.loads(ready[1][1])["region"] == "eu"


def test_loggers_batch_by_default_and_can_send_single_events() -> None:
    closed = "127.0.0.1:1"
    loggers = [
        PredictionLogger(closed, batch_events=50, batch_ms=20),
        LabelLogger(closed),
        PredictionLogger(closed, batched=False),
        MetricLogger(closed),
    ]
    try:
        got = [lg.batcher for lg in loggers]
        assert got[0] is not None and got[0].max_events == 50 and got[0].max_s == 0.02
        assert got[1] is not None and got[1].kind == "label"
        assert got[2] is None and got[3] is None  # metrics have no batched form
        with pytest.raises(ValueError, match="batch_events"):
            PredictionLogger(closed, batch_events=0)
    finally:
        for lg in loggers:
            lg.close(timeout=0.5)
