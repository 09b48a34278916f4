"""The offline closed loop on the real core: worlds and strategies behave as documented."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest

from streamproc.core.events import Reason, RetrainRequest
from streamproc.core.policy import DEFAULT_POLICY
from streamproc.core.retrain import Candidate, TrainingJob, builtin_trainer
from streamproc.sim import loop
from streamproc.sim.loop import SCHEDULES, World, _Loop, closed_loop

logging.getLogger("streamproc").setLevel(logging.ERROR)


def test_worlds_follow_their_schedule() -> None:
    events = list(World(SCHEDULES["sea_shift"]))
    assert len(events) == 40_000
    before = [x["2"] for i, x, _ in events[:20_000]]
    after = [x["2"] for i, x, _ in events[20_000:]]
    assert sum(after) / len(after) - sum(before) / len(before) == pytest.approx(5.0, abs=0.1)


def test_default_policy_recovers_from_an_abrupt_change_and_never_does_not() -> None:
    never = closed_loop(SCHEDULES["stagger"], "never", length=14_000)
    default = closed_loop(SCHEDULES["stagger"], "default", length=14_000)
    assert default.accuracy > never.accuracy + 0.15  # 4000 post-drift events at ~40% accuracy
    assert default.onset_delays and default.onset_delays[0] < 500
    assert default.false_retrains == 0


def test_periodic_retrains_on_its_period_and_oracle_at_the_drift() -> None:
    periodic = closed_loop(SCHEDULES["sea"], "periodic", length=9_000, period=2000)
    assert periodic.requests_at == [2000, 4000, 6000, 8000]
    oracle = closed_loop(SCHEDULES["stagger"], "oracle", length=12_000)
    # 50 post-drift labels for training + 30 for the gate's minimum holdout, 50 events late
    assert oracle.requests_at[0] == 10_000 + 50 + 79


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown strategy 'sometimes'"):
        closed_loop(SCHEDULES["sea"], "sometimes")


def test_a_feature_alarm_at_a_concept_change_is_not_answered_from_old_labels() -> None:
    """rbf, seed 1: a feature alarm 41 events after the centroids were redrawn used to retrain
    on the window's pre-change labels; that candidate was deployed and rolled back to v0. Now
    the alarm waits for post-change labels: every deployment is a new version, none before the
    first post-change labels exist."""
    run = closed_loop(SCHEDULES["rbf"], "default", seed=1, length=12_000)
    assert run.requests_at and all(i >= 10_000 + 50 for i in run.requests_at)
    versions = [v for _, v in run.deployments]
    assert "v0" not in versions and len(set(versions)) == len(versions)  # no rollback
    assert run.accuracy > 0.9


def test_a_stationary_stretch_gets_no_request() -> None:
    """mixed, seed 3: the prediction-distribution CUSUM fired at event 27,487, 7,487 events
    after the last change, with the concept and the model unchanged, and asked for a retrain.
    Its post-alarm labels show no error rise, so now nothing is asked."""
    run = closed_loop(SCHEDULES["mixed"], "default", seed=3, length=29_000)
    assert [i for i in run.requests_at if i >= 22_000] == []
    assert run.false_retrains == 0


def test_the_learner_is_the_one_every_strategy_trains_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Agrawal's function 0 (age bands) until 10k: the tree learns it, the line cannot.
    logistic = closed_loop(SCHEDULES["agrawal"], "never", length=3_000)
    tree = closed_loop(SCHEDULES["agrawal"], "never", length=3_000, learner="tree")
    assert tree.accuracy > logistic.accuracy + 0.2
    learners: list[str] = []

    def recording(job: TrainingJob, learner: str = "logistic") -> Candidate:
        learners.append(learner)
        return builtin_trainer(job, learner=learner)

    monkeypatch.setattr(loop, "builtin_trainer", recording)
    periodic = closed_loop(SCHEDULES["agrawal"], "periodic", length=4_001, learner="tree")
    assert periodic.retrains == 2 and learners == ["tree", "tree"]


def _loop_after_onset(before: float, after: float, deployed_at: int = 0) -> Any:
    """sea_shift's loop with served errors at rate ``before`` until its onset (20k), then
    ``after``, deterministic (every 1/rate-th event wrong)."""
    sim = _Loop(SCHEDULES["sea_shift"], "default", DEFAULT_POLICY, None, 50, 2000, "-")  # type: ignore[arg-type]
    sim.deployed_at = deployed_at

    def errors(rate: float, n: int) -> list[float]:
        return [float(int((k + 1) * rate) > int(k * rate)) for k in range(n)]

    sim.served_errors = errors(before, 20_000) + errors(after, 5_000)
    return sim


def _request(signal: str, version: str = "v0") -> RetrainRequest:
    return RetrainRequest("r", "sim", version, 0.0, (Reason(signal, "x", 1.0, 1.0, 1, {}),))


def _deployed_for(sim: Any, signal: str, i: int, version: str) -> None:
    """A request at ``i`` whose candidate ``version`` was deployed (what ``_act`` records)."""
    sim.kind_of_version[version] = sim._count_stationary(_request(signal), i)


def test_a_late_request_while_the_served_model_is_degraded_is_a_late_detection() -> None:
    """sea_shift, seed 8: an error alarm 4,239 events after the shift (served error 0.077 before,
    0.095 since; z 3.4) and its refit. Neither is a stationary retrain."""
    sim = _loop_after_onset(0.077, 0.095)
    _deployed_for(sim, "error", 24_239, "v1")
    sim._count_stationary(_request("refit", "v1"), 24_789)
    assert (sim.result.late_retrains, sim.result.false_retrains) == (2, 0)


def test_a_late_request_without_degradation_is_a_stationary_retrain() -> None:
    sim = _loop_after_onset(0.077, 0.078)
    _deployed_for(sim, "error", 24_239, "v1")
    sim._count_stationary(_request("refit", "v1"), 24_789)
    assert (sim.result.late_retrains, sim.result.false_retrains) == (0, 2)


def test_a_model_fitted_after_the_onset_makes_later_requests_stationary() -> None:
    sim = _loop_after_onset(0.077, 0.2, deployed_at=21_000)
    sim._count_stationary(_request("error"), 24_239)
    assert (sim.result.late_retrains, sim.result.false_retrains) == (0, 1)


def test_requests_within_settle_of_the_onset_are_neither() -> None:
    sim = _loop_after_onset(0.077, 0.2)
    _deployed_for(sim, "error", 21_000, "v1")
    sim._count_stationary(_request("refit", "v1"), 23_000)  # the refit of the onset's request
    assert (sim.result.late_retrains, sim.result.false_retrains) == (0, 0)


def test_a_refit_counts_as_the_request_of_its_version_not_the_last_one() -> None:
    """v1 was deployed for the onset; a later request (rejected: no version) does not change
    what v1's refit counts as (found in review)."""
    sim = _loop_after_onset(0.077, 0.077)
    _deployed_for(sim, "error", 21_000, "v1")
    sim._count_stationary(_request("error", "v1"), 23_500)  # stationary, its candidate rejected
    sim._count_stationary(_request("refit", "v1"), 24_000)
    assert (sim.result.late_retrains, sim.result.false_retrains) == (0, 1)


def test_a_short_baseline_decides_nothing() -> None:
    """A model deployed 10 events before an onset, all 10 answers right by chance (found in
    review: a zero-variance baseline made any later request a late detection)."""
    rng = random.Random(0)
    sim = _loop_after_onset(0.05, 0.05, deployed_at=19_990)
    sim.served_errors = [float(rng.random() < 0.05) for _ in range(23_000)]
    sim.served_errors[19_990:20_000] = [0.0] * 10
    sim._count_stationary(_request("error"), 23_000)
    assert (sim.result.late_retrains, sim.result.false_retrains) == (0, 1)


def test_the_whole_sea_shift_run_of_seed_8_counts_its_two_requests_late() -> None:
    run = closed_loop(SCHEDULES["sea_shift"], "default", seed=8)
    assert run.requests_at == [24_239, 24_789]
    assert (run.late_retrains, run.false_retrains) == (2, 0)
