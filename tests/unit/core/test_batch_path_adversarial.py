"""Adversarial streams through the router, columns kept: batch path = per-event path."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_batch_path import _cut, _run  # records cut as sent; one closed run

from streamproc.core.policy import DriftRule, ErrorRule, JoinLimits, Policy, PolicyBook

DRIFT = DriftRule(
    numeric=(("detector", "rank_cusum"), ("warmup", 20), ("arl", 50.0)),
    categorical=(("detector", "multinomial_cusum"), ("warmup", 20), ("arl", 50.0), ("rate", 0.5)),
    identifier_probe=10,
)
ERR = ErrorRule(params=(("warmup", 20), ("shift", 0.5), ("arl", 100.0)))
POLICIES = {
    "fast": Policy(drift=DRIFT, error=ERR, min_train_examples=5, refit_examples=30),
    "sched": Policy(drift=DRIFT, error=ERR, max_events=57, max_age_s=40.0, min_train_examples=5),
    "tight": Policy(
        drift=DRIFT,
        error=ERR,
        join=JoinLimits(ttl_s=30.0, max_pending=40, max_early=5, max_bytes=6000),
        min_train_examples=5,
    ),
    "quorum": Policy(
        drift=DRIFT,
        error=ERR,
        quorum=2,
        quorum_window_s=50.0,
        cooldown_s=20.0,
        min_samples=30,
        confirm=(2, 5),
    ),
}
LONG = "z" * 230
CATS: list[Any] = [True, False, 1, 0, "1", "true", 1.0, "a", "b", LONG, LONG + "q", None, ""]


def _pred(rng: random.Random, i: int, changed: bool, models: int, versions: float) -> dict:
    shift = 2.0 if changed else 0.0
    cat_pool = CATS[:4] if not changed else CATS[4:]
    feats: dict[str, Any] = {
        "x": rng.gauss(shift, 1) if rng.random() > 0.1 else None,
        "c": rng.choice(cat_pool),
        "n": rng.choice([0, 1, 2, 3, True, 2.5, None, 2**63 - 1]) if rng.random() < 0.5 else 1,
        "t": rng.choice(["a", "b", "c"]) if not changed else rng.choice(["c", "d", "d" * 300]),
    }
    if i > 150 and rng.random() < 0.5:
        feats["late"] = rng.random()
    ts = (
        1000.0
        + i
        + (rng.random() * 3 if rng.random() < 0.1 else 0.0)
        - (5 if rng.random() < 0.05 else 0)
    )
    if rng.random() < 0.004:
        ts = 1e6  # in the future when the record was received at 1.0
    return {
        "event_id": f"e{i % 997}" if rng.random() < 0.02 else f"e{i}",  # duplicate ids now and then
        "model_id": f"m{rng.randrange(models)}",
        "model_version": rng.choice(["v1", "v2", "v3"]) if rng.random() < versions else "v1",
        "ts": ts,
        "prediction": rng.choice([0, 1, True, "1", 1.0]) if changed else rng.randint(0, 1),
        "score": rng.random() if rng.random() < 0.7 else None,
        "features": feats,
    }


def _records(
    seed: int, n: int, size: int, models: int, versions: float, early: float, noscore: float
) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    change = rng.randint(n // 4, n)
    preds = [_pred(rng, i, i >= change, models, versions) for i in range(n)]
    labels = []
    for p in preds:
        if rng.random() < 0.6:
            y = p["prediction"] if rng.random() < (0.9 if p["ts"] < 1000 + change else 0.5) else 0
            labels.append(
                {
                    "event_id": p["event_id"],
                    "model_id": p["model_id"],
                    "ts": p["ts"] + rng.choice([1.0, 5.0, 50.0]),
                    "label": int(bool(y)),
                }
            )

    def edit(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [dict(p, score=None) for p in chunk] if rng.random() < noscore else chunk

    return _cut(preds, labels, size, rng, early, edit)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    size=st.sampled_from([1, 5, 64, 700]),
    n=st.integers(30, 1200),
    models=st.sampled_from([1, 1, 3]),
    versions=st.sampled_from([0.0, 0.05, 0.5]),
    early=st.sampled_from([0.0, 0.5]),
    noscore=st.sampled_from([0.0, 0.5]),
    policy=st.sampled_from(sorted(POLICIES)),
    received=st.sampled_from([0.0, 1.0]),
)
def test_router_batch_is_per_event(
    seed: int,
    size: int,
    n: int,
    models: int,
    versions: float,
    early: float,
    noscore: float,
    policy: str,
    received: float,
) -> None:
    records = _records(seed, n, size, models, versions, early, noscore)
    book = PolicyBook(POLICIES[policy])
    one = _run(records, book, False, received, again=3)
    many = _run(records, book, True, received, again=3)
    assert many[0] == one[0]
    assert many[1] == one[1]
