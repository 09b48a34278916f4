"""A model's state is bounded in bytes as well as counts, its snapshot always fits the changelog,
and a restored monitor takes its limits from the current policy (issue 12 items 2 and 6)."""

from __future__ import annotations

import random

import orjson

from streamproc.core.events import LabelEvent, MetricEvent, PredictionEvent
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import load_policy_text
from streamproc.core.router import Monitors
from streamproc.core.statesize import fit_snapshot
from streamproc.core.window import EVICTED_FOR_BYTES

MB = 1024 * 1024
# The worker's limit: app.MAX_STATE_BYTES (8 MiB) less room for the key and framing.
SNAPSHOT_LIMIT = 8 * MB - 64 * 1024


def wide_predictions(mon: ModelMonitor, n: int, features: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    names = [f"feature_{k:05d}" for k in range(features)]
    base = [rng.gauss(0.0, 1.0) for _ in names]
    for i in range(n):
        shift = rng.gauss(0.0, 1.0)  # one draw a row: the values' JSON size is what matters
        row = {name: v + shift for name, v in zip(names, base, strict=True)}
        mon.on_prediction(PredictionEvent(f"e{i}", mon.model_id, "v1", float(i), 1, row), None)


def labels(mon: ModelMonitor, ids: range, ts0: float) -> None:
    for i in ids:
        mon.on_label(LabelEvent(f"e{i}", mon.model_id, ts0 + i, 1), None)


# The case: 300 numeric features, 2,000 predictions whose labels have not arrived.
# Before: a 12.5 MB snapshot that Kafka refused (MessageSizeTooLargeError), the worker crashed.
# Drift detectors watch a few features only, to keep the test quick; the bound is the join's.
_FEW_DETECTORS = '[default.drift]\nfeatures = ["feature_0000*"]\n'


def test_300_features_2000_unlabelled_predictions_stay_within_the_join_bytes() -> None:
    book = load_policy_text(_FEW_DETECTORS)
    mon = ModelMonitor("wide", book.default)
    wide_predictions(mon, 2000, 300)
    limit = book.default.join.max_bytes
    assert limit == 3 * MB  # the default
    assert mon.join.nbytes <= limit
    evicted = mon.join.counts["evicted_for_bytes"]
    assert 1500 < evicted < 2000  # each prediction is ~8 KB: ~390 fit in 3 MiB
    assert mon.join.counts["evicted_predictions"] == evicted
    assert mon.join.pending == 2000 - evicted
    snapshot = mon.snapshot()
    assert len(snapshot) < limit + 256 * 1024  # the buffer is most of it
    # The latest predictions are the ones kept: their labels join.
    labels(mon, range(1990, 2000), 5000.0)
    assert mon.join.counts["joined"] == 10


def test_the_training_window_is_bounded_in_bytes_and_counts_what_it_drops() -> None:
    book = load_policy_text(_FEW_DETECTORS + "[default]\ntraining_window_bytes = 500000\n")
    mon = ModelMonitor("wide", book.default)
    for start in range(0, 600, 50):  # labels follow predictions closely: all join
        wide_predictions(mon, 50, 300, seed=start)
        labels(mon, range(50), 1000.0 + start)
    assert mon.examples.nbytes <= 500_000
    kept = len(mon.examples)
    assert 40 < kept < 80  # ~8 KB an example
    assert mon.counts[EVICTED_FOR_BYTES] == mon.join.counts["joined"] - kept
    assert orjson.loads(mon.snapshot())["counts"][EVICTED_FOR_BYTES] > 0


def test_a_snapshot_over_the_limit_is_shrunk_not_failed() -> None:
    # Policy bounds larger than the record limit: the guard evicts the oldest data to fit.
    book = load_policy_text(_FEW_DETECTORS + "[default]\njoin = { max_bytes = 20000000 }\n")
    mon = ModelMonitor("wide", book.default)
    wide_predictions(mon, 1500, 300)
    assert len(mon.snapshot()) > 10 * MB
    data = fit_snapshot(mon, 2 * MB)
    assert data is not None and len(data) <= 2 * MB
    assert mon.join.counts["evicted_for_bytes"] > 1000
    back = ModelMonitor.restore(data, book.default)
    assert back.join.pending == mon.join.pending


def test_detector_state_too_large_is_saved_without_it_and_restores_fresh_detectors() -> None:
    mon = ModelMonitor("many")  # every feature watched: one detector each
    wide_predictions(mon, 3, 2000)
    for i in range(3):  # labels: nothing waits in the join
        mon.on_label(LabelEvent(f"e{i}", "many", 10.0 + i, 1), None)
    mon.examples.clear()
    mon.examples.nbytes = 0
    mon.examples._sizes.clear()
    size = len(mon.snapshot())
    data = fit_snapshot(mon, size // 3)
    assert data is not None and len(data) <= size // 3
    assert mon.counts["snapshot_without_detectors"] == 1
    assert len(mon.detectors) > 2000  # the live monitor keeps its detectors
    back = ModelMonitor.restore(data)
    # fresh, from the policy (the error detector comes once the task is known from labels)
    assert set(back.detectors) == {"metric:drift"}


def test_a_snapshot_that_cannot_fit_is_not_written_and_is_counted() -> None:
    mon = ModelMonitor("m")
    mon.on_metric(MetricEvent("m", 1.0, "drift", 0.01), None)
    monitors = Monitors(max_snapshot_bytes=50)
    monitors.live["m"] = mon
    monitors.dirty.add("m")
    assert monitors.drain_dirty() == {}
    assert mon.counts["snapshot_too_large"] == 1


def test_10k_features_1300_predictions_processed_few_detectors() -> None:
    """The issue's widest case, with drift watching a few features (the bound is the buffers')."""
    book = load_policy_text(_FEW_DETECTORS)
    mon = ModelMonitor("widest", book.default)
    wide_predictions(mon, 1300, 10_000)
    assert mon.counts["predictions"] == 1300
    assert mon.join.nbytes <= 3 * MB
    assert mon.join.counts["evicted_for_bytes"] > 1250  # ~300 KB a prediction: ~10 fit
    labels(mon, range(1290, 1300), 5000.0)
    assert mon.join.counts["joined"] >= 5
    data = fit_snapshot(mon, SNAPSHOT_LIMIT)
    assert data is not None and len(data) <= SNAPSHOT_LIMIT


# ------------------------------------------------------------------ item 6: policy over snapshot


def _policy(window: int, pending: int) -> str:
    return f"[default]\ntraining_window = {window}\njoin = {{ max_pending = {pending} }}\n"


def test_restore_takes_the_current_policy_limits() -> None:
    old = load_policy_text(_policy(10, 5)).default
    new = load_policy_text(_policy(20, 50)).default
    mon = ModelMonitor("m", old)
    for i in range(30):
        mon.on_prediction(PredictionEvent(f"e{i}", "m", "v1", float(i), 1, {"x": 1.0}), None)
        mon.on_label(LabelEvent(f"e{i}", "m", float(i), 1), None)
    assert len(mon.examples) == 10
    back = ModelMonitor.restore(mon.snapshot(), new)
    assert back.examples.max_count == 20
    assert back.join.max_pending == 50
    for i in range(30, 130):  # predictions only: they wait
        back.on_prediction(PredictionEvent(f"e{i}", "m", "v1", float(i), 1, {"x": 1.0}), None)
    assert back.join.pending == 50
    for i in range(30, 45):
        back.on_label(LabelEvent(f"e{i}", "m", float(i), 1), None)
    assert len(back.examples) == 10  # the 30..44 labels answered evicted predictions
    for i in range(80, 130):
        back.on_label(LabelEvent(f"e{i}", "m", float(i), 1), None)
    assert len(back.examples) == 20


def test_restore_with_smaller_limits_evicts_and_counts() -> None:
    big = load_policy_text(_policy(100, 100)).default
    small = load_policy_text(_policy(10, 5)).default
    mon = ModelMonitor("m", big)
    for i in range(50):
        mon.on_prediction(PredictionEvent(f"e{i}", "m", "v1", float(i), 1, {"x": 1.0}), None)
    back = ModelMonitor.restore(mon.snapshot(), small)
    assert back.join.pending == 5
    assert back.join.counts["evicted_predictions"] == 45


def test_restore_after_a_deployment_still_takes_the_policy_limits() -> None:
    from streamproc.core.events import DeploymentEvent

    old = load_policy_text(_policy(10, 5)).default
    new = load_policy_text(_policy(20, 50)).default
    mon = ModelMonitor("m", old)
    mon.on_deployment(DeploymentEvent("d1", "m", "v2", "promote", 1.0))
    back = ModelMonitor.restore(mon.snapshot(), new)
    again = ModelMonitor.restore(back.snapshot(), new)
    assert (again.examples.max_count, again.join.max_pending) == (20, 50)
    assert again.version == "v2"


def test_changed_detection_rules_start_fresh_detectors() -> None:
    old = load_policy_text('[default]\nmetrics = [{ name = "drift", above = 0.1 }]\n').default
    new = load_policy_text('[default]\nmetrics = [{ name = "auc", below = 0.7 }]\n').default
    mon = ModelMonitor("m", old)
    mon.on_metric(MetricEvent("m", 1.0, "drift", 0.05), None)
    same = ModelMonitor.restore(mon.snapshot(), old)
    assert same.detectors["metric:drift"].n == 1  # state kept when the rules are the same
    back = ModelMonitor.restore(mon.snapshot(), new)
    assert set(back.detectors) == {"metric:auc"}
    assert back.counts["metrics"] == 1  # the rest of the state is the snapshot's
