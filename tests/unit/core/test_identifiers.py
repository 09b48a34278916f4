"""Identifier-like text features are not watched as categories (issue 16 item 4)."""

from __future__ import annotations

import random

import pytest

from streamproc.core.events import PredictionEvent
from streamproc.core.identifiers import IdentifierScreen
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import PolicyError, load_policy_text

COUNTRIES = ["fr", "de", "it", "es", "pl", "nl", "se", "pt"]


def events(n: int, seed: int = 0) -> list[PredictionEvent]:
    rng = random.Random(seed)
    return [
        PredictionEvent(
            f"e{i}",
            "m",
            "v1",
            float(i),
            rng.choice("AB"),
            {
                "email": f"user{rng.randrange(10**9)}@example.com",
                # Repeating users: 20,000 ids active, so a few repeat within the probe.
                "user_id": f"u-{rng.randrange(20_000):05d}",
                "country": rng.choice(COUNTRIES),
                "income": rng.lognormvariate(10, 1),
            },
        )
        for i in range(n)
    ]


def feed(mon: ModelMonitor, evs: list[PredictionEvent]) -> None:
    for ev in evs:
        mon.on_prediction(ev, None)


def test_identifiers_are_watched_by_length_and_never_stored() -> None:
    mon = ModelMonitor("m")
    evs = events(3000)
    feed(mon, evs)
    signals = set(mon.detectors)
    assert {"feature:email#length", "feature:user_id#length", "feature:country"} <= signals
    assert "feature:email" not in signals and "feature:user_id" not in signals
    assert mon.detectors["feature:country"].kind == "multinomial_cusum"
    assert mon.detectors["feature:email#length"].kind == "rank_cusum"
    assert mon.counts["identifier:feature:email"] == 1
    assert mon.counts["category:feature:country"] == 1
    # The state holds no e-mail and no user id; it does hold the countries (a category).
    snap = mon.snapshot().decode()
    detectors_part = snap[: snap.index('"join"')]
    assert "@example.com" not in detectors_part and "u-0" not in detectors_part
    assert '"fr"' in detectors_part
    # A restored monitor keeps the verdicts: no second probe, the same signals go on.
    again = ModelMonitor.restore(mon.snapshot())
    assert again.screen.verdicts == mon.screen.verdicts
    feed(again, events(10, seed=1))
    assert set(again.detectors) == signals


def test_skip_mode_counts_what_it_drops() -> None:
    book = load_policy_text('[default.drift]\nidentifiers = "skip"\nidentifier_probe = 100\n')
    mon = ModelMonitor("m", book.default)
    feed(mon, events(300))
    assert not any(s.startswith(("feature:email", "feature:user_id")) for s in mon.detectors)
    assert "feature:country" in mon.detectors
    # 300 values: 100 probed, then 200 (from the one that decided) dropped and counted.
    assert mon.counts["identifier_skipped:feature:email"] == 200
    assert mon.screen.skipped["feature:email"] == 200


def test_watch_mode_keeps_the_old_behaviour() -> None:
    book = load_policy_text('[default.drift]\nidentifiers = "watch"\n')
    mon = ModelMonitor("m", book.default)
    feed(mon, events(50))
    assert mon.detectors["feature:email"].kind == "multinomial_cusum"


def test_a_categorical_feature_with_a_thousand_categories_stays_a_category() -> None:
    rng = random.Random(5)
    screen = IdentifierScreen()
    verdict = None
    for _ in range(screen.probe + 1):
        verdict = screen.check("feature:sku", f"sku-{rng.randrange(1000)}")
    assert verdict is not None and verdict[0] == "feature:sku"
    assert screen.verdicts == {"feature:sku": "category"}


@pytest.mark.parametrize(
    "line",
    ['identifiers = "hash"', "identifier_probe = 3", "identifier_distinct = 1.5",
     'identifier_probe = "many"'],
)  # fmt: skip
def test_bad_identifier_settings_are_refused_with_their_name(line: str) -> None:
    with pytest.raises(PolicyError, match="identifier"):
        load_policy_text(f"[default.drift]\n{line}\n")
