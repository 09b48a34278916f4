"""Champion/challenger gate: a candidate goes live only if it is not worse than the current model.

Both are scored on a holdout the candidate never trained on: every ``every``-th example of the
most recent ones, so the holdout reflects the world as it is now. The current model is scored by
the predictions it actually made in production on those examples (any language, no artifact
needed); the candidate by predicting them.

Examples
--------
>>> examples = [Example({"x": i}, i % 2, i % 2, "v1", float(i)) for i in range(100)]
>>> train_set, holdout = split_holdout(examples, every=5, recent=50)
>>> len(train_set), len(holdout)
(90, 10)
>>> len(split_holdout(examples[:80], every=5, recent=500, min_holdout=30)[1])
30
>>> decide(candidate_error=0.10, current_error=0.30, n=200, margin=0.0).promote
True
>>> decide(candidate_error=0.35, current_error=0.30, n=200, margin=0.0).promote
False
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from streamproc.core.errors import errors_of, infer_task
from streamproc.core.example import Example
from streamproc.core.policy import MIN_HOLDOUT

__all__ = ["MIN_HOLDOUT", "GateDecision", "current_error", "decide", "split_holdout"]

# MIN_HOLDOUT (30) is the smallest holdout the gate judges on: with 30 examples a candidate at
# 10% error and a current model at 40% are told apart with p < 0.01 (two-proportion test);
# with 14 they are not reliably. A change-based request waits for ``min_train_examples +
# MIN_HOLDOUT`` post-change examples, so the trainer still gets ``min_train_examples``.


@dataclass(frozen=True, slots=True)
class GateDecision:
    promote: bool
    candidate_error: float
    current_error: float | None
    n_holdout: int
    margin: float
    why: str


def split_holdout(
    examples: Sequence[Example], every: int = 5, recent: int = 500, min_holdout: int = 0
) -> tuple[list[Example], list[Example]]:
    """Hold out every ``every``-th of the last ``recent`` examples; train on the rest.

    When that gives fewer than ``min_holdout`` examples, the holdout is ``min_holdout``
    examples evenly spaced over the recent ones (at most half of them): a gate judging on 14
    examples decides by chance.
    """
    start = max(len(examples) - recent, 0)
    m = len(examples) - start
    h = holdout_size(len(examples), every, recent, min_holdout)
    picks = {start + (j + 1) * m // h - 1 for j in range(h)} if h else set()
    train: list[Example] = []
    holdout: list[Example] = []
    for i, ex in enumerate(examples):
        (holdout if i in picks else train).append(ex)
    return train, holdout


def holdout_size(n: int, every: int = 5, recent: int = 500, min_holdout: int = 0) -> int:
    """How many of ``n`` examples :func:`split_holdout` holds out (same arguments)."""
    m = min(n, recent)
    return max(m // every, min(min_holdout, m // 2))


def current_error(
    holdout: Sequence[Example], version: str, task: str | None = None
) -> tuple[float | None, int]:
    """Error of the predictions the deployed ``version`` made on the holdout, and how many.

    ``task`` (the model's, :mod:`streamproc.core.errors`; inferred from these pairs if None)
    decides 0/1 or absolute errors. Pairs whose types do not match are left out, never scored
    as errors (the monitor keeps them out of the examples in the first place).
    """
    pairs = [
        (ex.prediction, ex.label)
        for ex in holdout
        if ex.version == version and ex.prediction is not None
    ]
    errs, _ = errors_of(pairs, task or infer_task(pairs))
    return (sum(errs) / len(errs) if errs else None), len(errs)


def decide(
    candidate_error: float, current_error: float | None, n: int, margin: float = 0.0
) -> GateDecision:
    """Promote when the candidate's error is at most ``current - margin``.

    With no production predictions of the current version on the holdout there is nothing to
    compare with, and the candidate is promoted; the decision says so.
    """
    if current_error is None:
        why = "no baseline: the current version made none of the holdout predictions"
        return GateDecision(True, candidate_error, None, n, margin, why)
    better = candidate_error <= current_error - margin
    op = "<=" if better else ">"
    why = (
        f"candidate error {candidate_error:.4f} {op} current {current_error:.4f} - {margin} on {n}"
    )
    return GateDecision(better, candidate_error, current_error, n, margin, why)
