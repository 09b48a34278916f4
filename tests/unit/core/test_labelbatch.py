"""The label batch path (:mod:`streamproc.core.labelbatch`) against one label at a time.

Each case drives two monitors with the same predictions, then the same labels: one monitor
by :meth:`ModelMonitor.on_label` per label, the other by :meth:`ModelMonitor.on_labels` in
batches. Every emitted request, every snapshot, and what a snapshot does not hold (the join's
and the window's byte counts, each entry's size) must be equal; and the bulk path must have
carried most labels, or the comparison says nothing.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.cli.replay import instant_deployment
from streamproc.core import labelbatch
from streamproc.core.events import DeploymentEvent, LabelEvent, PredictionEvent
from streamproc.core.example import Example
from streamproc.core.labeljoin import WaitingPrediction, entry_bytes
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import DriftRule, ErrorRule, JoinLimits, Policy
from streamproc.core.window import TrainingWindow, example_bytes

FAST = Policy(
    drift=DriftRule(
        numeric=(("detector", "rank_cusum"), ("warmup", 30), ("arl", 300.0)),
        categorical=(("detector", "multinomial_cusum"), ("warmup", 30), ("arl", 300.0)),
    ),
    error=ErrorRule(params=(("warmup", 30), ("shift", 0.5), ("arl", 300.0))),
    min_train_examples=10,
    refit_examples=40,
)
SMALL = Policy(  # the window and the join bounded by count and by bytes
    drift=FAST.drift,
    error=FAST.error,
    training_window=150,
    training_window_bytes=8_000,
    join=JoinLimits(max_pending=400, max_bytes=60_000),
)
NO_LABEL_SHIFT = Policy(drift=FAST.drift, error=FAST.error, label_shift=False)
NO_ERROR = Policy(drift=FAST.drift, error=None)
POLICIES = {"fast": FAST, "small": SMALL, "no_label_shift": NO_LABEL_SHIFT, "no_error": NO_ERROR}
# Regression: the task inferred (its first labels held for the inference), or declared with the
# squared loss; the error watched by a rises-only rank CUSUM.
REGRESSION = dataclasses.replace(FAST, refit_examples=60)
SQUARED = dataclasses.replace(
    FAST,
    task="regression",
    error=dataclasses.replace(FAST.error, loss="squared"),  # type: ignore[arg-type]
)
REGRESSIONS = {"regression": REGRESSION, "squared": SQUARED}


# How a label is sent instead of as its plain value: (cumulative probability, the label sent).
_CLASS_LABELS: list[tuple[float, Any]] = [
    (0.004, lambda y: "yes"),  # a type mismatch
    (0.01, str),  # a numeric string: compared as a number
    (0.015, bool),
]
_QUANTITY_LABELS: list[tuple[float, Any]] = [
    (0.003, lambda y: "yes"),  # class names: not scored for a regression model
    (0.006, lambda y: True),
    (0.02, str),  # a numeric string: compared as a number
    (0.05, int),
]


def _disguised(rng: random.Random, truth: Any, variants: list[tuple[float, Any]]) -> Any:
    """``truth`` as a producer may send it: one draw picks a variant, or the value itself."""
    r = rng.random()
    return next((make(truth) for p, make in variants if r < p), truth)


def _deliver(
    rng: random.Random, timeline: list, i: int, label: Any, burst: int
) -> tuple[float, LabelEvent]:
    """Event ``i``'s label into ``timeline``, a random delay after its prediction (a few
    before it), together with others every ``burst`` predictions; (its place, the label)."""
    delay = -1.5 if rng.random() < 0.02 else rng.expovariate(1 / 60)
    lab = LabelEvent(f"e{i}", "m", 100.0 + i + abs(delay), label)
    at = i + delay
    if burst and delay > 0:
        at = math.ceil(at / burst) * burst - 0.5
    timeline.append((at, 1, lab))
    return at, lab


def _stream(seed: int, n: int, burst: int = 0) -> list[PredictionEvent | LabelEvent]:
    """Predictions and, a random delay later, labels for about 80% of them: a change of the
    error rate and of the class frequencies a third of the way, duplicates, orphans, string
    and boolean labels (some mismatched), another version's predictions, and some labels
    before their predictions. ``burst``: labels arrive together every ``burst`` predictions
    (as a labelling job's output does). A feature's change two thirds of the way: its alarm
    waits for labels."""
    rng = random.Random(seed)
    change = n // 3
    timeline: list[tuple[float, int, PredictionEvent | LabelEvent]] = []
    for i in range(n):
        changed = i >= change
        pred: Any = rng.randint(0, 1) if not changed else int(rng.random() < 0.7)
        version = "v2" if rng.random() < 0.02 else "v1"
        x = rng.gauss(2.0 if i >= 2 * change else 0.0, 1)  # an input change later: held
        feats = {"x": round(x, 3), "c": rng.choice(["a", "é", "ü\n"])}
        ev = PredictionEvent(f"e{i}", "m", version, 100.0 + i, pred, feats)
        timeline.append((float(i), 0, ev))
        if rng.random() < 0.2:
            continue
        truth = pred if rng.random() < (0.6 if changed else 0.92) else 1 - pred
        label = _disguised(rng, truth, _CLASS_LABELS)
        at, lab = _deliver(rng, timeline, i, label, burst)
        if rng.random() < 0.01:
            timeline.append((at + 3, 1, LabelEvent(f"e{i}", "m", lab.ts, truth)))
        if rng.random() < 0.005:
            timeline.append((at, 1, LabelEvent(f"x{i}", "m", lab.ts, truth)))  # orphan
    return [ev for _, _, ev in sorted(timeline, key=lambda t: (t[0], t[1]))]


def _regression_stream(seed: int, n: int, burst: int = 0) -> list[PredictionEvent | LabelEvent]:
    """:func:`_stream` for a quantity: the error grows a third of the way (an alarm), falls
    back two thirds of the way (a fall: restarted quietly); integer and numeric-string labels,
    class names and booleans (not scored), huge magnitudes (errors at their bound)."""
    rng = random.Random(seed)
    timeline: list[tuple[float, int, PredictionEvent | LabelEvent]] = []
    for i in range(n):
        noise = 4.0 if n // 3 <= i < 2 * n // 3 else 1.0
        truth: Any = round(rng.lognormvariate(3, 1), 2)
        pred: Any = round(truth + rng.gauss(0, noise), 3)
        if rng.random() < 0.003:
            pred = 1e200  # the error at errors.MAX_ERROR (it overflowed before)
        version = "v2" if rng.random() < 0.02 else "v1"
        feats = {"x": round(rng.gauss(0, 1), 3)}
        timeline.append(
            (float(i), 0, PredictionEvent(f"e{i}", "m", version, 100.0 + i, pred, feats))
        )
        if rng.random() < 0.2:
            continue
        truth = _disguised(rng, truth, _QUANTITY_LABELS)
        at, lab = _deliver(rng, timeline, i, truth, burst)
        if rng.random() < 0.01:
            timeline.append((at + 3, 1, lab))  # a duplicate
    return [ev for _, _, ev in sorted(timeline, key=lambda t: (t[0], t[1]))]


def _unrecorded(mon: ModelMonitor) -> tuple:
    """What decides evictions but is not in a snapshot."""
    return (
        mon.join.nbytes,
        dict(mon.join._sizes),
        mon.examples.nbytes,
        list(mon.examples._sizes),
    )


def _compare(policy: Policy, stream: list, size: int) -> tuple[int, int, list, int]:
    """Both paths on the same stream, each run of labels in batches of ``size``, every request
    answered at once by a deployment (as the replay does); (labels carried in bulk, labels,
    requests, labels carried in bulk while a label-free alarm waited for labels)."""
    one, many = ModelMonitor("m", policy), ModelMonitor("m", policy)
    bulk = waiting = 0
    commit = labelbatch._commit

    def counted(mon: ModelMonitor, seg: Any, k: int) -> None:
        nonlocal bulk, waiting
        bulk += k
        waiting += k if mon.label_wait is not None else 0
        commit(mon, seg, k)

    def deploy(emitted: Any) -> None:
        if emitted is not None and not isinstance(emitted, DeploymentEvent):
            dep = instant_deployment(emitted)
            one.on_deployment(dep), many.on_deployment(dep)
            requests.append(emitted)

    requests: list[Any] = []
    labels = 0
    i = 0
    labelbatch._commit = counted  # type: ignore[assignment]
    try:
        while i < len(stream):
            ev = stream[i]
            if isinstance(ev, PredictionEvent):
                if ev.model_version == "v1" and one.version_deployed:  # the deployed one serves
                    ev = dataclasses.replace(ev, model_version=one.version)
                emitted = one.on_prediction(ev, None)
                assert many.on_prediction(ev, None) == emitted
                deploy(emitted)
                i += 1
                continue
            end = i
            while end < len(stream) and end - i < size and isinstance(stream[end], LabelEvent):
                end += 1
            batch = stream[i:end]
            labels += len(batch)
            applied = many.on_labels(batch)
            for k, ev in enumerate(batch):
                emitted = one.on_label(ev, None)
                assert next(applied) == (k, emitted)
                # Mismatches are taken per event by the router.
                assert one.take_mismatches() == many.take_mismatches()
                deploy(emitted)
            assert next(applied, None) is None
            i = end
    finally:
        labelbatch._commit = commit  # type: ignore[assignment]
    assert many.snapshot() == one.snapshot()
    assert _unrecorded(many) == _unrecorded(one)
    return bulk, labels, requests, waiting


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(20, 2000),
    size=st.sampled_from([1, 3, 64, 1000]),
    policy=st.sampled_from(sorted(POLICIES) + sorted(REGRESSIONS)),
    burst=st.sampled_from([0, 50, 400]),
)
def test_batches_of_labels_are_labels_one_by_one(
    seed: int, n: int, size: int, policy: str, burst: int
) -> None:
    """Classes (four policies) and quantities (two)."""
    if policy in REGRESSIONS:
        _compare(REGRESSIONS[policy], _regression_stream(seed, n, burst), size)
    else:
        _compare(POLICIES[policy], _stream(seed, n, burst), size)


@pytest.mark.parametrize("policy", sorted(REGRESSIONS))
def test_regression_labels_go_in_bulk_and_the_error_rise_is_found(
    policy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not vacuous: most labels go in bulk (the task's evidence included, when inferred), the
    error's rise is found, and its fall restarts the detector quietly (in both paths)."""
    from streamproc.core.detect.rising import RisingOnly

    falls = []
    update = RisingOnly.update

    def counted(det: RisingOnly, x: float) -> bool:
        before = det.falls
        fired = update(det, x)
        falls.extend([det] * (det.falls - before))
        return fired

    monkeypatch.setattr(RisingOnly, "update", counted)
    bulk, labels, requests, _ = _compare(REGRESSIONS[policy], _regression_stream(5, 6000, 250), 500)
    assert bulk > labels * 0.75, (bulk, labels)
    assert any(r.reasons[0].signal == "error" for r in requests)
    assert len(falls) >= 2 and len(falls) % 2 == 0, falls  # once per path


def test_the_task_evidence_goes_in_bulk_up_to_the_deciding_label() -> None:
    """A model with few labels (a fleet's): its pairs are held for the task in bulk, and the
    label that decides the task (the MIN_EVIDENCE th) scores them all, one by one."""
    from streamproc.core.errors import MIN_EVIDENCE

    one, many = ModelMonitor("m", FAST), ModelMonitor("m", FAST)
    for mon in (one, many):
        for i in range(MIN_EVIDENCE + 50):
            mon.on_prediction(PredictionEvent(f"e{i}", "m", "v1", float(i), i % 2, {}), None)
    labels = [LabelEvent(f"e{i}", "m", i + 0.5, i % 2) for i in range(MIN_EVIDENCE + 50)]
    committed: list[int] = []
    commit = labelbatch._commit
    labelbatch._commit = lambda mon, seg, k: committed.append(k) or commit(mon, seg, k)  # type: ignore[assignment]
    try:
        _both(one, many, labels[: MIN_EVIDENCE - 1])
        assert many.scorer.task is None and len(many.scorer.held) == MIN_EVIDENCE - 1
        assert sum(committed) == MIN_EVIDENCE - 1, committed
        committed.clear()
        _both(one, many, labels[MIN_EVIDENCE - 1 :])
    finally:
        labelbatch._commit = commit  # type: ignore[assignment]
    assert many.scorer.task == "classification" and not many.scorer.held
    assert sum(committed) == 50, committed  # all but the deciding label


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_the_bulk_path_carries_most_labels_and_alarms_happen(policy: str) -> None:
    """Not vacuous: most labels go in bulk, and the error's change is found, answered by a
    deployment, followed by the refit and rollback watches (per event) and bulk again; and
    labels go in bulk while a prediction alarm waits for them."""
    bulk, labels, requests, waiting = _compare(POLICIES[policy], _stream(11, 4000, 250), 500)
    # SMALL deploys more often, and the label and error detectors are remade one label at a
    # time after each deployment, so fewer of its labels can go in bulk.
    assert bulk > labels * (0.6 if policy == "small" else 0.75), (bulk, labels)
    assert waiting > 100, waiting
    if policy != "no_error":
        assert any(r.reasons[0].signal == "error" for r in requests)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    eid=st.text(min_size=1, max_size=12),
    pts=st.floats(0, 1e12) | st.integers(0, 2**40),
    lts=st.floats(0, 1e12),
    version=st.text(max_size=6),
    prediction=_JSON,
    label=_JSON,
    features=st.dictionaries(st.text(max_size=5), _JSON, max_size=5),
)
def test_an_example_size_from_its_join_entry_is_its_own(
    eid: str, pts: float, lts: float, version: str, prediction: Any, label: Any, features: dict
) -> None:
    pred = WaitingPrediction(pts, version, prediction, features)
    ev = LabelEvent(eid, "m", lts, label)
    derived = labelbatch._example_bytes(entry_bytes(eid, pred), ev, pred)
    assert derived == example_bytes(Example(features, label, prediction, version, lts))


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 400), max_size=40),
    first=st.lists(st.integers(0, 400), max_size=10),
    max_count=st.integers(1, 30),
    max_bytes=st.integers(1, 3000),
)
def test_extend_sized_is_append_one_by_one(
    lengths: list[int], first: list[int], max_count: int, max_bytes: int
) -> None:
    """Count and byte limits, counted evictions and their warnings alike."""
    counted_a: list[str] = []
    counted_b: list[str] = []
    a = TrainingWindow(max_count, max_bytes, counted_a.append)
    b = TrainingWindow(max_count, max_bytes, counted_b.append)
    held = [Example({"x": "y" * n}, 1, 1, "v", 1.0) for n in first]
    new = [Example({"x": "y" * n}, 1, 1, "v", 1.0) for n in lengths]
    for ex in held:
        a.append(ex), b.append(ex)
    for ex in new:
        a.append(ex)
    b.extend_sized(new, [example_bytes(ex) for ex in new])
    assert list(a) == list(b) and list(a._sizes) == list(b._sizes)
    assert (a.nbytes, a.evicted_for_bytes, counted_a) == (b.nbytes, b.evicted_for_bytes, counted_b)


def _both(mon_one: ModelMonitor, mon_many: ModelMonitor, labels: list[LabelEvent]) -> None:
    """``labels`` one by one into ``mon_one``, as one batch into ``mon_many``: equal."""
    by_one = [mon_one.on_label(ev, None) for ev in labels]
    by_batch = [emitted for _, emitted in mon_many.on_labels(labels)]
    assert by_batch == by_one
    assert mon_many.snapshot() == mon_one.snapshot()
    assert _unrecorded(mon_many) == _unrecorded(mon_one)


def test_an_error_detector_kept_from_an_earlier_policy_goes_per_event() -> None:
    """A canary's error detector, made under a policy with an error rule, is restored with the
    version under a policy without one; once the canary takes the traffic, ``on_label`` still
    updates it, so its labels are not plain."""
    drift = DriftRule(categorical=(("detector", "multinomial_cusum"), ("warmup", 20)))
    before = Policy(
        task="classification", drift=drift, error=ErrorRule(detector="page_hinkley", params=())
    )
    after = dataclasses.replace(before, error=None)
    mon = ModelMonitor("m", before)
    for i in range(180):  # every third prediction (and label) is the canary's
        mon.on_prediction(
            PredictionEvent(f"e{i}", "m", "v2" if i % 3 == 2 else "v1", i, 1, {}), None
        )
        if i % 3 == 2:
            mon.on_label(LabelEvent(f"e{i}", "m", i + 0.5, 0), None)
    one, many = (ModelMonitor.restore(mon.snapshot(), after) for _ in range(2))
    preds = [PredictionEvent(f"f{k}", "m", "v2", 1000.0 + k, k % 2, {}) for k in range(1500)]
    labels = [
        LabelEvent(f"f{k}", "m", 3000.0 + k, k % 2 if k < 600 else 1 - k % 2) for k in range(1500)
    ]
    for m in (one, many):
        for ev in preds:
            m.on_prediction(ev, None)
        m.on_label(labels[0], None)
    assert one.version == "v2" and one.detectors.get("error") is not None
    _both(one, many, labels[1:])
    assert one.samples["error"] > 1000


def test_a_label_with_a_nan_time_goes_per_event() -> None:
    """Only from Python (the router refuses it): a NaN time ahead of a later one in a batch."""
    one, many = ModelMonitor("m", Policy(task="classification")), None
    for i in range(3):
        one.on_prediction(PredictionEvent(f"e{i}", "m", "v1", float(i), 1, {}), None)
    one.on_label(LabelEvent("e0", "m", 1.0, 1), None)
    many = ModelMonitor.restore(one.snapshot(), one.policy)
    _both(one, many, [LabelEvent("e1", "m", math.nan, 1), LabelEvent("e2", "m", 50.0, 1)])
    assert many.last_ts == 50.0


def test_dense_alarms_scan_a_bounded_stretch_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """An error alarm that waits for training examples fires on every label: each alarm label
    must not rescan the rest of the batch (that made a batch quadratic in its labels)."""
    policy = Policy(
        error=ErrorRule(params=(("warmup", 100), ("shift", 0.5), ("arl", 20.0))),
        drift=DriftRule(categorical=(("detector", "multinomial_cusum"), ("warmup", 100))),
        join=JoinLimits(max_pending=5_000),
        min_train_examples=5_000,  # more than the window holds: the alarm waits on
    )
    n = 900
    one = ModelMonitor("m", policy)
    for i in range(n + 300):
        one.on_prediction(PredictionEvent(f"e{i}", "m", "v1", float(i), 1, {}), None)
    labels = [LabelEvent(f"e{i}", "m", i + 0.5, int(i < 300 or i % 3 == 0)) for i in range(n + 300)]
    for ev in labels[:300]:
        one.on_label(ev, None)
    many = ModelMonitor.restore(one.snapshot(), policy)
    scanned = []
    segment = labelbatch._segment
    monkeypatch.setattr(
        labelbatch,
        "_segment",
        lambda *a: scanned.append(s := segment(*a)) or s,
    )
    _both(one, many, labels[300:])
    assert one.counts["waiting_for_examples"] > n // 2
    assert sum(len(s.labels) for s in scanned if s is not None) < 100 * n


@pytest.mark.parametrize("bad", [2**64, 10**400, -(2**63) - 1])
def test_a_label_no_json_carries_fails_alone(bad: int) -> None:
    """Only from Python (JSON ints fit 64 bits): an int label past what orjson writes or a
    float holds raises on its own label, after the labels before it are applied as one by
    one, not at the start of its stretch with the stretch half applied."""
    policy = dataclasses.replace(SQUARED, error=ErrorRule(loss="squared"))
    one = ModelMonitor("m", policy)
    for i in range(300):
        one.on_prediction(PredictionEvent(f"e{i}", "m", "v1", float(i), 10.0 + i % 3, {}), None)
    for i in range(250):
        one.on_label(LabelEvent(f"e{i}", "m", i + 0.5, 10.0), None)
    many = ModelMonitor.restore(one.snapshot(), policy)
    labels = [LabelEvent(f"e{i}", "m", i + 0.5, bad if i == 255 else 11) for i in range(250, 260)]
    applied = many.on_labels(labels)
    for k in range(5):
        assert next(applied) == (k, one.on_label(labels[k], None))
    with pytest.raises((TypeError, OverflowError)):
        one.on_label(labels[5], None)
    with pytest.raises((TypeError, OverflowError)):
        next(applied)
    assert many.snapshot() == one.snapshot()
