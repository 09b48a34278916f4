"""The threshold rule: which side fires, evidence, reset, state round trip."""

from __future__ import annotations

import math

import orjson
import pytest

from streamproc.core.detect import restore
from streamproc.core.detect.threshold import ThresholdRule

# --------------------------------------------------------------------------- ThresholdRule


def test_threshold_above_fires_strictly_above() -> None:
    r = ThresholdRule(above=0.1)
    assert [r.update(x) for x in (0.0, 0.1, 0.1000001, 5.0, -3.0)] == [
        False,
        False,
        True,
        True,
        False,
    ]
    assert r.threshold == 0.1
    assert r.n == 5
    assert r.statistic == -3.0


def test_threshold_below_fires_strictly_below() -> None:
    r = ThresholdRule(below=0.8)
    assert [r.update(x) for x in (0.9, 0.8, 0.79, -1.0)] == [False, False, True, True]
    assert r.threshold == 0.8
    assert r.details() == {"direction": "below"}


def test_threshold_with_both_bounds_fires_on_either_side() -> None:
    r = ThresholdRule(above=10, below=2)
    assert [r.update(x) for x in (5, 11, 1, 2, 10)] == [False, True, True, False, False]


def test_threshold_evidence_is_the_last_value() -> None:
    r = ThresholdRule(above=0.1)
    assert math.isnan(r.statistic)
    assert r.update(0.3) is True
    assert r.statistic == 0.3
    assert r.threshold == 0.1
    assert r.n == 1
    assert r.details() == {"direction": "above"}


def test_threshold_reset_restarts_the_count() -> None:
    r = ThresholdRule(above=1.0)
    for x in (0.5, 2.0, 3.0):
        r.update(x)
    assert r.n == 3
    r.reset()
    assert r.n == 0
    assert r.update(0.2) is False
    assert r.n == 1


def test_threshold_requires_a_bound() -> None:
    with pytest.raises(ValueError, match="needs 'above' or 'below'; set one of them"):
        ThresholdRule()


def test_threshold_state_round_trip_through_json() -> None:
    r = ThresholdRule(above=0.5, below=-0.5)
    empty = restore(orjson.loads(orjson.dumps(r.state())))
    assert isinstance(empty, ThresholdRule)
    assert math.isnan(empty.statistic)
    for x in (0.1, 0.9, 0.2):
        r.update(x)
    s = orjson.loads(orjson.dumps(r.state()))
    assert s == {
        "kind": "threshold",
        "above": 0.5,
        "below": -0.5,
        "last": 0.2,
        "count": 3,
        "side": "above",
    }
    r2 = restore(s)
    assert (r2.n, r2.statistic, r2.threshold) == (3, 0.2, 0.5)
    for x in (0.0, 0.6, -0.6, 0.4):
        assert r2.update(x) == r.update(x)
    assert r2.state() == r.state()
