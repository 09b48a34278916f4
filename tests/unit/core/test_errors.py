"""Task-aware errors (issue 11, items 1-3): tasks, label types, and error detectors at any level.

Every input of the issue is here with its right value: an integer regression scored by its
absolute error (no request), string labels for numeric predictions scored as numbers (no
request), mismatched types dead-lettered (``label_type_mismatch``, counted, never scored), and
stationary error rates up to 100% that never fire. All streams are seeded.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc.cli.replay import replay
from streamproc.core.detect import restore
from streamproc.core.detect.cusum import Cusum, bernoulli_increments
from streamproc.core.detect.rising import RisingOnly
from streamproc.core.errors import (
    MAX_EVIDENCE,
    MIN_EVIDENCE,
    ErrorScorer,
    Pair,
    comparable,
    error_value,
    errors_of,
    infer_task,
)
from streamproc.core.events import DEAD_LETTER_REASONS, Reason, RetrainRequest, SourceRef
from streamproc.core.example import Example
from streamproc.core.gate import current_error
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import DEFAULT_POLICY, PolicyError, load_policy_text
from streamproc.core.retrain import Candidate, judge, prepare
from streamproc.core.router import Monitors, Outcome, route
from streamproc.sim.scenarios import interactions, rule_model

T0 = 1_767_225_600.0
NO_DRIFT = load_policy_text("[default]\ndrift = false\n")


def stream(
    n: int,
    pred_label: Callable[[int, random.Random], tuple[Any, Any]],
    seed: int = 1,
    model: str = "m",
) -> Iterator[tuple[str, bytes]]:
    """Predictions and their labels, each label right after its prediction."""
    rng = random.Random(seed)
    for i in range(n):
        p, y = pred_label(i, rng)
        eid = f"{model}-{i}"
        ts = T0 + i
        yield "predictions", orjson.dumps(
            {"event_id": eid, "model_id": model, "model_version": "v1", "ts": ts,
             "prediction": p, "features": {"x": rng.random()}}
        )  # fmt: skip
        yield "labels", orjson.dumps({"event_id": eid, "model_id": model, "ts": ts, "label": y})


def play(monitors: Monitors, records: Iterator[tuple[str, bytes]]) -> list[Outcome]:
    out = []
    for i, (topic, raw) in enumerate(records):
        o = route(monitors, topic, raw, SourceRef(topic, 0, i), 0.0)
        if o.requests or o.deployments or o.dead_letter:
            out.append(o)
    return out


def requests(outcomes: list[Outcome]) -> list[Any]:
    return [r for o in outcomes for r in o.requests]


# --------------------------------------------------------------------------- label types


@pytest.mark.parametrize(
    ("prediction", "label", "numbers", "same"),
    [
        (1, "1", True, True),
        ("0", 1, True, False),
        (1.0, "1", True, True),
        ("2.50", "2.5", True, True),
        (250000, "251000", True, False),
        ("cat", "cat", False, True),
        ("cat", "dog", False, False),
        (True, 1, False, True),
        (False, "false", False, True),
        (True, "0", False, False),
        ("01", "1", True, True),
    ],
)
def test_comparable_pairs(prediction: Any, label: Any, numbers: bool, same: bool) -> None:
    pair = comparable(prediction, label)
    assert isinstance(pair, Pair)
    assert pair.numbers is numbers
    assert (pair.prediction == pair.label) is same


@pytest.mark.parametrize(
    ("prediction", "label"),
    [
        (1, "cat"),
        (3.5, "cat"),
        ("dog", 2),
        (True, 2),
        (True, "yes"),
        (1, " 1"),
        (1, "nan"),
        (1, "9" * 5000),
        (1.5, "1e999"),
    ],
)
def test_mismatched_types_say_what_and_what_to_do(prediction: Any, label: Any) -> None:
    msg = comparable(prediction, label)
    assert isinstance(msg, str)
    assert repr(label)[:50] in msg and "send labels of the predictions' type" in msg
    assert len(msg) < 500
    assert "not scored" in msg


def test_regression_errors_are_absolute_or_squared_for_integers_too() -> None:
    pair = comparable(250000, 251000)
    assert isinstance(pair, Pair)
    assert error_value(pair, "regression") == 1000.0
    assert error_value(pair, "regression", "squared") == 1e6
    assert error_value(pair, "classification") == 1.0
    cents = comparable(250000.25, 251000.25)
    assert isinstance(cents, Pair) and error_value(cents, "regression") == 1000.0
    assert error_value(Pair("a", "b", False), "regression") is None  # not a quantity


# --------------------------------------------------------------------------- task inference


def test_task_is_never_inferred_from_one_value() -> None:
    sc = ErrorScorer()
    for i in range(MIN_EVIDENCE - 1):
        out = sc.add(f"e{i}", "v1", 250000 + i, 251000 + i, float(i))
        assert out.ready == () and out.comparable
    assert sc.task is None
    out = sc.add("last", "v1", 1, 1, 1.0)
    assert sc.task == "regression"
    # The held pairs are scored in arrival order, then this one.
    assert [s.event_id for s in out.ready][:2] == ["e0", "e1"] and len(out.ready) == MIN_EVIDENCE
    assert out.ready[0].error == 1000.0


@pytest.mark.parametrize(
    ("make", "task"),
    [
        (lambda i, r: (r.randrange(2), r.randrange(2)), "classification"),
        (lambda i, r: (r.randrange(50), r.randrange(50)), "classification"),  # 50 classes
        (lambda i, r: (str(r.randrange(3)), r.randrange(3)), "classification"),
        (lambda i, r: (r.random() < 0.5, r.random() < 0.5), "classification"),
        (lambda i, r: (r.choice("abc"), r.choice("abc")), "classification"),
        (lambda i, r: (250000 + i, 251000 + i), "regression"),  # whole-unit prices
        (lambda i, r: (r.randrange(10**6), r.randrange(10**6)), "regression"),
        (lambda i, r: (r.gauss(0, 1), r.gauss(0, 1)), "regression"),
        (lambda i, r: (round(r.gauss(5, 2), 2), r.randrange(10)), "regression"),
    ],
)
def test_task_inference(make: Callable[[int, random.Random], tuple[Any, Any]], task: str) -> None:
    rng = random.Random(3)
    sc = ErrorScorer()
    for i in range(MAX_EVIDENCE):
        sc.add(f"e{i}", "v1", *make(i, rng), float(i))
        if sc.task is not None:
            break
    assert sc.task == task, sc.why
    assert infer_task([make(i, rng) for i in range(300)]) == task


def test_ambiguous_integer_labels_are_decided_at_the_cap() -> None:
    # Integer predictions and labels over ~40 values, skewed: neither clearly open nor closed.
    rng = random.Random(5)
    sc = ErrorScorer()
    n = 0
    while sc.task is None:
        v = int(rng.expovariate(0.02))
        sc.add(f"e{n}", "v1", v, v + 1, float(n))
        n += 1
    assert MIN_EVIDENCE <= n <= MAX_EVIDENCE
    assert "distinct integer labels" in sc.why


def test_declared_task_scores_from_the_first_label() -> None:
    sc = ErrorScorer("regression", "squared")
    out = sc.add("e0", "v1", 3, "5", 0.0)
    assert sc.task == "regression" and out.ready[0].error == 4.0
    bad = sc.add("e1", "v1", "cat", "dog", 1.0)
    assert bad.ready == () and bad.comparable is False
    ((event_id, msg),) = bad.mismatches
    assert event_id == "e1" and "task is regression" in msg and "declare task" in msg


def test_scorer_state_round_trips_mid_inference() -> None:
    sc = ErrorScorer()
    for i in range(50):
        sc.add(f"e{i}", "v1", i, i + 1, float(i))
    copy = ErrorScorer.from_state(orjson.loads(orjson.dumps(sc.state())), "auto", "absolute")
    assert copy is not None and copy.state() == sc.state()
    with pytest.raises(ValueError, match="reset the worker"):
        ErrorScorer.from_state({**sc.state(), "format": 99}, "auto", "absolute")
    # Scored under another task or loss than the policy's now: the state does not apply.
    assert ErrorScorer.from_state(sc.state(), "regression", "absolute") is None
    assert ErrorScorer.from_state(sc.state(), "auto", "squared") is None


# --------------------------------------------------------------------------- the monitor


def test_integer_regression_prices_in_whole_units_make_no_request() -> None:
    """Issue 11: prediction 250000+i, label 251000+i (always off by 1000) asked at label 1,133."""
    monitors = Monitors(NO_DRIFT)
    out = play(monitors, stream(6000, lambda i, r: (250000 + i, 251000 + i)))
    assert out == []
    mon = monitors.get("m")
    assert mon.scorer.task == "regression"
    det = mon.detectors["error"]
    assert isinstance(det, RisingOnly) and det.n == 6000  # every label scored, once


def test_integer_regression_with_default_policy_and_cents_make_no_request() -> None:
    def whole(i: int, r: random.Random) -> tuple[int, int]:
        x = r.randrange(100_000)
        return 250000 + x, 251000 + x + r.randrange(-50, 51)

    def cents(i: int, r: random.Random) -> tuple[float, float]:
        p, y = whole(i, r)
        return p + 0.25, y + 0.75

    for make in (whole, cents):
        monitors = Monitors()
        assert requests(play(monitors, stream(4000, make, seed=2))) == []
        assert monitors.get("m").scorer.task == "regression"


def test_integer_regression_errors_that_rise_make_a_request() -> None:
    def prices(i: int, r: random.Random) -> tuple[int, int]:
        off = 1000 if i < 3000 else 5000  # the model got much worse at 3000
        return 250000 + i, 251000 + i + r.randrange(-200, 201) + off - 1000

    reqs = requests(play(Monitors(NO_DRIFT), stream(6000, prices)))
    assert len(reqs) == 1
    assert reqs[0].reasons[0].signal == "error"
    assert 3000 <= reqs[0].ts - T0 < 3200


def test_regression_errors_that_fall_make_no_request() -> None:
    def better(i: int, r: random.Random) -> tuple[float, float]:
        y = r.gauss(100, 10)
        return y + r.gauss(0, 5.0 if i < 3000 else 0.5), y

    monitors = Monitors(NO_DRIFT)
    assert requests(play(monitors, stream(8000, better))) == []
    det = monitors.get("m").detectors["error"]
    assert isinstance(det, RisingOnly) and det.falls >= 1  # seen, and not reported


def test_string_labels_for_numeric_predictions_are_scored_as_numbers() -> None:
    """Issue 11: labels "0"/"1" for numeric 0/1 predictions of a 95%-accurate model."""

    def ninety_five(i: int, r: random.Random) -> tuple[int, str]:
        y = r.randrange(2)
        return (y if r.random() < 0.95 else 1 - y), str(y)

    monitors = Monitors()
    out = play(monitors, stream(6000, ninety_five))
    assert out == []  # no request, no dead letter
    mon = monitors.get("m")
    assert mon.scorer.task == "classification"
    level = mon.detectors["error"].details()["reference_level"]
    assert 0.03 < level < 0.07  # 5% errors, not 100%


def test_mismatched_label_is_a_counted_dead_letter_and_never_scored() -> None:
    def broken(i: int, r: random.Random) -> tuple[float, Any]:
        return r.random(), ("n/a" if i % 100 == 7 else r.random())

    monitors = Monitors()
    out = play(monitors, stream(1000, broken))
    letters = [o.dead_letter for o in out if o.dead_letter]
    assert len(letters) == 10 and all(o.model_id == "m" for o in out)
    dl = letters[0]
    assert dl is not None and dl.reason == "label_type_mismatch"
    assert dl.source.topic == "labels" and b"n/a" in dl.raw.encode()
    assert "'n/a' (a string) cannot be compared" in dl.error and "send labels" in dl.error
    assert "label_type_mismatch" in DEAD_LETTER_REASONS
    mon = monitors.get("m")
    assert mon.counts["label_type_mismatch"] == 10
    assert mon.detectors["error"].n == 990  # never scored as an error
    assert all(ex.label != "n/a" for ex in mon.training_examples())  # never a gate example


def test_mismatch_found_when_the_prediction_comes_second() -> None:
    monitors = Monitors()
    label = orjson.dumps({"event_id": "a", "model_id": "m", "ts": T0, "label": "cat"})
    pred = orjson.dumps({"event_id": "a", "model_id": "m", "model_version": "v1",
                         "ts": T0, "prediction": 0.5})  # fmt: skip
    assert route(monitors, "labels", label, SourceRef("labels", 2, 7), 0.0).dead_letter is None
    o = route(monitors, "predictions", pred, SourceRef("predictions", 0, 0), 0.0)
    assert o.dead_letter is not None and o.dead_letter.reason == "label_type_mismatch"
    assert o.model_id == "m"
    # The letter names the label that came first, not the prediction that completed the pair
    # (the integration run saw both orders; its dead-letter counter is by topic too).
    assert o.dead_letter.source == SourceRef("labels", 2, 7)
    held = orjson.loads(o.dead_letter.raw)
    assert held == {"event_id": "a", "model_id": "m", "ts": T0, "label": "cat"}


def test_an_early_label_keeps_its_source_through_a_snapshot() -> None:
    monitors = Monitors()
    label = orjson.dumps({"event_id": "a", "model_id": "m", "ts": T0, "label": "cat"})
    route(monitors, "labels", label, SourceRef("labels", 1, 3, index=4), 0.0)
    saved = monitors.snapshot("m")
    restored = Monitors(load=lambda model_id: saved)
    pred = orjson.dumps({"event_id": "a", "model_id": "m", "model_version": "v1",
                         "ts": T0, "prediction": 0.5})  # fmt: skip
    o = route(restored, "predictions", pred, SourceRef("predictions", 0, 0), 0.0)
    assert o.dead_letter is not None and o.dead_letter.source == SourceRef("labels", 1, 3, 4)


@pytest.mark.parametrize("rate", [0.95, 1.0])
def test_stationary_very_high_error_rate_makes_no_request(rate: float) -> None:
    """Issue 11: a 50-class model at 95% or 100% error fired 5 or 88 times per 100k labels."""

    def fifty(i: int, r: random.Random) -> tuple[int, int]:
        y = r.randrange(50)
        return (y if r.random() >= rate else (y + 1 + r.randrange(49)) % 50), y

    monitors = Monitors(NO_DRIFT)
    assert play(monitors, stream(12000, fifty, seed=9)) == []
    mon = monitors.get("m")
    assert mon.scorer.task == "classification" and mon.detectors["error"].n == 12000


def test_snapshot_mid_inference_then_continue_equals_never_stopping() -> None:
    records = list(stream(2000, lambda i, r: (250000 + i, 251000 + i + (4000 if i > 900 else 0))))
    policy = load_policy_text("[default]\ndrift = false\nerror = { regression = "
                              "{ detector = 'cusum', warmup = 100 } }\n")  # fmt: skip
    straight = play(Monitors(policy), iter(records))
    first = Monitors(policy)
    before = play(first, iter(records[:150]))  # 75 labels: the task is not known yet
    assert first.get("m").scorer.task is None
    second = Monitors(policy, load=first.drain_dirty().get)
    after = [route(second, t, raw, SourceRef(t, 0, i), 0.0) for i, (t, raw) in
             enumerate(records[150:], start=150)]  # fmt: skip
    after = [o for o in after if o.requests or o.dead_letter]
    assert [r.request_id for r in requests(before + after)] == [
        r.request_id for r in requests(straight)
    ]
    assert len(requests(straight)) == 1


# --------------------------------------------------------------------------- the detectors


@pytest.mark.parametrize("rate", [0.0, 0.01, 0.1, 0.5, 0.9, 0.95, 0.97, 1.0])
def test_bernoulli_cusum_is_quiet_at_any_stationary_error_rate(rate: float) -> None:
    assert DEFAULT_POLICY.error is not None
    alarms = 0
    for run in range(4):
        rng = random.Random(1000 * run + int(rate * 100))
        det = DEFAULT_POLICY.error.make("classification")
        for _ in range(50_000):
            if det.update(1.0 if rng.random() < rate else 0.0):
                alarms += 1
                det.reset()
    # ARL 1e6: about 0.2 expected in 200k; measured 0 to 0.6 per 1M across these rates
    # (bench/error_detectors.py, 5M labels per rate). The clamped CUSUM raised ~10 at 95%.
    assert alarms <= 1


def test_bernoulli_cusum_is_inert_when_nothing_can_rise() -> None:
    assert bernoulli_increments(1000, 1000, 0.5, 0.02) == (0.0, 0.0)
    assert bernoulli_increments(990, 1000, 0.5, 0.02) == (0.0, 0.0)  # 99% + 2 points > 100%
    a, b = bernoulli_increments(950, 1000, 0.5, 0.02)
    assert a < 0 < b
    det = Cusum(warmup=100)
    for _ in range(100_000):
        assert not det.update(1.0)
    assert det.statistic == 0.0


@pytest.mark.parametrize("p0", [0.001, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95])
def test_bernoulli_alternative_is_an_odds_ratio_rise_with_a_floor(p0: float) -> None:
    n = 100_000
    a, b = bernoulli_increments(p0 * n, n, shift=0.5, min_rise=0.02, z=0.0)
    # Recover p1 from the increments: b = ln(p1/q0), a = ln((1-p1)/(1-q0)).
    q0 = (p0 * n + 1) / (n + 2)
    p1 = q0 * math.exp(b)
    assert math.isclose(1 - p1, (1 - q0) * math.exp(a), rel_tol=1e-9)
    odds = 1.5 * q0 / (1 - q0)
    assert p1 == pytest.approx(max(odds / (1 + odds), q0 + 0.02))
    assert p1 < 1.0


def test_bernoulli_cusum_detects_10_to_20_percent_near_the_bound() -> None:
    assert DEFAULT_POLICY.error is not None
    bound = math.log(1e6) / (0.2 * math.log(2) + 0.8 * math.log(0.8 / 0.9))  # ~311
    found = []
    for run in range(40):
        rng = random.Random(run)
        det = DEFAULT_POLICY.error.make("classification")
        for i in range(20_000):
            if det.update(1.0 if rng.random() < (0.1 if i < 3000 else 0.2) else 0.0):
                assert i >= 3000
                found.append(i - 3000)
                break
    assert len(found) == 40
    # The README's target: within 2x the bound (bench/error_detectors.py reports the ratio).
    assert sum(found) / len(found) < 2.0 * bound


def test_regression_error_detector_is_the_policys_numeric_default_rising_only() -> None:
    assert DEFAULT_POLICY.error is not None and DEFAULT_POLICY.drift is not None
    det = DEFAULT_POLICY.error.make("regression", DEFAULT_POLICY.drift.numeric)
    assert isinstance(det, RisingOnly)
    assert det.spec == dict(DEFAULT_POLICY.drift.numeric)
    rng = random.Random(4)
    for _ in range(3000):
        det.update(abs(rng.gauss(0, 1)))
    again = restore(orjson.loads(orjson.dumps(det.state())))
    assert isinstance(again, RisingOnly) and again.state() == det.state()


HEAVY = {
    "lognormal": lambda r: r.lognormvariate(0.0, 1.5),
    "pareto": lambda r: 1000.0 * r.paretovariate(1.5),
    "t2": lambda r: abs(r.gauss(0, 1) / math.sqrt(r.gammavariate(1.0, 2.0) / 2.0)),
}


@pytest.mark.parametrize("shape", sorted(HEAVY))
def test_heavy_tailed_regression_errors_raise_no_false_alarm(shape: str) -> None:
    assert DEFAULT_POLICY.error is not None and DEFAULT_POLICY.drift is not None
    alarms = 0
    for run in range(2):
        rng = random.Random(run)
        det = DEFAULT_POLICY.error.make("regression", DEFAULT_POLICY.drift.numeric)
        for _ in range(50_000):
            if det.update(HEAVY[shape](rng)):
                alarms += 1
                det.reset()
    assert alarms == 0


# --------------------------------------------------------------------------- policy


def test_policy_declares_the_task_and_the_regression_loss() -> None:
    book = load_policy_text(
        '[default]\ntask = "classification"\n[[model]]\nmatch = "price-*"\ntask = "regression"\n'
        'error = { loss = "squared" }\n'
    )
    assert book.default.task == "classification"
    price = book.for_model("price-eu")
    assert price.task == "regression" and price.error is not None
    assert price.error.loss == "squared"
    mon = ModelMonitor("price-eu", price)
    assert mon.scorer.task == "regression" and isinstance(mon.detectors["error"], RisingOnly)
    assert DEFAULT_POLICY.task == "auto" and ModelMonitor("m").scorer.task is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('task = "ranking"', "task must be one of"),
        ("task = 1", "task must be one of"),
        ('error = { loss = "huber" }', "error.loss must be one of"),
        ("error = { regression = 3 }", "error.regression must be a table"),
        ('error = { regression = { detector = "nope" } }', "unknown detector"),
    ],
)
def test_bad_task_settings_are_refused(text: str, says: str) -> None:
    with pytest.raises(PolicyError, match=says):
        load_policy_text(f"[default]\n{text}\n")


# --------------------------------------------------------------------------- gate


def job_with(labels: list[Any], predictions: list[Any], task: str | None) -> Any:
    examples = [Example({"x": float(i)}, y, p, "v1", T0 + i) for i, (p, y) in
                enumerate(zip(predictions, labels, strict=True))]  # fmt: skip
    req = RetrainRequest("rr-1", "m", "v1", T0, (Reason("manual", "operator", 0, 0, 0),))
    return prepare(req, examples, "v1", task=task)


def test_gate_scores_string_labels_as_numbers() -> None:
    """Issue 11: replay --retrain saw current error 1.0 and promoted a 0.577 candidate."""
    rng = random.Random(8)
    ys = [rng.randrange(2) for _ in range(600)]
    preds = [y if rng.random() < 0.95 else 1 - y for y in ys]
    labels = [str(y) for y in ys]
    job = job_with(labels, preds, None)
    err, n = current_error(job.holdout, "v1")
    assert err is not None and err < 0.15 and n == len(job.holdout)
    worse = Candidate(tuple(rng.randrange(2) for _ in job.holdout))  # a coin
    outcome = judge(job, worse, registry=None, now=T0)  # type: ignore[arg-type]
    assert outcome.result.status == "rejected" and outcome.deployment is None
    assert outcome.result.metrics["current_error"] < 0.15


def test_gate_never_judges_a_candidate_of_the_wrong_type() -> None:
    job = job_with([1.5 * i for i in range(300)], [1.5 * i + 1 for i in range(300)], None)
    assert job.resolved_task() == "regression"
    cats = Candidate(tuple("cat" for _ in job.holdout))
    outcome = judge(job, cats, registry=None, now=T0)  # type: ignore[arg-type]
    assert outcome.result.status == "failed" and outcome.deployment is None
    assert "cannot be compared with their labels" in (outcome.result.error or "")


def test_gate_scores_integer_regression_by_absolute_error() -> None:
    job = job_with([251000 + i for i in range(300)], [250000 + i for i in range(300)], None)
    err, _ = current_error(job.holdout, "v1", "regression")
    assert err == 1000.0
    assert errors_of([(1, "x"), (2, 3)], "regression") == ([1.0], 1)


def test_the_readme_policy_example_declares_a_regression_task() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    (block,) = re.findall(r"```toml\n(.*?)```", readme, re.S)
    book = load_policy_text(block)
    assert book.default.task == "auto"
    price = book.for_model("price-eu")
    assert price.task == "regression" and price.error is not None
    assert price.error.loss == "squared"
    assert book.for_model("fraud-eu").task == "auto"


# --------------------------------------------------------------------------- replay


def replay_lines(n: int, label_of: Callable[[int, bool], Any], seed: int = 3) -> list[bytes]:
    """A 95%-accurate model with integer predictions; labels as ``label_of(i, truth)``."""
    initial = ("v1", rule_model("A", flip=0.05))
    out = []
    for i, x in enumerate(interactions("m", lambda i: "A", lambda i: initial, 0, n, seed=seed)):
        pred = {**x.prediction, "prediction": int(x.prediction["prediction"])}
        label = {**x.label, "label": label_of(i, bool(x.label["label"]))}
        out += [orjson.dumps({"topic": "predictions", "value": pred}),
                orjson.dumps({"topic": "labels", "value": label})]  # fmt: skip
    return out


def test_replay_retrain_judges_string_labels_as_numbers() -> None:
    """Issue 11: the gate saw current error 1.0 and promoted a candidate with error 0.577."""
    records = replay_lines(3000, lambda i, y: str(int(y)))
    assert list(replay(records)) == []  # no request, no dead letter
    drift = {"model_id": "m", "ts": 2e9, "name": "drift", "value": 0.5}
    records.append(orjson.dumps({"topic": "metrics", "value": drift}))
    out = list(replay(records, retrain_for_real=True))
    assert [e.topic for e in out][:2] == ["retrain-requests", "retrain-results"]
    metrics = out[1].value["metrics"]
    assert metrics["task"] == "classification"
    assert metrics["current_error"] < 0.15  # the model's real 5%, not 1.0
    if out[1].value["status"] == "succeeded":
        assert metrics["candidate_error"] <= metrics["current_error"]


def test_replay_dead_letters_mismatched_labels_and_goes_on() -> None:
    records = replay_lines(400, lambda i, y: "unknown" if i % 50 == 0 else int(y))
    out = list(replay(records))
    assert [e.topic for e in out] == ["dead-letters"] * 8
    assert {e.value["reason"] for e in out} == {"label_type_mismatch"}
    assert [e.input_index for e in out] == [2 * i + 1 for i in range(0, 400, 50)]


def test_a_task_declared_later_applies_to_a_restored_monitor() -> None:
    monitors = Monitors(NO_DRIFT)
    play(monitors, stream(300, lambda i, r: (r.randrange(5), r.randrange(5))))
    mon = monitors.get("m")
    assert mon.scorer.task == "classification" and isinstance(mon.detectors["error"], Cusum)
    declared = load_policy_text('[default]\ndrift = false\ntask = "regression"\n').default
    again = ModelMonitor.restore(mon.snapshot(), declared)
    assert again.scorer.task == "regression" and isinstance(again.detectors["error"], RisingOnly)
    same = ModelMonitor.restore(mon.snapshot(), NO_DRIFT.default)
    assert same.snapshot() == mon.snapshot()


def test_scorer_state_is_named_and_format_1_positional_state_still_restores() -> None:
    sc = ErrorScorer()
    for i in range(5):  # too few to decide the task: the pairs are held
        sc.add(f"e{i}", "v1", i % 3, i % 3, float(i))
    s = sc.state()
    assert s["format"] == 2
    assert s["task"] == {"declared": "auto", "loss": "absolute", "inferred": None, "why": ""}
    assert set(s["inference"]) == {"n", "classes", "fractional", "values", "overflow"}
    assert s["held"][0] == {"event_id": "e0", "version": "v1", "prediction": 0, "label": 0,
                            "numbers": True, "ts": 0.0}  # fmt: skip
    inf = s["inference"]
    old = {  # what format 1 wrote for the same scorer: positional lists
        "format": 1,
        "task": ["auto", "absolute", None, ""],
        "inference": [inf["n"], inf["classes"], inf["fractional"], inf["values"], inf["overflow"]],
        "held": [list(h.values()) for h in s["held"]],
    }
    again = ErrorScorer.from_state(old, "auto", "absolute")
    assert again is not None and again.state() == s


def test_a_held_pairs_mismatch_is_not_blamed_on_the_early_label_that_decided_the_task() -> None:
    """e0 (class names) waits while the task is inferred; e199's label comes before its
    prediction, and that prediction decides: regression. e0's letter names the record being
    applied, never e199's good label."""
    monitors = Monitors()

    def send(topic: str, i: int, value: Any) -> Any:
        field = "prediction" if topic == "predictions" else "label"
        ev = {"event_id": f"e{i}", "model_id": "m", "ts": T0 + i, field: value}
        if topic == "predictions":
            ev["model_version"] = "v1"
        return route(monitors, topic, orjson.dumps(ev), SourceRef(topic, 0, i), 0.0)

    send("predictions", 0, "cat")
    send("labels", 0, "cat")
    for i in range(1, 199):
        send("predictions", i, 1000.5 + i)
        send("labels", i, 1000.0 + 3 * i)
    assert send("labels", 199, 3.5).dead_letter is None  # early: waits for its prediction
    o = send("predictions", 199, 4.25)
    assert monitors.get("m").scorer.task == "regression"
    assert o.dead_letter is not None and o.dead_letter.error.startswith("event 'e0'")
    assert o.dead_letter.source == SourceRef("predictions", 0, 199)
    assert "e199" in o.dead_letter.raw and "3.5" not in o.dead_letter.raw
