"""TCPD's F1 and cover as bench/tcpd.py computes them, against examples worked by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import tcpd


def test_true_positives_use_each_prediction_once() -> None:
    # 0 matches 0; 10 takes 14 (distance 4); 20 takes 16 (distance 4); 40 is 20 away.
    assert tcpd.true_positives({0, 10, 20}, {0, 14, 16, 40}) == 3
    # One prediction between two annotated points serves only one of them.
    assert tcpd.true_positives({10, 12}, {11}) == 1
    # The margin is inclusive: 5 away counts, 6 does not.
    assert tcpd.true_positives({10}, {15}) == 1
    assert tcpd.true_positives({10}, {16}) == 0


def test_f1_by_hand() -> None:
    notes = {"a": [], "b": [10], "c": [50]}
    # Predictions {0, 10}; union {0, 10, 50}: TP = 2 (0, 10) -> precision 2/2 = 1.
    # Recall: a {0}: 1/1, b {0, 10}: 2/2, c {0, 50}: 1/2 -> mean 5/6.
    # F1 = 2 * 1 * 5/6 / (1 + 5/6) = 10/11.
    assert tcpd.f1_score(notes, [10]) == pytest.approx(10 / 11)
    # No prediction: {0}; precision 1/1; recall (1 + 1/2 + 1/2) / 3 = 2/3; F1 = 0.8.
    assert tcpd.f1_score(notes, []) == pytest.approx(0.8)
    # A prediction far from everything only costs precision: 2/3 and recall 5/6 (with 10).
    f1 = 2 * (2 / 3) * (5 / 6) / (2 / 3 + 5 / 6)
    assert tcpd.f1_score(notes, [10, 30]) == pytest.approx(f1)


def test_cover_by_hand() -> None:
    # n = 20; annotator a: no change -> one segment [0, 20); b: change at 10.
    # Predicted change at 5: segments [0, 5), [5, 20).
    # a: [0, 20) best overlap with [5, 20): 15/20 -> covering 20 * 0.75 / 20 = 0.75.
    # b: [0, 10) vs [0, 5): 5/10, vs [5, 20): 5/20 -> 0.5; [10, 20) vs [5, 20): 10/15.
    #    covering (10 * 0.5 + 10 * 2/3) / 20 = 7/12.
    # mean (0.75 + 7/12) / 2 = 2/3.
    assert tcpd.cover_score({"a": [], "b": [10]}, [5], 20) == pytest.approx(2 / 3)
    assert tcpd.cover_score({"a": [], "b": [10]}, [], 20) == pytest.approx(0.75)
    # A perfect prediction covers fully; the start (0) is not a cut.
    assert tcpd.cover_score({"a": [10]}, [0, 10], 20) == pytest.approx(1.0)


def test_segments() -> None:
    assert tcpd.segments([], 4) == [(0, 4)]
    assert tcpd.segments([0, 2, 2, 9], 4) == [(0, 2), (2, 4)]


@pytest.mark.parametrize(
    ("name", "n", "dims"),
    [
        ("AirlinePassengers", 468, 1),
        ("Apple", 622, 2),
        ("Bitcoin", 774, 1),
        ("BrentSpotPrice", 500, 1),
        ("Occupancy", 509, 4),
        ("RunLog", 376, 2),
        ("UKCoalEmploy", 105, 1),
    ],
)
def test_series_are_tcpd_sized_and_annotations_fit(name: str, n: int, dims: int) -> None:
    s = tcpd.load(name)
    assert (s.n, len(s.columns)) == (n, dims)
    assert all(len(col) == n for col in s.values)
    assert all(0 <= t < n for points in s.annotations.values() for t in points)


def test_brent_matches_tcpd_first_values() -> None:
    # TCPD's brent_spot.json starts 23.95, 26.31, 27.35 (2000-01-04, -18, 02-01).
    assert tcpd.load("BrentSpotPrice").values[0][:3] == (23.95, 26.31, 27.35)
