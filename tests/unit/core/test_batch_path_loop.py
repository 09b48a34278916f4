"""The batch path against the per-event path, where a review of it looked for differences.

- Reproductions of what the review found (fixed): the current version dropped from the
  traffic share by its own first observation (ten versions, the new one the lightest), a
  share over its bound (a snapshot's), and nested feature values in a batch that was not
  checked whole (each event's check must then run).
- A closed-loop property test: the stream follows the deployed version (as inference servers
  do), requests are answered by deployments (some with a small training set, so a refit is
  due), rejections and failures (the degraded backoff), or not at all, rollbacks go live,
  labels mostly come before their predictions. ``test_batch_path.py`` keeps serving ``v1``
  after the first deployment, so there every later prediction is another version's and goes
  one by one: the batch path is compared here on a deployed candidate, its rollback watch,
  refit and backoff.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.cli.replay import instant_deployment
from streamproc.core import batches, batchmonitor
from streamproc.core.batchmonitor import apply_predictions
from streamproc.core.events import (
    DeploymentEvent,
    PredictionEvent,
    RetrainResult,
    SourceRef,
    encode,
)
from streamproc.core.labeljoin import LabelJoin
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import (
    DriftRule,
    ErrorRule,
    JoinLimits,
    Policy,
    PolicyBook,
    RollbackRule,
)
from streamproc.core.router import Monitors, Outcome, iter_record, route
from streamproc.core.topics import DEPLOYMENTS, RETRAIN_RESULTS

# --------------------------------------------------------------------------- the traffic share


def _nine_other_versions_then_deploy(mon: ModelMonitor) -> None:
    """Nine versions served a little each (canaries, or candidates deployed in turn), then a
    new version deployed: the traffic share tracks nine versions, all heavier than 1.0."""
    for v in range(9):
        for i in range(3):
            ev = PredictionEvent(f"c{v}-{i}", "m", f"c{v}", float(3 * v + i), 0, {"x": 1.0})
            mon.on_prediction(ev, None)
    mon.on_deployment(DeploymentEvent("dep-1", "m", "new", "promote", 100.0, previous_version="c0"))


def test_a_new_version_dropped_by_its_own_first_observation() -> None:
    evs = [
        PredictionEvent(f"n{i}", "m", "new", 101.0 + i, i % 2, {"x": float(i % 5)})
        for i in range(5)
    ]
    one, many = ModelMonitor("m"), ModelMonitor("m")
    _nine_other_versions_then_deploy(one)
    _nine_other_versions_then_deploy(many)
    want = [one.on_prediction(ev, None) for ev in evs]
    got = [emitted for _, emitted in apply_predictions(many, evs)]  # raises KeyError: 'new'
    assert got == want
    assert many.snapshot() == one.snapshot()


def _route_new_version(vectorized: bool) -> tuple[list[Outcome], bytes]:
    monitors = Monitors(PolicyBook())
    canaries = [
        {
            "event_id": f"c{v}-{i}",
            "model_id": "m",
            "model_version": f"c{v}",
            "ts": float(3 * v + i),
            "prediction": 0,
            "features": {"x": 1.0},
        }
        for v in range(9)
        for i in range(3)
    ]
    preds = [
        {
            "event_id": f"n{i}",
            "model_id": "m",
            "model_version": "new",
            "ts": 101.0 + i,
            "prediction": i % 2,
            "features": {"x": float(i % 5)},
        }
        for i in range(5)
    ]
    outs: list[Outcome] = []
    raw = orjson.dumps(batches.columns("prediction", canaries))
    src = SourceRef("predictions", 0, 0)
    outs.extend(iter_record(monitors, "predictions", raw, src, 0.0, vectorized))
    dep = DeploymentEvent("dep-1", "m", "new", "promote", 100.0, previous_version="c0")
    route(monitors, DEPLOYMENTS, encode(dep), SourceRef(DEPLOYMENTS, 0, 0), 0.0)
    raw = orjson.dumps(batches.columns("prediction", preds))
    src = SourceRef("predictions", 0, 1)
    outs.extend(iter_record(monitors, "predictions", raw, src, 0.0, vectorized))
    return outs, monitors.live["m"].snapshot()


def test_a_dropped_current_version_through_the_router() -> None:
    one_by_one = _route_new_version(vectorized=False)
    batched = _route_new_version(vectorized=True)
    assert [o.dead_letter for o in batched[0]] == [o.dead_letter for o in one_by_one[0]]
    assert batched == one_by_one


def test_observe_many_over_a_restored_bound() -> None:
    from streamproc.core.versions import TrafficShare

    state = {"w": {f"v{i}": 100.0 + i for i in range(12)}}  # 12 > the 9 tracked
    one, many = TrafficShare.from_state(state), TrafficShare.from_state(state)
    for _ in range(5):
        one.observe("v11")
    many.observe_many("v11", 5)
    assert many.weights == one.weights


# --------------------------------------------------------------------------- nested feature values


def _nested_feature_batch(vectorized: bool) -> list[Outcome]:
    obj = {
        "event_id": ["a", "b"],
        "model_id": "m",
        "model_version": "v1",
        "ts": [1.0, 2.0],
        "prediction": [0, 1],
        "features": {"x": [[1, 2], 2.0], "y": [{"k": 1}, 3]},  # nested values: refused
    }
    raw = orjson.dumps(obj)
    src = SourceRef("predictions", 0, 0)
    return list(iter_record(Monitors(PolicyBook()), "predictions", raw, src, 0.0, vectorized))


def test_nested_feature_values_are_checked_in_a_batch() -> None:
    one_by_one = _nested_feature_batch(vectorized=False)
    assert one_by_one[0].dead_letter is not None
    assert one_by_one[0].dead_letter.reason == "invalid_field"
    assert _nested_feature_batch(vectorized=True) == one_by_one


# --------------------------------------------------------------------------- closed loop

DRIFT = DriftRule(
    numeric=(("detector", "rank_cusum"), ("warmup", 30), ("arl", 300.0)),
    categorical=(("detector", "multinomial_cusum"), ("warmup", 30), ("arl", 300.0)),
    identifier_probe=20,
)
ERROR = ErrorRule(params=(("warmup", 30), ("shift", 0.5), ("arl", 300.0)))
ROLLBACK = RollbackRule(min_samples=30, max_samples=400, z=2.0, baseline_n=100)


def _loop_policy(refit_examples: int, **rules: Any) -> Policy:
    """A fast policy with rollback and refit, and ``rules`` on top."""
    return Policy(
        drift=DRIFT,
        error=ERROR,
        min_train_examples=10,
        rollback=ROLLBACK,
        pending_timeout_s=150.0,
        refit_examples=refit_examples,
        **rules,
    )


LOOP_POLICIES = {
    "loop": _loop_policy(40),
    "quorum": _loop_policy(40, quorum=2, quorum_window_s=300.0, cooldown_s=100.0, confirm=(2, 200)),
    "tight_join": _loop_policy(
        30, join=JoinLimits(ttl_s=60.0, max_pending=80, max_early=15, max_bytes=9000)
    ),
    "scheduled": _loop_policy(
        40, max_events=150, max_age_s=240.0, warmup_events=20, budget=(3, 500.0)
    ),
    # held label-free alarms expire; few labels needed
    "short_ttl": _loop_policy(20, join=JoinLimits(ttl_s=40.0)),
}
# How a request is answered: 0 deployed, trained on 15 (a refit is due), 1 deployed, 2 rejected,
# 3 failed (the degraded backoff arms), 4 never (pending until its timeout).
ANSWERS = (0, 1, 1, 2, 3, 0, 1, 4)


def _hash(s: str) -> int:
    return int(hashlib.sha256(s.encode()).hexdigest()[:8], 16)


def closed_loop(
    policy: Policy,
    seed: int,
    n: int,
    size: int,
    vectorized: bool,
    regression: bool = False,
    early_share: float = 0.7,
    two_models: bool = False,
    answers: tuple[int, ...] = ANSWERS,
    canary: float = 0.03,
) -> tuple[list[Outcome], dict[str, bytes]]:
    """Every Outcome of a stream that serves the deployed version, and the snapshots."""
    rng = random.Random(seed)
    monitors = Monitors(PolicyBook(policy))
    served = {"m1": "v1", "m2": "v1"}
    outs: list[Outcome] = []
    offsets = dict.fromkeys(("predictions", "labels", DEPLOYMENTS, RETRAIN_RESULTS), 0)
    change_at = sorted(rng.randint(n // 5, n) for _ in range(2))

    def control(topic: str, raw: bytes) -> None:
        offsets[topic] += 1
        outs.append(route(monitors, topic, raw, SourceRef(topic, 0, offsets[topic]), 0.0))

    def answer(out: Outcome) -> None:
        for dep in out.deployments:  # a rollback goes live
            served[dep.model_id] = dep.version
            control(DEPLOYMENTS, encode(dep))
        for req in out.requests:
            how = answers[_hash(req.request_id) % len(answers)]
            if how in (0, 1):
                dep = dataclasses.replace(
                    instant_deployment(req), metrics={"train": 15} if how == 0 else {}
                )
                served[req.model_id] = dep.version
                control(DEPLOYMENTS, encode(dep))
            elif how in (2, 3):
                status = "rejected" if how == 2 else "failed"
                result = RetrainResult(req.request_id, req.model_id, status, req.ts)
                control(RETRAIN_RESULTS, encode(result))

    def send(topic: str, kind: str, events: list[dict[str, Any]]) -> None:
        for k in range(0, len(events), size):
            offsets[topic] += 1
            raw = orjson.dumps(batches.columns(kind, events[k : k + size]))
            src = SourceRef(topic, 0, offsets[topic])
            for out in iter_record(monitors, topic, raw, src, 0.0, vectorized):
                outs.append(out)
                answer(out)

    def error_rate(version: str, k: int) -> float:  # some candidates are worse: rollbacks
        worse = version != "v1" and _hash(version) % 3 == 0
        return 0.1 + 0.15 * k + (0.3 if worse else 0.0)

    held: list[tuple[int, dict[str, Any]]] = []  # (due after this many predictions, label)
    ts, i = 1000.0, 0
    while i < n:
        chunk = []
        for _ in range(min(size, n - i)):
            model = "m1" if not two_models or rng.random() < 0.7 else "m2"
            k = sum(1 for c in change_at if i >= c)
            version = served[model] if rng.random() >= canary else "canary"
            ts += rng.choice([1.0, 1.0, 1.0, 0.5, 2.0, 0.0])
            feats: dict[str, Any] = {
                "x": rng.gauss(1.2 * k, 1.0) if rng.random() > 0.05 else None,
                "heavy": rng.lognormvariate(2.0 + 0.8 * k, 1.2),
                "count": rng.randint(0, 4) + 2 * k,
                "cat": rng.choice("abcd" if k % 2 == 0 else "aaad"),
            }
            if rng.random() < 0.5:
                feats["opt"] = rng.random()
            if regression:
                pred: Any = round(rng.gauss(k, 1.0), 3)
            else:
                pred = rng.randint(0, 1) if k % 2 == 0 else int(rng.random() < 0.8)
            p = {
                "event_id": f"{model}-e{i}",
                "model_id": model,
                "model_version": version,
                "ts": ts,
                "prediction": pred,
                "score": rng.random() if i % 3 else None,
                "features": feats,
            }
            chunk.append(p)
            if rng.random() < 0.6:
                err = error_rate(version, k)
                if regression:
                    y: Any = round(pred + rng.gauss(0.0, 0.3 + 2 * err), 3)
                else:
                    y = pred if rng.random() > err else 1 - pred
                    if rng.random() < 0.005:
                        y = "yes"  # a type mismatch
                label = {"event_id": p["event_id"], "model_id": model, "ts": ts + 3.0, "label": y}
                early = rng.random() < early_share
                held.append((-1 if early else i + int(rng.expovariate(1.0 / (3 * size))), label))
            i += 1
        if rng.random() < 0.05:  # a record without the optional feature: missing keys
            for p in chunk:
                p["features"].pop("opt", None)
        send("labels", "label", [lab for due, lab in held if due == -1])
        send("predictions", "prediction", chunk)
        send("labels", "label", [lab for due, lab in held if 0 <= due < i])
        held = [(due, lab) for due, lab in held if due >= i]
    return outs, {mid: mon.snapshot() for mid, mon in monitors.live.items()}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    size=st.sampled_from([7, 100, 1000]),
    n=st.integers(300, 2500),
    policy=st.sampled_from(sorted(LOOP_POLICIES)),
    regression=st.booleans(),
    early=st.sampled_from([0.1, 0.7, 0.95]),
    two_models=st.booleans(),
)
def test_closed_loop_batch_path_is_the_per_event_path(
    seed: int,
    size: int,
    n: int,
    policy: str,
    regression: bool,
    early: float,
    two_models: bool,
) -> None:
    pol = LOOP_POLICIES[policy]
    one_by_one = closed_loop(pol, seed, n, size, False, regression, early, two_models)
    batched = closed_loop(pol, seed, n, size, True, regression, early, two_models)
    assert batched[0] == one_by_one[0]
    assert batched[1] == one_by_one[1]


def test_the_closed_loop_exercises_what_it_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deployed candidates applied in bulk, rollbacks, early labels held in bulk and joined
    inside runs (in bulk, and one by one: some of them asking to retrain), type mismatches."""
    seen = dict.fromkeys(
        ("bulk_candidate", "early_joins", "early_emitted", "early_in_bulk", "early_held"), 0
    )
    bookkeeping, join_early = batchmonitor._bookkeeping, batchmonitor._join_early
    add_and_join = LabelJoin.add_and_join

    def joins(join: LabelJoin, rows: Any, answered: Any) -> Any:
        seen["early_in_bulk"] += len(answered)
        return add_and_join(join, rows, answered)

    hold_early = LabelJoin.hold_early

    def held(join: LabelJoin, rows: Any) -> bool:
        out = hold_early(join, rows)
        seen["early_held"] += len(rows) if out else 0
        return out

    def bulk(mon: ModelMonitor, evs: Any, start: int, stop: int) -> None:
        versions = evs.column("model_version", start, stop)
        seen["bulk_candidate"] += sum(v.startswith("v-") for v in versions)
        bookkeeping(mon, evs, start, stop)

    def early(mon: ModelMonitor, ev: PredictionEvent, src: Any) -> Any:
        out = join_early(mon, ev, src)
        seen["early_joins"] += 1
        seen["early_emitted"] += out is not None
        return out

    monkeypatch.setattr(batchmonitor, "_bookkeeping", bulk)
    monkeypatch.setattr(batchmonitor, "_join_early", early)
    monkeypatch.setattr(LabelJoin, "add_and_join", joins)
    monkeypatch.setattr(LabelJoin, "hold_early", held)
    outs, snaps = closed_loop(LOOP_POLICIES["scheduled"], 3, 3000, 100, True, regression=True)
    counts = orjson.loads(snaps["m1"])["counts"]
    assert sum(len(o.requests) for o in outs) >= 5
    assert any(o.deployments for o in outs) and counts["rollbacks"] >= 1
    assert seen["bulk_candidate"] > 500 and seen["early_joins"] + seen["early_in_bulk"] > 500
    assert seen["early_in_bulk"] > 300 and seen["early_joins"] > 5, seen
    assert seen["early_held"] > 300, seen
    assert seen["early_emitted"] >= 1
    outs, _ = closed_loop(LOOP_POLICIES["loop"], 3, 3000, 100, True)
    letters = [o.dead_letter.reason for o in outs if o.dead_letter is not None]
    assert "label_type_mismatch" in letters


def test_frequent_retrains_fill_the_traffic_share() -> None:
    pol = LOOP_POLICIES["scheduled"]
    kw: dict[str, Any] = {"answers": (1,), "canary": 0.0}
    one_by_one = closed_loop(pol, 1, 2500, 100, False, **kw)
    batched = closed_loop(pol, 1, 2500, 100, True, **kw)
    assert [o.dead_letter for o in batched[0] if o.dead_letter is not None] == [
        o.dead_letter for o in one_by_one[0] if o.dead_letter is not None
    ]
    assert batched == one_by_one
