"""apply_predictions on event lists (varying keys, NaN, versions, scores): as one by one."""

from __future__ import annotations

import math
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.core.batchmonitor import apply_predictions
from streamproc.core.events import LabelEvent, PredictionEvent
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import DriftRule, ErrorRule, Policy

DRIFT = DriftRule(
    numeric=(("detector", "rank_cusum"), ("warmup", 15), ("arl", 40.0)),
    categorical=(
        ("detector", "multinomial_cusum"),
        ("warmup", 15),
        ("arl", 40.0),
        ("rate", 0.9),
        ("max_categories", 2),
        ("min_count", 0),
    ),
    identifier_probe=10,
)
POL = [
    Policy(
        drift=DRIFT,
        error=ErrorRule(params=(("warmup", 15), ("shift", 0.5), ("arl", 50.0))),
        min_train_examples=5,
        refit_examples=20,
    ),
    Policy(drift=DRIFT, max_events=33, max_age_s=25.0, min_train_examples=5),
]
ODD: list[Any] = [math.nan, None, True, False, 1, "1", 1.0, "x" * 300, "x" * 301, -0.0, math.inf]


def _events(rng: random.Random, n: int) -> list[PredictionEvent]:
    evs = []
    for i in range(n):
        ch = i > n // 2
        f: dict[str, Any] = {
            "c": rng.choice(ODD) if rng.random() < 0.3 else rng.choice("ab" if not ch else "bcd"),
            "x": rng.gauss(3.0 if ch else 0.0, 1) if rng.random() > 0.1 else rng.choice(ODD),
        }
        if rng.random() < 0.1:
            del f["x"]
        if rng.random() < 0.05:
            f = dict(reversed(list(f.items())))  # the same keys, another order
        if rng.random() < 0.03:
            f["new"] = rng.random()
        ver = "v2" if rng.random() < 0.03 else "v1"
        score = rng.random() if rng.random() < 0.5 else None
        pred: Any = rng.choice([0, 1, True, "1", None]) if ch else rng.randint(0, 1)
        evs.append(
            PredictionEvent(
                f"e{i}", "m", ver, float(i) + rng.choice([0, 0, -3, 40]), pred, f, score
            )
        )
    return evs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    size=st.sampled_from([1, 3, 50, 2000]),
    n=st.integers(20, 1500),
    pol=st.sampled_from([0, 1]),
    restore=st.booleans(),
)
def test_lists(seed: int, size: int, n: int, pol: int, restore: bool) -> None:
    rng = random.Random(seed)
    evs = _events(rng, n)
    labels = {
        i: LabelEvent(f"e{i}", "m", float(i) + 2, rng.randint(0, 1))
        for i in range(n)
        if rng.random() < 0.5
    }
    policy = POL[pol]
    one, many = ModelMonitor("m", policy), ModelMonitor("m", policy)
    want: list[Any] = []
    got: list[Any] = []
    for start in range(0, n, size):
        chunk = evs[start : start + size]
        early = [labels[i] for i in range(start, start + len(chunk)) if i in labels and i % 3 == 0]
        for lab in early:
            want.append(one.on_label(lab, None))
            got.append(many.on_label(lab, None))
        want.extend(one.on_prediction(ev, None) for ev in chunk)
        got.extend(e for _, e in apply_predictions(many, chunk))
        for i in range(start, start + len(chunk)):
            if i in labels and i % 3:
                want.append(one.on_label(labels[i], None))
                got.append(many.on_label(labels[i], None))
        if restore:
            many = ModelMonitor.restore(many.snapshot(), policy)
            one = ModelMonitor.restore(one.snapshot(), policy)
    assert repr(got) == repr(want)
    assert many.snapshot() == one.snapshot()
