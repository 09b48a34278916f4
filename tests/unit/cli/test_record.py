"""``streamproc record`` writes in broker-time order across topics (issue 12 item 11)."""

from __future__ import annotations

import random

import orjson

from streamproc.cli.record import RECORDED, Recorded, _hold, broker_order
from streamproc.cli.replay import replay


class TP:
    def __init__(self, topic: str, partition: int) -> None:
        self.topic, self.partition = topic, partition


class Msg:
    def __init__(self, offset: int, ts_ms: int, value: bytes) -> None:
        self.offset, self.timestamp, self.value = offset, ts_ms, value


def traffic(n: int = 3000, lag: int = 20) -> list[tuple[str, int, dict]]:
    """(topic, broker ms, value): predictions, and each label ``lag`` events later; the error
    rate goes from 0.1 to 0.6 at event 1,500."""
    rng = random.Random(2)
    out: list[tuple[str, int, dict]] = []
    for i in range(n + lag):
        if i < n:
            pred = {"event_id": f"e{i}", "model_id": "m", "model_version": "v1",
                    "ts": 1000.0 + i, "prediction": 0}  # fmt: skip
            out.append(("predictions", 10 * i, pred))
        j = i - lag
        if 0 <= j < n:
            wrong = rng.random() < (0.6 if j >= 1500 else 0.1)
            label = {"event_id": f"e{j}", "model_id": "m", "ts": 1000.0 + i, "label": int(wrong)}
            out.append(("labels", 10 * i, label))
    return out


def consumed_in_blocks(records: list[tuple[str, int, dict]]) -> dict[object, list[Msg]]:
    """What a consumer's getmany hands over: a batch per partition (here one per topic)."""
    batches: dict[object, list[Msg]] = {}
    tps = {t: TP(f"x-{t}", 0) for t in RECORDED}
    for topic, ts, value in records:
        msgs = batches.setdefault(tps[topic], [])
        msgs.append(Msg(len(msgs), ts, orjson.dumps(value)))
    # labels first, as the issue saw: the consumer's batch order is not time order
    return dict(sorted(batches.items(), key=lambda kv: kv[0].topic != "x-labels"))  # type: ignore[attr-defined]


def requests(lines: list[bytes]) -> list[dict]:
    return [e.value for e in replay(lines) if e.topic == "retrain-requests"]


def test_the_recording_is_in_broker_time_order_and_replays_like_the_live_run() -> None:
    records = traffic()
    batches = consumed_in_blocks(records)
    blocks = [
        orjson.dumps({"topic": tp.topic[2:], "value": orjson.loads(m.value)})  # type: ignore[attr-defined]
        for tp, msgs in batches.items()
        for m in msgs
    ]
    held: dict[tuple[str, int], list[Recorded]] = {}
    assert _hold(held, batches, {f"x-{t}": t for t in RECORDED}, None, 0) == len(records)
    merged = [r.line for r in broker_order(held.values())]
    written = [orjson.loads(line) for line in merged]
    assert [(w["topic"], w["kafka_ts"]) for w in written] == [
        (t, ts / 1000.0) for t, ts, _ in records
    ]
    in_time_order = [orjson.dumps({"topic": t, "value": v}) for t, _, v in records]
    live = requests(in_time_order)
    assert [r["reasons"][0]["signal"] for r in live] == ["error"]  # what the live run decides
    assert requests(merged) == live
    # Topic blocks: 3,000 labels before their predictions; the join holds the last max_early
    # (2,000) of them, so the replay decides otherwise than the live run.
    assert requests(blocks) != live


def test_a_partition_keeps_its_order_even_where_its_timestamps_go_back() -> None:
    a = [Recorded(10, 0, 0, 0, b"a0"), Recorded(5, 0, 0, 1, b"a1"), Recorded(20, 0, 0, 2, b"a2")]
    b = [Recorded(7, 1, 0, 0, b"b0"), Recorded(12, 1, 0, 1, b"b1")]
    out = [r.line for r in broker_order([a, b])]
    assert out == [b"b0", b"a0", b"a1", b"b1", b"a2"]
    assert [x for x in out if x.startswith(b"a")] == [b"a0", b"a1", b"a2"]


def test_ties_are_broken_by_topic_then_partition_then_offset() -> None:
    recs = [
        [Recorded(5, 2, 1, 0, b"metric p1")],
        [Recorded(5, 1, 0, 3, b"label p0")],
        [Recorded(5, 0, 1, 0, b"pred p1")],
        [Recorded(5, 0, 0, 9, b"pred p0")],
    ]
    assert [r.line for r in broker_order(recs)] == [
        b"pred p0",
        b"pred p1",
        b"label p0",
        b"metric p1",
    ]
    assert [r.line for r in broker_order(reversed(recs))] == [
        b"pred p0", b"pred p1", b"label p0", b"metric p1"
    ]  # fmt: skip


def test_max_records_keeps_the_first_consumed() -> None:
    batches = consumed_in_blocks(traffic(100))
    held: dict[tuple[str, int], list[Recorded]] = {}
    assert _hold(held, batches, {f"x-{t}": t for t in RECORDED}, 30, 0) == 30
    assert _hold(held, batches, {f"x-{t}": t for t in RECORDED}, 30, 30) == 0
