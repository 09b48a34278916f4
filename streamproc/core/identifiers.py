"""Identifier-like text features: told apart from categories before they are watched as such.

A categorical drift test keeps every category it meets (up to its cap), so a feature whose
values are nearly all distinct -- e-mail addresses, user or session ids -- would turn the
monitor's state into a list of identifiers, and the test itself means little (hundreds of cells
of one count each). :class:`IdentifierScreen` looks at the first ``probe`` values of each text
feature before any detector sees them, keeping only a 16-bit bucket of each (never the value):
when at least ``distinct`` of them fall in distinct buckets the feature is identifier-like,
and is from then on either watched through its values' lengths (a numeric signal
``feature:<name>#length``: a change of id format or of an empty-string rate still shows) or
skipped, each skipped value counted. Otherwise it is a category and goes to its categorical
detector from the next value on.

Why these numbers: with ``probe=500`` and ``distinct=0.95``, 500 values of a uniform
categorical feature of 1,000 categories hold about 393 distinct ones (79 %: a category), of
5,000 equally likely ids about 476 (95 %: an identifier), and e-mails or ids that rarely repeat
within 500 events nearly 500. 16-bit buckets merge about 2 of 500 distinct values (birthday
bound 500**2 / 2**17), which moves the fraction by 0.4 %. The values seen while probing go to
no detector: a categorical feature's reference starts ``probe`` values later.

Examples
--------
>>> screen = IdentifierScreen(probe=10, distinct=0.9)
>>> [screen.check("feature:email", f"user{i}@example.com") for i in range(11)][-2:]
[None, ('feature:email#length', 18)]
>>> [screen.check("feature:country", c) for c in ["fr", "de", "it"] * 4][-2:]
[('feature:country', 'de'), ('feature:country', 'it')]
>>> screen.verdicts
{'feature:email': 'identifier', 'feature:country': 'category'}
>>> again = IdentifierScreen(probe=10, distinct=0.9)
>>> again.load(screen.state())
>>> again.state() == screen.state()
True
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

__all__ = ["IDENTIFIER_MODES", "LENGTH_SUFFIX", "IdentifierScreen"]

# What happens to an identifier-like feature: its lengths are watched, it is skipped, or (the
# old behaviour, for those who want it) it is watched as a category like any other.
IDENTIFIER_MODES = ("length", "skip", "watch")
LENGTH_SUFFIX = "#length"
Verdict = Literal["category", "identifier"]


def _bucket(value: str) -> int:
    """A 16-bit bucket of ``value``: enough to count distinct values, far too few to keep them."""
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=2).digest(), "big")


class IdentifierScreen:
    """Per text feature of one model: probing, then a category or an identifier.

    Parameters
    ----------
    probe
        Values of a feature looked at before deciding (they go to no detector).
    distinct
        Fraction of distinct values (in 16-bit buckets) from which the feature is an identifier.
    mode
        ``length`` (watch the lengths of an identifier's values), ``skip`` (count and drop them)
        or ``watch`` (no screening: every text feature is a category).

    Raises
    ------
    ValueError
        On ``probe < 10``, ``distinct`` outside (0, 1] or an unknown mode.
    """

    def __init__(self, probe: int = 500, distinct: float = 0.95, mode: str = "length") -> None:
        whole = isinstance(probe, int) and not isinstance(probe, bool)
        number = isinstance(distinct, int | float) and not isinstance(distinct, bool)
        if not (whole and probe >= 10 and number and 0.0 < distinct <= 1.0) or (
            mode not in IDENTIFIER_MODES
        ):
            raise ValueError(
                f"identifier screen needs probe >= 10, 0 < distinct <= 1 and a mode in "
                f"{IDENTIFIER_MODES}; got probe={probe}, distinct={distinct}, mode={mode!r}."
            )
        self.probe = probe
        self.distinct = distinct
        self.mode = mode
        self.verdicts: dict[str, Verdict] = {}
        self._probing: dict[str, list[int]] = {}  # signal -> buckets seen so far
        self.skipped: dict[str, int] = {}  # identifier values dropped (mode "skip"), per signal

    def check(self, signal: str, value: str) -> tuple[str, Any] | None:
        """What to watch for this value: ``(signal, value)``, or None (probing or skipped)."""
        if self.mode == "watch":
            return signal, value
        verdict = self.verdicts.get(signal)
        if verdict is None:
            verdict = self._probe(signal, value)
            if verdict is None:
                return None
        if verdict == "category":
            return signal, value
        if self.mode == "skip":
            self.skipped[signal] = self.skipped.get(signal, 0) + 1
            return None
        return signal + LENGTH_SUFFIX, len(value)

    def _probe(self, signal: str, value: str) -> Verdict | None:
        seen = self._probing.setdefault(signal, [])
        if len(seen) < self.probe:
            seen.append(_bucket(value))
            return None
        verdict: Verdict = (
            "identifier" if len(set(seen)) >= self.distinct * len(seen) else "category"
        )
        self.verdicts[signal] = verdict
        del self._probing[signal]
        return verdict

    def state(self) -> dict[str, Any]:
        """Verdicts, probes under way (buckets only) and skip counts; the parameters are the
        policy's, not the state's."""
        return {
            "verdicts": dict(self.verdicts),
            "probing": {k: list(v) for k, v in self._probing.items()},
            "skipped": dict(self.skipped),
        }

    def load(self, s: dict[str, Any]) -> None:
        """Take back what :meth:`state` saved."""
        self.verdicts = dict(s["verdicts"])
        self._probing = {k: list(v) for k, v in s["probing"].items()}
        self.skipped = dict(s["skipped"])
