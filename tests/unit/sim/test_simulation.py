"""The offline closed loop on the real core: worlds and strategies behave as documented."""

from __future__ import annotations

import logging

import pytest

from streamproc.sim.loop import SCHEDULES, World, closed_loop

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
