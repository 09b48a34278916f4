"""The batch path against the per-event path: the same outcomes, requests, ids and state.

Random streams with changes, missing values and keys, text categories, a canary version,
early and late labels, bad events and mismatched labels go through ``route_record`` twice,
in batched records of 1, 7, 100 and 1,000 events: once one event at a time
(``vectorized=False``) and once through :meth:`ModelMonitor.on_predictions`. A retrain
request is answered at once by a deployment, as the offline replay does, before the next
event: the batch path must see it too. Everything is compared: every Outcome (requests with
their ids, reasons and evidence, rollbacks, dead letters with their index), and every
monitor's snapshot, byte for byte.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamproc.cli.replay import instant_deployment
from streamproc.core import batches, batchmonitor, labelbatch
from streamproc.core.batchmonitor import apply_predictions
from streamproc.core.events import PredictionEvent, SourceRef, encode
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import DriftRule, ErrorRule, JoinLimits, Policy, PolicyBook
from streamproc.core.router import Monitors, Outcome, iter_record, route
from streamproc.core.topics import DEPLOYMENTS

FAST = Policy(
    drift=DriftRule(
        numeric=(("detector", "rank_cusum"), ("warmup", 30), ("arl", 300.0)),
        categorical=(("detector", "multinomial_cusum"), ("warmup", 30), ("arl", 300.0)),
        identifier_probe=20,
    ),
    error=ErrorRule(params=(("warmup", 30), ("shift", 0.5), ("arl", 300.0))),
    min_train_examples=10,
    refit_examples=40,
)
SCHEDULED = Policy(drift=FAST.drift, error=FAST.error, max_events=700, max_age_s=900.0)
QUIET_OUTPUTS = Policy(  # identifiers skipped, outputs not watched, two signals must agree
    drift=DriftRule(
        numeric=(("detector", "rank_cusum"), ("warmup", 30), ("arl", 300.0)),
        categorical=(("detector", "multinomial_cusum"), ("warmup", 30), ("arl", 300.0)),
        identifier_probe=20,
        identifiers="skip",
        outputs=False,
    ),
    error=FAST.error,
    quorum=2,
    quorum_window_s=600.0,
    cooldown_s=200.0,
)
TIGHT_JOIN = Policy(  # the label join evicts by count, TTL and bytes within a batch
    drift=FAST.drift,
    error=FAST.error,
    join=JoinLimits(ttl_s=120.0, max_pending=150, max_early=20, max_bytes=12_000),
)
COUNT_JOIN = Policy(  # only the count limit evicts: predictions pushed out in bulk
    drift=FAST.drift, error=FAST.error, join=JoinLimits(max_pending=150)
)
POLICIES = {
    "count_join": COUNT_JOIN,
    "fast": FAST,
    "scheduled": SCHEDULED,
    "quiet_outputs": QUIET_OUTPUTS,
    "tight_join": TIGHT_JOIN,
}


def _prediction(
    rng: random.Random, i: int, model: str, changed: bool, miss: float, regression: bool = False
) -> dict:
    shift = 1.5 if changed else 0.0

    def maybe(v: Any) -> Any:
        return None if rng.random() < miss else v

    features: dict[str, Any] = {
        "x": maybe(rng.gauss(shift, 1.0)),
        "heavy": maybe(rng.lognormvariate(3.0 + shift, 1.5)),
        "count": maybe(rng.randint(0, 4) + (3 if changed else 0)),
        "const": maybe(1e200),
        "cat": maybe(rng.choice("abcd" if not changed else "aaad")),
        "user": f"u{i}",  # an identifier: watched by its length
        "never": None,  # never a value: no detector
        "later": rng.random() if i > 400 else None,  # a detector made mid-stream
    }
    if rng.random() < miss / 2:
        del features["x"]  # a missing key
    if rng.random() < 0.01:
        features["flag"] = rng.random() < 0.5  # a late, rare boolean feature
    return {
        "event_id": f"{model}-e{i}",
        "model_id": model,
        "model_version": "v2" if rng.random() < 0.03 else "v1",
        "ts": 1000.0 + i,
        "prediction": (
            round(rng.gauss(shift, 1.0), 3)
            if regression
            else (rng.randint(0, 1) if not changed else int(rng.random() < 0.8))
        ),
        "score": rng.random() if i % 3 else None,
        "features": features,
    }


def _label(rng: random.Random, pred: dict, changed: bool) -> dict:
    if isinstance(pred["prediction"], float):  # regression: the error grows after the change
        noise = rng.gauss(0.0, 2.0 if changed else 0.5)
        label = round(pred["prediction"] + noise, 3)
        return {
            **{k: pred[k] for k in ("event_id", "model_id")},
            "ts": pred["ts"] + 5.0,
            "label": label,
        }
    truth = (
        pred["prediction"] if rng.random() < (0.6 if changed else 0.9) else 1 - pred["prediction"]
    )
    label: Any = "yes" if rng.random() < 0.005 else truth  # a type mismatch now and then
    return {
        "event_id": pred["event_id"],
        "model_id": pred["model_id"],
        "ts": pred["ts"] + 5.0,
        "label": label,
    }


def _records(
    seed: int,
    n: int,
    size: int,
    miss: float,
    two_models: bool,
    regression: bool = False,
    early_share: float = 0.1,
) -> list[tuple[str, bytes]]:
    """Prediction and label records of ``size`` events; labels for about half, some early."""
    rng = random.Random(seed)
    change = rng.randint(n // 3, n)
    preds, labels = [], []
    for i in range(n):
        model = "m1" if not two_models or rng.random() < 0.7 else "m2"
        p = _prediction(rng, i, model, i >= change, miss, regression)
        if rng.random() < 0.005:
            p["ts"] = "late"  # a bad event: its own dead letter
        preds.append(p)
        if rng.random() < 0.5 and isinstance(p["ts"], float):
            labels.append(_label(rng, p, i >= change))
    return _cut(preds, labels, size, rng, early_share)


def _cut(
    preds: list[dict[str, Any]],
    labels: list[dict[str, Any]],
    size: int,
    rng: random.Random,
    early_share: float,
    edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
) -> list[tuple[str, bytes]]:
    """Prediction records of ``size`` events in order (each passed through ``edit``), each
    followed by the labels of the predictions sent so far, in records of at most ``size``;
    before one, now and then (``early_share``), the labels of its predictions that reach the
    worker first."""
    out: list[tuple[str, bytes]] = []
    li = 0
    for start in range(0, len(preds), size):
        chunk = preds[start : start + size]
        if edit is not None:
            chunk = edit(chunk)
        if rng.random() < early_share:  # labels that reach the worker before their predictions
            ids = {p["event_id"] for p in chunk}
            early = [lab for lab in labels[li:] if lab["event_id"] in ids]
            if early:
                out.append(("labels", orjson.dumps(batches.columns("label", early[:size]))))
        out.append(("predictions", orjson.dumps(batches.columns("prediction", chunk))))
        done = {p["event_id"] for p in preds[: start + size]}
        ready = []
        while li < len(labels) and labels[li]["event_id"] in done:
            ready.append(labels[li])
            li += 1
        for k in range(0, len(ready), size):
            out.append(("labels", orjson.dumps(batches.columns("label", ready[k : k + size]))))
    return out


def _run(
    records: list[tuple[str, bytes]],
    book: PolicyBook,
    vectorized: bool,
    received: float = 0.0,
    again: int = 2,
) -> tuple:
    """Every Outcome, deploying at once after each request (as the replay does); the records
    received at ``received`` (0: unknown), and the last ``again`` of them redelivered."""
    monitors = Monitors(book)
    outs: list[Outcome] = []
    deployed = 0
    for offset, (topic, raw) in enumerate(records):
        src = SourceRef(topic, 0, offset)
        for out in iter_record(monitors, topic, raw, src, received, vectorized):
            outs.append(out)
            for req in out.requests:
                deployed += 1
                dep = encode(instant_deployment(req))
                route(monitors, DEPLOYMENTS, dep, SourceRef(DEPLOYMENTS, 0, deployed), received)
    # Redelivery: the last records again change nothing, and say so.
    for offset, (topic, raw) in list(enumerate(records))[-again:]:
        src = SourceRef(topic, 0, offset)
        outs.extend(iter_record(monitors, topic, raw, src, received, vectorized))
    snaps = {mid: mon.snapshot() for mid, mon in monitors.live.items()}
    return outs, snaps


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    size=st.sampled_from([1, 7, 100, 1000]),
    n=st.integers(50, 2500),
    miss=st.sampled_from([0.0, 0.05, 0.3]),
    two_models=st.booleans(),
    policy=st.sampled_from(sorted(POLICIES)),
    regression=st.booleans(),
    early=st.sampled_from([0.1, 0.7]),
)
def test_batch_path_is_the_per_event_path(
    seed: int,
    size: int,
    n: int,
    miss: float,
    two_models: bool,
    policy: str,
    regression: bool,
    early: float,
) -> None:
    records = _records(seed, n, size, miss, two_models, regression, early)
    book = PolicyBook(POLICIES[policy])
    one_by_one = _run(records, book, vectorized=False)
    batched = _run(records, book, vectorized=True)
    assert batched[0] == one_by_one[0]
    assert batched[1] == one_by_one[1]


def test_the_streams_exercise_what_they_claim(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison is not vacuous: alarms, requests, dead letters, mismatches, redeliveries,
    and most predictions and many labels applied in bulk."""
    bulk = []
    plain = batchmonitor._bookkeeping
    labels_in_bulk = []
    commit = labelbatch._commit

    def counted(mon: Any, evs: Any, start: int, stop: int) -> None:
        bulk.extend(range(start, stop))
        plain(mon, evs, start, stop)

    def labels_counted(mon: Any, seg: Any, k: int) -> None:
        labels_in_bulk.append(k)
        commit(mon, seg, k)

    monkeypatch.setattr(batchmonitor, "_bookkeeping", counted)
    monkeypatch.setattr(labelbatch, "_commit", labels_counted)
    outs, snaps = _run(_records(5, 3000, 100, 0.05, True), PolicyBook(FAST), vectorized=True)
    requests = [r for o in outs for r in o.requests]
    letters = [o.dead_letter.reason for o in outs if o.dead_letter is not None]
    assert requests and "label_type_mismatch" in letters and "invalid_field" in letters
    assert any(o.redelivered for o in outs)
    counts = orjson.loads(snaps["m1"])["counts"]
    fired = [k for k in counts if k.startswith("fired:feature:")]
    assert len(fired) >= 3 and counts["waiting_for_post_change_labels"] >= 1
    assert counts["not_significant_after_correction"] >= 1
    assert len(bulk) > 1000  # of 3,000 predictions
    assert sum(labels_in_bulk) > 300  # of about 1,500 labels


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    size=st.sampled_from([1, 7, 100, 1000]),
    odd=st.sampled_from([math.nan, math.inf, -math.inf, 2**64 - 1, True, "text", None]),
)
def test_odd_values_through_the_monitor(seed: int, size: int, odd: Any) -> None:
    """Values a JSON record cannot carry (NaN, infinities) or that are not numbers, given to
    the monitor directly: missing values for a rank CUSUM on both paths."""
    rng = random.Random(seed)
    evs = []
    for i in range(3000):
        x: Any = rng.gauss(2.0 if i > 2000 else 0.0, 1.0)
        if i >= 1 and rng.random() < 0.05:  # x's first value makes it a numeric detector
            x = odd
        evs.append(PredictionEvent(f"e{i}", "m", "v1", float(i), i % 2, {"x": x, "y": i % 5}))
    one, many = ModelMonitor("m", FAST), ModelMonitor("m", FAST)
    want = [one.on_prediction(ev, None) for ev in evs]
    got: list[Any] = []
    for start in range(0, len(evs), size):
        got.extend(e for _, e in apply_predictions(many, evs[start : start + size]))
    assert got == want
    assert any(r is not None for r in want)
    assert many.snapshot() == one.snapshot()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), size=st.sampled_from([1, 7, 100]))
def test_columns_checked_whole_build_the_same_events(seed: int, size: int) -> None:
    """A batch whose columns pass as a whole skips the per-event checks: the same events."""
    from streamproc.core.events import PREDICTION_SPEC
    from streamproc.core.router import _prebuilt

    rng = random.Random(seed)
    evs = [_prediction(rng, i, "m", i > size // 2, 0.1, rng.random() < 0.5) for i in range(size)]
    for ev in evs:
        if rng.random() < 0.3:
            ev["ts"] = int(ev["ts"])  # an integer time is a float in the event
        if rng.random() < 0.05:
            ev["score"] = rng.choice([1, 0, 1.5, True])  # edges, and two bad ones
    obj = orjson.loads(orjson.dumps(batches.columns("prediction", evs)))
    fast = _prebuilt(obj)  # columns: each event made on access
    _built_alike(obj, "prediction", PredictionEvent, PREDICTION_SPEC, fast and list(fast))


def _built_alike(obj: dict, kind: str, cls: type, spec: Any, fast: list | None) -> None:
    """``fast``, the events made from a batch's checked columns, are those built one by one
    (None when one of those would fail: each is then checked alone, the bad one a letter)."""
    from streamproc.core.events import build

    try:
        slow = [build(cls, spec, kind, ev) for ev in batches.split(obj, kind)]
    except Exception:
        assert fast is None
        return
    assert fast is not None and fast == slow
    assert orjson.dumps(fast) == orjson.dumps(slow)  # 0.0 is not 0: types too


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31), size=st.sampled_from([1, 7, 100]))
def test_label_columns_checked_whole_build_the_same_labels(seed: int, size: int) -> None:
    """A label batch whose columns pass as a whole is made from them: the same events."""
    from streamproc.core.events import LABEL_SPEC, LabelEvent
    from streamproc.core.router import _prebuilt_labels

    rng = random.Random(seed)
    odd = [None, "", -1.0, [1], {"a": 1}, 2**63 - 1, True, "yes", 0, 0.0]
    labels = []
    for i in range(size):
        lab: dict[str, Any] = {"event_id": f"e{i}", "model_id": "m", "ts": 5.0 + i}
        lab["label"] = rng.choice(odd) if rng.random() < 0.1 else rng.randint(0, 1)
        if rng.random() < 0.05:
            lab["ts"] = rng.choice([-3, 7, "late"])
        labels.append(lab)
    obj = orjson.loads(orjson.dumps(batches.columns("label", labels)))
    _built_alike(obj, "label", LabelEvent, LABEL_SPEC, _prebuilt_labels(obj))
