"""Retrain core: ledger, candidate versions, train/gate/register, holdout gate, file registry."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamproc.core.events import (
    Reason,
    RetrainRequest,
    encode,
    parse_deployment,
    parse_retrain_result,
)
from streamproc.core.example import Example
from streamproc.core.gate import current_error, decide, split_holdout
from streamproc.core.registry import FileRegistry, RegistryError
from streamproc.core.retrain import (
    Candidate,
    RetrainLedger,
    TrainerError,
    candidate_version,
    judge,
    prepare,
    retrain,
    training_span,
)
from streamproc.core.training import TrainedModel

# --------------------------------------------------------------------------- helpers


def request(rid: str = "rr-abc123", change_ts: float | None = None) -> RetrainRequest:
    details = {} if change_ts is None else {"change_ts": change_ts}
    return RetrainRequest(
        request_id=rid,
        model_id="m1",
        model_version="v1",
        ts=1000.0,
        reasons=(Reason("error", "cusum", 15.0, 13.8, 400, details),),
    )


def concept_examples(
    n: int,
    wrong: float,
    seed: int = 0,
    label_noise: float = 0.0,
    flip_at: float | None = None,
    version: str = "v1",
) -> list[Example]:
    """Examples with label = x1 > x2 (x1 < x2 after flip_at), ``ts`` their index.

    The recorded prediction of ``version`` is the label, wrong with probability ``wrong``.
    """
    rng = np.random.default_rng(seed)
    out: list[Example] = []
    for i in range(n):
        x1, x2 = rng.normal(size=2)
        y = bool(x1 > x2)
        if flip_at is not None and i >= flip_at:
            y = not y
        if rng.random() < label_noise:
            y = not y
        p = (not y) if rng.random() < wrong else y
        out.append(Example({"x1": float(x1), "x2": float(x2)}, y, p, version, float(i)))
    return out


# --------------------------------------------------------------------------- RetrainLedger


def test_ledger_start_coalesce_finish_duplicate() -> None:
    led = RetrainLedger()
    assert led.admit("rr-1") == "start"
    assert led.in_flight == "rr-1"
    assert led.admit("rr-2") == "coalesce"
    assert led.admit("rr-3") == "coalesce"
    assert led.admit("rr-2") == "coalesce"  # coalesced once only
    assert led.coalesced == ["rr-2", "rr-3"]
    assert led.finish("rr-1") == ["rr-2", "rr-3"]
    assert led.in_flight is None
    assert led.coalesced == []
    for rid in ("rr-1", "rr-2", "rr-3"):
        assert led.admit(rid) == "duplicate"
    assert led.admit("rr-4") == "start"


def test_ledger_resume_after_crash() -> None:
    led = RetrainLedger()
    assert led.admit("rr-1") == "start"
    restored = RetrainLedger.from_state(orjson.loads(orjson.dumps(led.state())))
    assert restored.admit("rr-1") == "resume"
    assert restored.admit("rr-1") == "resume"
    assert restored.finish("rr-1") == []
    assert restored.admit("rr-1") == "duplicate"


def test_ledger_finish_of_a_request_not_in_flight() -> None:
    led = RetrainLedger()
    led.admit("rr-1")
    led.admit("rr-2")
    assert led.finish("rr-x") == []  # e.g. an external trainer's result
    assert led.in_flight == "rr-1"
    assert led.coalesced == ["rr-2"]
    assert led.admit("rr-x") == "duplicate"
    assert led.finish("rr-1") == ["rr-2"]


def test_ledger_finish_twice_is_harmless() -> None:
    led = RetrainLedger()
    led.admit("rr-1")
    led.finish("rr-1")
    assert led.finish("rr-1") == []
    assert list(led.handled) == ["rr-1"]


def test_ledger_memory_is_bounded() -> None:
    led = RetrainLedger(remember=3)
    for i in range(10):
        assert led.admit(f"rr-{i}") == "start"
        led.finish(f"rr-{i}")
    assert list(led.handled) == ["rr-7", "rr-8", "rr-9"]
    assert led.admit("rr-9") == "duplicate"
    assert led.admit("rr-0") == "start"  # forgotten: bounded memory is a trade-off
    assert len(orjson.dumps(led.state())) < 200


def test_ledger_coalesced_ids_are_recorded_within_the_bound() -> None:
    led = RetrainLedger(remember=4)
    led.admit("rr-a")
    for i in range(6):
        led.admit(f"rr-c{i}")
    merged = led.finish("rr-a")
    assert len(merged) == 6
    assert len(led.handled) == 4
    assert list(led.handled) == ["rr-c2", "rr-c3", "rr-c4", "rr-c5"]


def test_ledger_state_round_trip_lockstep() -> None:
    a = RetrainLedger(remember=5)
    for rid in ("rr-1", "rr-2"):
        a.admit(rid)
        a.finish(rid)
    a.admit("rr-3")
    a.admit("rr-4")
    b = RetrainLedger.from_state(orjson.loads(orjson.dumps(a.state())), remember=5)
    c = RetrainLedger.from_state(a.state(), remember=5)
    assert b.state() == a.state() == c.state()
    assert b.handled.maxlen == 5 and "remember" not in a.state()  # the bound is the code's
    script = ["rr-1", "rr-3", "rr-5", "rr-4", ("finish", "rr-3"), "rr-5", "rr-6"]
    for step in script:
        if isinstance(step, tuple):
            assert a.finish(step[1]) == b.finish(step[1]) == c.finish(step[1])
        else:
            assert a.admit(step) == b.admit(step) == c.admit(step)
    assert a.state() == b.state() == c.state()


def test_ledger_state_is_a_snapshot() -> None:
    led = RetrainLedger()
    led.admit("rr-1")
    s = led.state()
    led.admit("rr-2")
    assert s["coalesced"] == []


def test_ledger_overdue_job_stops_blocking_the_model() -> None:
    led = RetrainLedger()
    assert led.admit("rr-1", now=0.0) == "start"
    led.wait_for_external({"job": 1}, deadline=100.0)
    assert led.admit("rr-2", now=50.0) == "coalesce"
    assert led.expired is None
    assert led.admit("rr-3", now=101.0) == "start"
    assert led.expired == "rr-1"
    assert led.in_flight == "rr-3"
    assert led.admit("rr-1", now=102.0) == "duplicate"
    restored = RetrainLedger.from_state(orjson.loads(orjson.dumps(led.state())))
    assert restored.state() == led.state()
    assert restored.admit("rr-3") == "resume"


# --------------------------------------------------------------------------- candidate_version


def test_candidate_version_is_deterministic() -> None:
    v = candidate_version("rr-123")
    assert v == candidate_version("rr-123")
    assert v == "v-" + hashlib.sha256(b"rr-123").hexdigest()[:10]
    assert len(v) == 12


@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_candidate_version_distinct_for_distinct_requests(a: str, b: str) -> None:
    va, vb = candidate_version(a), candidate_version(b)
    assert va.startswith("v-")
    assert (va == vb) == (a == b)


# --------------------------------------------------------------------------- retrain()


def test_retrain_fails_cleanly_with_too_few_examples(tmp_path: Path) -> None:
    reg = FileRegistry(tmp_path / "reg")
    out = retrain(request(), concept_examples(10, 0.4), "v1", reg, now=2000.0)
    r = out.result
    assert (r.status, r.request_id, r.model_id, r.ts) == ("failed", "rr-abc123", "m1", 2000.0)
    assert r.candidate_version is None
    assert r.error is not None
    assert "only 10 labelled examples for m1 (< 50)" in r.error
    assert "send labels" in r.error
    assert out.deployment is None
    assert reg.versions("m1") == []
    assert parse_retrain_result(encode(r)) == r


def test_prepare_min_examples_is_configurable() -> None:
    with pytest.raises(TrainerError, match=r"only 99 labelled examples for m1 \(< 100\)") as info:
        prepare(request(), concept_examples(99, 0.4), "v1", min_examples=100)
    assert info.value.transient is False
    job = prepare(request(), concept_examples(100, 0.4), "v1", min_examples=100)
    assert (len(job.train), len(job.holdout)) == (70, 30)  # the gate judges on >= MIN_HOLDOUT
    assert job.deployed_version == "v1"


def test_judge_refuses_a_wrong_number_of_holdout_predictions(tmp_path: Path) -> None:
    job = prepare(request(), concept_examples(100, 0.4), "v1")
    out = judge(job, Candidate((True,) * 3, artifact=b"x"), FileRegistry(tmp_path), now=1.0)
    assert out.result.status == "failed"
    assert out.deployment is None
    assert "trainer answered 3 holdout predictions for 30 holdout examples" in (
        out.result.error or ""
    )


def test_retrain_promotes_a_candidate_that_beats_a_bad_model(tmp_path: Path) -> None:
    reg = FileRegistry(tmp_path / "reg")
    req = request("rr-abc123")
    out = retrain(req, concept_examples(400, wrong=0.4), "v1", reg, now=2000.0)
    r, dep = out.result, out.deployment
    version = candidate_version("rr-abc123")
    assert r.status == "succeeded", r
    assert r.candidate_version == version
    assert r.error is None
    m = r.metrics
    assert m["task"] == "classification"
    assert (m["train"], m["holdout"], m["holdout_current"]) == (320, 80, 80)
    assert m["candidate_error"] < 0.1
    assert 0.25 < m["current_error"] < 0.55
    assert "<=" in m["gate"]

    assert dep is not None
    assert dep.action == "promote"
    assert dep.deployment_id == "dep-abc123"
    assert (dep.model_id, dep.version, dep.previous_version) == ("m1", version, "v1")
    assert dep.request_id == "rr-abc123"
    assert dep.ts == 2000.0
    assert dep.metrics == m

    mv = reg.get("m1", version)
    assert mv is not None
    assert mv.artifact_uri == dep.artifact_uri
    assert dep.artifact_uri is not None
    assert dep.artifact_uri.startswith("file://")
    assert (mv.parent_version, mv.request_id, mv.created_ts) == ("v1", "rr-abc123", 2000.0)
    assert mv.metrics == m
    blob = reg.load("m1", version)
    assert hashlib.sha256(blob).hexdigest() == mv.sha256
    model = pickle.loads(blob)
    assert isinstance(model, TrainedModel)
    assert model.predict({"x1": 2.0, "x2": -1.0}) is True
    assert model.predict({"x1": -2.0, "x2": 1.0}) is False
    assert model.error(concept_examples(200, 0.0, seed=99)) < 0.1

    # Both outputs honour the event contracts.
    assert parse_retrain_result(encode(r)) == r
    assert parse_deployment(encode(dep)) == dep


def test_retrain_is_deterministic_for_a_redelivered_request(tmp_path: Path) -> None:
    examples = concept_examples(300, wrong=0.4)
    a = retrain(request(), examples, "v1", FileRegistry(tmp_path / "a"), now=5.0)
    b = retrain(request(), examples, "v1", FileRegistry(tmp_path / "b"), now=5.0)
    assert a.result == b.result
    assert a.deployment is not None
    assert b.deployment is not None
    assert a.deployment.version == b.deployment.version


def test_retrain_rejects_when_current_model_is_perfect(tmp_path: Path) -> None:
    reg = FileRegistry(tmp_path / "reg")
    # Noisy labels no model can learn exactly; the recorded predictions equal the labels.
    examples = concept_examples(400, wrong=0.0, label_noise=0.1, seed=3)
    out = retrain(request(), examples, "v1", reg, now=2000.0)
    r = out.result
    assert r.status == "rejected"
    assert out.deployment is None
    assert r.candidate_version == candidate_version("rr-abc123")
    assert r.error is None
    assert r.metrics["current_error"] == 0.0
    assert r.metrics["candidate_error"] > 0.0
    assert ">" in r.metrics["gate"]
    assert reg.versions("m1") == []
    assert reg.get("m1", candidate_version("rr-abc123")) is None
    assert parse_retrain_result(encode(r)) == r


def test_retrain_margin_can_reject_a_better_candidate(tmp_path: Path) -> None:
    out = retrain(
        request(), concept_examples(400, wrong=0.4), "v1", FileRegistry(tmp_path), 1.0, margin=0.9
    )
    assert out.result.status == "rejected"
    assert out.result.metrics["candidate_error"] < out.result.metrics["current_error"]


def test_retrain_without_baseline_promotes_and_says_so(tmp_path: Path) -> None:
    out = retrain(request(), concept_examples(200, 0.4), "v9", FileRegistry(tmp_path), now=1.0)
    assert out.result.status == "succeeded"
    assert out.result.metrics["current_error"] is None
    assert out.result.metrics["holdout_current"] == 0
    assert "no baseline" in out.result.metrics["gate"]
    assert out.deployment is not None
    assert out.deployment.previous_version == "v9"


def test_retrain_reports_training_failure(tmp_path: Path) -> None:
    examples = [Example({"x": float(i)}, i * 0.5 + 0.25, 0.0, "v1", float(i)) for i in range(60)]
    examples[0] = examples[0]._replace(label="n/a")  # in the training set: regression cannot
    out = retrain(request(), examples, "v1", FileRegistry(tmp_path), now=1.0)
    assert out.result.status == "failed"
    assert (out.result.error or "").startswith("training failed:")
    assert out.deployment is None


def test_retrain_never_raises_for_a_bad_label_in_the_holdout(tmp_path: Path) -> None:
    examples = [Example({"x": float(i)}, i * 0.5 + 0.25, 0.0, "v1", float(i)) for i in range(60)]
    examples[4] = examples[4]._replace(label="n/a")  # held out (every 5th of the last 500)
    out = retrain(request(), examples, "v1", FileRegistry(tmp_path), now=1.0)
    assert out.result.status in ("succeeded", "rejected", "failed")
    assert out.result.metrics.get("task", "regression") == "regression"


def test_retrain_learns_from_examples_since_the_change(tmp_path: Path) -> None:
    examples = concept_examples(600, wrong=0.0, flip_at=300)
    # The deployed model still predicts the old concept.
    examples[300:] = [ex._replace(prediction=not ex.label) for ex in examples[300:]]
    span = retrain(request(change_ts=300.0), examples, "v1", FileRegistry(tmp_path / "a"), 1.0)
    whole = retrain(request(), examples, "v1", FileRegistry(tmp_path / "b"), 1.0)
    ms, mw = span.result.metrics, whole.result.metrics
    assert ms["train"] + ms["holdout"] == 300
    assert mw["train"] + mw["holdout"] == 600
    assert span.result.status == "succeeded"
    assert ms["candidate_error"] < 0.1
    assert ms["candidate_error"] < mw["candidate_error"]


def test_training_span_selection() -> None:
    examples = [Example({}, 0, 0, "v1", float(i)) for i in range(100)]
    assert training_span(request(), examples, 10) is examples
    since = training_span(request(change_ts=60.0), examples, 10)
    assert [ex.ts for ex in since] == [float(i) for i in range(60, 100)]
    # Not enough since the change: the most recent min_examples instead.
    short = training_span(request(change_ts=95.0), examples, 10)
    assert [ex.ts for ex in short] == [float(i) for i in range(90, 100)]


def test_training_span_uses_the_earliest_change_and_ignores_non_numbers() -> None:
    examples = [Example({}, 0, 0, "v1", float(i)) for i in range(100)]
    req = RetrainRequest(
        "rr-x",
        "m1",
        "v1",
        1.0,
        (
            Reason("error", "cusum", 1, 1, 1, {"change_ts": 80}),
            Reason("drift", "threshold", 1, 1, 1, {"change_ts": "yesterday"}),
            Reason("auc", "threshold", 1, 1, 1, {"change_ts": 70.5}),
            Reason("manual", "manual", 0, 0, 0),
        ),
    )
    span = training_span(req, examples, 5)
    assert [ex.ts for ex in span] == [float(i) for i in range(71, 100)]


# --------------------------------------------------------------------------- gate


def _ex(n: int) -> list[Example]:
    return [Example({"i": i}, 0, 0, "v1", float(i)) for i in range(n)]


def test_split_holdout_every_fifth_of_the_recent() -> None:
    examples = _ex(100)
    train, hold = split_holdout(examples, every=5, recent=50)
    assert [ex.features["i"] for ex in hold] == [54, 59, 64, 69, 74, 79, 84, 89, 94, 99]
    assert len(train) == 90
    assert [ex.features["i"] for ex in train][:50] == list(range(50))


@pytest.mark.parametrize(
    ("n", "every", "recent", "n_hold"),
    [(0, 5, 500, 0), (4, 5, 500, 0), (5, 5, 500, 1), (12, 5, 500, 2), (10, 1, 3, 3), (10, 5, 0, 0)],
)
def test_split_holdout_edge_cases(n: int, every: int, recent: int, n_hold: int) -> None:
    train, hold = split_holdout(_ex(n), every=every, recent=recent)
    assert len(hold) == n_hold
    assert len(train) + len(hold) == n


@settings(max_examples=200, deadline=None, derandomize=True)
@given(n=st.integers(0, 300), every=st.integers(1, 10), recent=st.integers(0, 400))
def test_split_holdout_partitions_in_order(n: int, every: int, recent: int) -> None:
    examples = _ex(n)
    train, hold = split_holdout(examples, every=every, recent=recent)
    ids_t = [ex.features["i"] for ex in train]
    ids_h = [ex.features["i"] for ex in hold]
    assert sorted(ids_t + ids_h) == list(range(n))
    assert ids_t == sorted(ids_t)
    assert ids_h == sorted(ids_h)
    assert len(hold) == min(n, recent) // every
    assert all(i >= n - recent for i in ids_h)


def test_current_error_uses_only_the_deployed_versions_predictions() -> None:
    hold = [
        Example({}, 1, 1, "v1", 0.0),
        Example({}, 1, 0, "v1", 1.0),
        Example({}, 0, 0, "v1", 2.0),
        Example({}, 1, 0, "v0", 3.0),  # another version
        Example({}, 1, None, "v1", 4.0),  # no recorded prediction
        Example({}, 0, 1, "v1", 5.0),
    ]
    err, n = current_error(hold, "v1")
    assert n == 4
    assert err == pytest.approx(0.5)
    assert current_error(hold, "v7") == (None, 0)
    assert current_error([], "v1") == (None, 0)


def test_current_error_regression_is_absolute_error() -> None:
    hold = [
        Example({}, 2.0, 2.5, "v1", 0.0),
        Example({}, 1.5, 1.0, "v1", 1.0),
        Example({}, 3.25, 3.0, "v1", 2.0),
    ]
    err, n = current_error(hold, "v1")
    assert n == 3
    assert err == pytest.approx((0.5 + 0.5 + 0.25) / 3)


@pytest.mark.parametrize(
    ("cand", "cur", "margin", "promote"),
    [
        (0.10, 0.30, 0.0, True),
        (0.30, 0.30, 0.0, True),  # a tie promotes: "not worse"
        (0.30000001, 0.30, 0.0, False),
        (0.19, 0.30, 0.1, True),
        (0.21, 0.30, 0.1, False),
        (0.35, 0.30, -0.1, True),
        (float("nan"), 0.30, 0.0, False),
    ],
)
def test_decide(cand: float, cur: float, margin: float, promote: bool) -> None:
    d = decide(cand, cur, n=80, margin=margin)
    assert d.promote is promote
    assert (d.candidate_error, d.current_error, d.n_holdout, d.margin) == (
        pytest.approx(cand, nan_ok=True),
        cur,
        80,
        margin,
    )
    assert ("<=" if promote else ">") in d.why
    assert "on 80" in d.why


def test_decide_without_baseline_promotes() -> None:
    d = decide(0.9, None, n=0)
    assert d.promote is True
    assert d.current_error is None
    assert "no baseline" in d.why


# --------------------------------------------------------------------------- FileRegistry


def test_registry_register_get_load_versions(tmp_path: Path) -> None:
    reg = FileRegistry(tmp_path)
    mv2 = reg.register("m1", "v2", b"two", created_ts=20.0, parent_version="v1", metrics={"e": 1})
    mv1 = reg.register("m1", "v1", b"one", created_ts=10.0)
    assert reg.load("m1", "v2") == b"two"
    assert reg.get("m1", "v2") == mv2
    assert mv2.sha256 == hashlib.sha256(b"two").hexdigest()
    assert mv2.metrics == {"e": 1}
    assert [v.version for v in reg.versions("m1")] == ["v1", "v2"]
    assert reg.versions("m1")[0] == mv1
    assert reg.versions("other") == []
    assert reg.get("m1", "v3") is None
    assert sorted(p.name for p in (tmp_path / "m1" / "v2").iterdir()) == [
        "artifact.bin",
        "meta.json",
    ]


def test_registry_re_register_overwrites(tmp_path: Path) -> None:
    reg = FileRegistry(tmp_path)
    reg.register("m", "v", b"old", created_ts=1.0)
    reg.register("m", "v", b"new", created_ts=2.0)
    assert reg.load("m", "v") == b"new"


@pytest.mark.parametrize("tamper", ["modify", "truncate", "append"])
def test_registry_checksum_failure_after_tampering(tmp_path: Path, tamper: str) -> None:
    reg = FileRegistry(tmp_path)
    mv = reg.register("m1", "v2", b"weights-" * 100, created_ts=1.0)
    path = Path(mv.artifact_uri.removeprefix("file://"))
    data = path.read_bytes()
    new = {
        "modify": b"X" + data[1:],
        "truncate": data[: len(data) // 2],
        "append": data + b"!",
    }[tamper]
    path.write_bytes(new)
    with pytest.raises(RegistryError) as info:
        reg.load("m1", "v2")
    msg = str(info.value)
    assert "artifact of m1 v2 fails its checksum" in msg
    assert hashlib.sha256(new).hexdigest()[:12] in msg
    assert mv.sha256[:12] in msg
    assert "modified or truncated" in msg
    assert "retrain or restore it" in msg


def test_registry_missing_version_message(tmp_path: Path) -> None:
    reg = FileRegistry(tmp_path)
    with pytest.raises(RegistryError) as info:
        reg.load("m1", "v404")
    msg = str(info.value)
    assert "model 'm1' has no version 'v404'" in msg
    assert str(tmp_path) in msg
    assert "STREAMPROC_DATA_DIR" in msg


@pytest.mark.parametrize(
    ("model_id", "version"),
    [
        ("../../escape", "v1"),
        ("m1", "../../../etc/passwd"),
        ("a/b/c", "x/y"),
        ("/abs/path", "/v"),
        ("..\\..\\win", "v1"),
        ("a/../..", "b/../../.."),
        ("m1", "."),
    ],
)
def test_registry_ids_stay_inside_the_root(tmp_path: Path, model_id: str, version: str) -> None:
    root = tmp_path / "reg"
    reg = FileRegistry(root)
    mv = reg.register(model_id, version, b"data", created_ts=1.0)
    artifact = Path(mv.artifact_uri.removeprefix("file://")).resolve()
    assert artifact.is_relative_to(root.resolve())
    assert artifact.parent != root.resolve()
    assert reg.load(model_id, version) == b"data"
    assert {p for p in tmp_path.rglob("*") if p.is_file()} <= set(root.rglob("*"))


@pytest.mark.parametrize(("model_id", "version"), [("..", "v1"), ("..", "..")])
def test_registry_dot_dot_id_stays_inside_the_root(
    tmp_path: Path, model_id: str, version: str
) -> None:
    root = tmp_path / "a" / "reg"
    reg = FileRegistry(root)
    mv = reg.register(model_id, version, b"data", created_ts=1.0)
    artifact = Path(mv.artifact_uri.removeprefix("file://")).resolve()
    assert artifact.is_relative_to(root.resolve())


def test_registry_distinct_ids_do_not_collide(tmp_path: Path) -> None:
    reg = FileRegistry(tmp_path)
    reg.register("fraud/eu", "v1", b"eu-weights", created_ts=1.0)
    reg.register("fraud_eu", "v1", b"other-model", created_ts=2.0)
    assert reg.load("fraud/eu", "v1") == b"eu-weights"


def test_registry_leaves_no_temporary_files(tmp_path: Path) -> None:
    reg = FileRegistry(tmp_path)
    for i in range(3):
        reg.register("m", f"v{i}", bytes([i]) * 10, created_ts=float(i))
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]


def test_registry_metadata_is_json(tmp_path: Path) -> None:
    reg = FileRegistry(tmp_path)
    mv = reg.register("m", "v", b"x", created_ts=3.5, request_id="rr-1", metrics={"a": None})
    meta = orjson.loads((tmp_path / "m" / "v" / "meta.json").read_bytes())
    assert meta["sha256"] == mv.sha256
    assert meta["request_id"] == "rr-1"
    assert meta["metrics"] == {"a": None}


def test_train_takes_examples_rows_or_feature_label_pairs_alike() -> None:
    from streamproc.core.example import Example
    from streamproc.core.training import train

    pairs = [[{"x": float(i % 10)}, i % 10 >= 5] for i in range(200)]
    rows = [[f, y, None, "v1", float(i)] for i, (f, y) in enumerate(pairs)]
    named = [Example(f, y, None, "v1", float(i)) for i, (f, y) in enumerate(pairs)]
    predictions = {
        tuple(train(e).predict({"x": float(x)}) for x in range(10)) for e in (pairs, rows, named)
    }
    assert predictions == {tuple(x >= 5 for x in range(10))}


def test_builtin_candidate_names_its_learner(tmp_path: Path) -> None:
    out = retrain(request(), concept_examples(400, wrong=0.4), "v1", FileRegistry(tmp_path), 1.0)
    assert out.result.metrics["learner"] == "logistic"
    assert out.result.metrics["task"] == "classification"
