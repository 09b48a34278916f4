"""How the identifier screen classifies text features of known cardinality.

    python bench/identifiers.py [--seeds N]

For each kind of feature, the share of seeds on which :class:`IdentifierScreen` (default
policy: 500 values probed, 95 % distinct) calls it identifier-like. Categories should never be
identifiers, ids and e-mails always; uniform values of about 5,000 categories are the boundary.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable

from streamproc.core.identifiers import IdentifierScreen

Gen = Callable[[random.Random], str]


def identifier_share(gen: Gen, seeds: int) -> float:
    calls = 0
    for seed in range(seeds):
        rng = random.Random(seed)
        screen = IdentifierScreen()
        for _ in range(screen.probe + 1):
            screen.check("feature:f", gen(rng))
        calls += screen.verdicts["feature:f"] == "identifier"
    return calls / seeds


def uniform(k: int) -> Gen:
    return lambda r: f"c{r.randrange(k)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=200)
    seeds = ap.parse_args().seeds
    kinds: list[tuple[str, Gen]] = [
        (f"uniform, {k:,} categories", uniform(k))
        for k in (10, 100, 1000, 2000, 5000, 10_000, 100_000)
    ]
    kinds.append(("Pareto(1) categories", lambda r: f"c{int(r.paretovariate(1.0))}"))
    kinds.append(("e-mail addresses", lambda r: f"user{r.randrange(10**9)}@example.org"))
    print(f"{'feature':<28} identifier-like (share of {seeds} seeds)")
    for name, gen in kinds:
        print(f"{name:<28} {identifier_share(gen, seeds):.2f}")


if __name__ == "__main__":
    main()
