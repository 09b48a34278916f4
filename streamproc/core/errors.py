"""Task-aware errors: what a prediction's error is, once its label is in.

A model is a classifier or a regressor, and its error means different things: 0/1 for a class
(right or wrong), absolute (or squared) for a quantity. Types must also agree: a label sent as
the string ``"1"`` for the numeric prediction ``1`` is the same answer, while the label
``"cat"`` for the prediction ``3.5`` is no answer at all. This module decides both, per pair
and per model, with no clock and a state that round-trips through JSON.

Label and prediction types (:func:`comparable`)
    - numbers and numeric strings (``"0"``, ``"-2.5"``, ``"1e3"``) compare as numbers, whichever
      side is the string; two numeric strings too;
    - two other strings compare as class names, exactly;
    - booleans compare with booleans, with ``"true"``/``"false"`` (any case) and with 0/1;
    - anything else (a number against a non-numeric string, a boolean against 2, a class name
      for a regression model) is a **type mismatch**: the pair is not scored, and the monitor
      sends the label to dead-letters with reason ``label_type_mismatch``.

Task (:class:`TaskInference`)
    Declared in the policy (``task = "classification"`` or ``"regression"``), or inferred from
    the model's first joined pairs, never from one value. After at least
    :data:`MIN_EVIDENCE` (200) comparable pairs:

    1. at least half of them carry class names or booleans: **classification**;
    2. at least 10% carry a non-integral number: **regression**;
    3. otherwise (integral numbers) by the labels' distinct values: the Good-Turing estimate of
       the chance that the next label is a value never seen, ``f1 / n`` (``f1``: values seen
       exactly once), is at least 0.5 (or more than :data:`MAX_DISTINCT` distinct values):
       **regression** (prices in whole units, counts over a wide range); at most 0.05: the
       labels come from a closed set, **classification**; in between, wait for more;
    4. at :data:`MAX_EVIDENCE` (1000) pairs the decision is forced: regression if
       ``f1 / n >= 0.2`` or any non-integral number was seen, else classification, and the
       log says the case was ambiguous (declare the task in the policy).

    Integer labels from a small set with integer predictions (rounded ages, small counts) are
    indistinguishable from classes and are scored as classes: declare ``task = "regression"``.

Until the task is known
    Nothing is scored: the pairs wait (at most :data:`MAX_EVIDENCE`, a few dozen bytes each),
    and once the task is decided they are scored in arrival order, so the error detector sees
    the same sequence as if the task had been declared. A pair that turns out not to fit the
    decided task (a class name for a regression model) becomes a mismatch then.

Examples
--------
>>> comparable(1, "1"), comparable("cat", "cat"), comparable(True, 1)
(Pair(prediction=1, label=1, numbers=True), Pair(prediction='cat', label='cat', numbers=False), \
Pair(prediction=True, label=True, numbers=False))
>>> comparable(3.5, "cat")[:41]
"label 'cat' (a string) cannot be compared"
>>> error_value(comparable(250000, 251000), "regression")
1000.0
>>> error_value(comparable(250000, 251000), "classification")
1.0
>>> scorer = ErrorScorer()  # task inferred
>>> out = [scorer.add(f"e{i}", "v1", 250000 + i, 251000 + i, float(i)) for i in range(200)]
>>> scorer.task, len(out[-1].ready), out[-1].ready[0].error
('regression', 200, 1000.0)
>>> ErrorScorer.from_state(scorer.state(), "auto", "absolute").state() == scorer.state()
True
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from streamproc.core.stateformat import check_format

__all__ = [
    "LOSSES",
    "MAX_DISTINCT",
    "MAX_EVIDENCE",
    "MIN_EVIDENCE",
    "TASKS",
    "ErrorScorer",
    "Pair",
    "Scored",
    "ScoredError",
    "TaskInference",
    "comparable",
    "error_value",
    "errors_of",
    "infer_task",
]

log = logging.getLogger(__name__)

TASKS: Final = ("auto", "classification", "regression")
LOSSES: Final = ("absolute", "squared")
MIN_EVIDENCE: Final = 200
MAX_EVIDENCE: Final = 1000
MAX_DISTINCT: Final = 512
STATE_FORMAT: Final = 2  # 2: named fields; 1 (positional lists) is still read

# A JSON-ish decimal number, nothing else: no spaces, no "nan", "inf", "1_000" or "0x10".
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLS: Final = {"true": True, "false": False}


class Pair(NamedTuple):
    """A prediction and its label made comparable: two numbers, or two class values."""

    prediction: Any
    label: Any
    numbers: bool


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def as_number(v: object) -> int | float | None:
    """A finite number from a number or a numeric string, else None.

    >>> as_number("12"), as_number("-2.5e1"), as_number(" 1"), as_number("nan"), as_number(True)
    (12, -25.0, None, None, None)
    """
    if isinstance(v, int | float) and not isinstance(v, bool):
        return v if math.isfinite(v) else None
    if isinstance(v, str) and _NUMBER.fullmatch(v):
        if len(v) <= 30 and v.lstrip("+-").isdigit():  # int() refuses 4300+ digits
            return int(v)
        f = float(v)
        return f if math.isfinite(f) else None
    return None


def _as_bool(v: object) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        b = _BOOLS.get(v.lower())
        if b is not None:
            return b
    x = as_number(v)
    if x is not None and x in (0, 1):
        return bool(x)
    return None


def _short(v: object) -> str:
    """``repr`` cut to 60 characters: a giant label must not make a giant message."""
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _kind(v: object) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if _is_number(v):
        return "a number"
    if isinstance(v, str):
        return "a numeric string" if as_number(v) is not None else "a string"
    return type(v).__name__


def comparable(prediction: Any, label: Any) -> Pair | str:
    """The pair made comparable, or a sentence saying why it cannot be (a type mismatch)."""
    if isinstance(prediction, bool) or isinstance(label, bool):
        p, y = _as_bool(prediction), _as_bool(label)
        if p is not None and y is not None:
            return Pair(p, y, False)
        why = 'a boolean only compares with a boolean, 0/1 or "true"/"false"'
    elif isinstance(prediction, str) and isinstance(label, str):
        p2, y2 = as_number(prediction), as_number(label)
        if p2 is not None and y2 is not None:
            return Pair(p2, y2, True)
        return Pair(prediction, label, False)
    else:
        p2, y2 = as_number(prediction), as_number(label)
        if p2 is not None and y2 is not None:
            return Pair(p2, y2, True)
        why = "a number only compares with a number or a numeric string"
    return (
        f"label {_short(label)} ({_kind(label)}) cannot be compared with prediction "
        f"{_short(prediction)} "
        f"({_kind(prediction)}): {why}; send labels of the predictions' type (numbers or numeric "
        "strings for numeric predictions, the same class names for class predictions). "
        "This label was not scored."
    )


# A regression error is at most this: the detectors and watches sum errors and their squares,
# and a sum that overflows to infinity is written to a snapshot as null (JSON has no infinity),
# which the restored state cannot add to. Any error this large is a change, whatever its size.
MAX_ERROR: Final = 1e150


def error_value(pair: Pair, task: str, loss: str = "absolute") -> float | None:
    """The error of one comparable pair: 0/1 for classes, absolute/squared for quantities
    (at most :data:`MAX_ERROR`).

    None when the pair does not fit the task (class names for a regression model).

    >>> error_value(Pair(3, 5, True), "regression"), error_value(Pair(1e200, 0, True), "regression")
    (2.0, 1e+150)
    """
    if task == "regression":
        if not pair.numbers:
            return None
        return quantity_error(float(pair.prediction) - float(pair.label), loss == "squared")
    return 0.0 if pair.prediction == pair.label else 1.0


def quantity_error(d: float, squared: bool) -> float:
    """A regression error from the difference ``d`` (prediction - label), at most
    :data:`MAX_ERROR`."""
    e = d * d if squared else abs(d)
    return e if e <= MAX_ERROR else MAX_ERROR


_NOT_A_QUANTITY = (
    "label {label} and prediction {prediction} are not both numbers, and the model's task "
    'is regression ({why}); send numeric labels, or declare task = "classification" in the '
    "policy if the model predicts classes. This label was not scored."
)


# --------------------------------------------------------------------------- task inference


class TaskInference:
    """Evidence for a model's task from its comparable pairs (rules in the module docstring)."""

    def __init__(self) -> None:
        self.n = 0
        self.classes = 0  # pairs of class names or booleans
        self.fractional = 0  # pairs with a non-integral number
        self.values: dict[str, int] = {}  # integral labels: how often each was seen
        self.overflow = False  # more than MAX_DISTINCT distinct integral labels

    def observe(self, pair: Pair) -> None:
        self.n += 1
        if not pair.numbers:
            self.classes += 1
            return
        p, y = float(pair.prediction), float(pair.label)
        if not (p.is_integer() and y.is_integer()):
            self.fractional += 1
            return
        key = str(int(y))
        if key in self.values or len(self.values) < MAX_DISTINCT:
            self.values[key] = self.values.get(key, 0) + 1
        else:
            self.overflow = True

    def decide(self, force: bool = False) -> tuple[str, str] | None:
        """``(task, why)`` once the evidence is consistent (or ``force``), else None."""
        n = self.n
        if n == 0 or (n < MIN_EVIDENCE and not force):
            return None
        if self.classes * 2 >= n:
            return "classification", f"{self.classes} of {n} labels are class names or booleans"
        if self.fractional * 10 >= n:
            return "regression", f"{self.fractional} of {n} pairs carry non-integral numbers"
        m = sum(self.values.values())
        singles = sum(1 for c in self.values.values() if c == 1)
        new = singles / m if m else 0.0
        seen = f"{len(self.values)} distinct integer labels in {m}, {singles} seen once"
        if self.overflow or new >= 0.5:
            return "regression", f"{seen}: most labels are new values, a quantity"
        if new <= 0.05:
            return "classification", f"{seen}: labels come from a closed set of classes"
        if n >= MAX_EVIDENCE or force:
            task = "regression" if new >= 0.2 or self.fractional else "classification"
            return task, f"{seen}: ambiguous, decided at {n} pairs; declare the task in the policy"
        return None

    def state(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "classes": self.classes,
            "fractional": self.fractional,
            "values": dict(self.values),
            "overflow": self.overflow,
        }

    @classmethod
    def from_state(cls, s: dict[str, Any] | Sequence[Any]) -> TaskInference:
        """From :meth:`state`, or the positional list format 1 saved."""
        t = cls()
        if not isinstance(s, dict):
            s = dict(zip(("n", "classes", "fractional", "values", "overflow"), s, strict=True))
        t.n, t.classes, t.fractional = s["n"], s["classes"], s["fractional"]
        t.values, t.overflow = dict(s["values"]), s["overflow"]
        return t


def infer_task(pairs: Iterable[tuple[Any, Any]]) -> str:
    """The task of ``(prediction, label)`` pairs, decided on all of them (forced if ambiguous).

    For a batch such as a retrain's examples, when the monitor has not decided yet.

    >>> infer_task([(250000 + i, 251000 + i) for i in range(50)])
    'regression'
    >>> infer_task([(i % 2, "1") for i in range(50)])
    'classification'
    """
    inference = TaskInference()
    for p, y in pairs:
        pair = comparable(p, y)
        if isinstance(pair, Pair):
            inference.observe(pair)
    decided = inference.decide(force=True)
    return decided[0] if decided else "classification"


def errors_of(
    pairs: Iterable[tuple[Any, Any]], task: str, loss: str = "absolute"
) -> tuple[list[float], int]:
    """Errors of the comparable pairs under ``task``, and how many pairs were not comparable."""
    errs: list[float] = []
    bad = 0
    for p, y in pairs:
        pair = comparable(p, y)
        e = error_value(pair, task, loss) if isinstance(pair, Pair) else None
        if e is None:
            bad += 1
        else:
            errs.append(e)
    return errs, bad


# --------------------------------------------------------------------------- per-model scoring


@dataclass(frozen=True, slots=True)
class ScoredError:
    """One scored label: which event, which version answered, the error, the label's time."""

    event_id: str
    version: str
    error: float
    label_ts: float


@dataclass(frozen=True, slots=True)
class Scored:
    """What one joined pair produced: errors ready to score (maybe held ones), and mismatches."""

    ready: tuple[ScoredError, ...] = ()
    # (event id, what was wrong) per pair that cannot be scored: this one, or held ones
    mismatches: tuple[tuple[str, str], ...] = ()
    comparable: bool = True  # False: this pair's types do not match (it is in mismatches)


class HeldPair(NamedTuple):
    """A joined pair held until the task is known, with what scoring it needs."""

    event_id: str
    version: str
    prediction: Any
    label: Any
    numbers: bool  # both sides are numbers (Pair.numbers)
    ts: float  # event time of the label, s


class ErrorScorer:
    """A model's task (declared or inferred) and the errors of its joined pairs.

    Parameters
    ----------
    task
        ``"auto"`` (infer, see the module docstring), ``"classification"`` or ``"regression"``.
    loss
        Regression error: ``"absolute"`` or ``"squared"``.

    Raises
    ------
    ValueError
        For an unknown task or loss.
    """

    def __init__(self, task: str = "auto", loss: str = "absolute") -> None:
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}.")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}.")
        self.declared = task
        self.loss = loss
        self.inferred: str | None = None
        self.why = "declared in the policy" if task != "auto" else ""
        self.inference = TaskInference()
        self.held: list[HeldPair] = []  # pairs waiting for the task to be known

    @property
    def task(self) -> str | None:
        """The task, once declared or decided; None while the evidence is gathered."""
        return self.declared if self.declared != "auto" else self.inferred

    def add(self, event_id: str, version: str, prediction: Any, label: Any, ts: float) -> Scored:
        """Score one joined pair (or hold it until the task is known)."""
        pair = comparable(prediction, label)
        if not isinstance(pair, Pair):
            return Scored(mismatches=((event_id, f"event {event_id!r}: {pair}"),), comparable=False)
        task = self.task
        if task is not None:
            e = error_value(pair, task, self.loss)
            if e is not None:  # the usual case, without the held pairs' machinery
                return Scored((ScoredError(event_id, version, e, ts),))
            scored = self._score([HeldPair(event_id, version, *pair, ts)], task)
            return Scored(scored.ready, scored.mismatches, not scored.mismatches)
        self.inference.observe(pair)
        self.held.append(HeldPair(event_id, version, *pair, ts))
        decided = self.inference.decide(force=len(self.held) >= MAX_EVIDENCE)
        if decided is None:
            return Scored()
        self.inferred, self.why = decided
        log.info("task inferred: %s (%s)", self.inferred, self.why)
        held, self.held = self.held, []
        self.inference = TaskInference()  # the evidence is no longer needed
        return self._score(held, self.inferred)

    def _score(self, items: list[HeldPair], task: str) -> Scored:
        ready: list[ScoredError] = []
        bad: list[tuple[str, str]] = []
        for event_id, version, p, y, numbers, ts in items:
            e = error_value(Pair(p, y, numbers), task, self.loss)
            if e is None:
                why = "declared" if self.declared != "auto" else f"inferred: {self.why}"
                msg = _NOT_A_QUANTITY.format(label=_short(y), prediction=_short(p), why=why)
                bad.append((event_id, f"event {event_id!r}: {msg}"))
            else:
                ready.append(ScoredError(event_id, version, e, ts))
        return Scored(tuple(ready), tuple(bad))

    def state(self) -> dict[str, Any]:
        """The inferred task, its evidence and the held pairs. ``task`` also names the declared
        task and loss the errors were scored under: provenance, which :meth:`from_state` only
        compares with the policy's, never takes as configuration."""
        return {
            "format": STATE_FORMAT,
            "task": {
                "declared": self.declared,
                "loss": self.loss,
                "inferred": self.inferred,
                "why": self.why,
            },
            "inference": self.inference.state(),
            "held": [h._asdict() for h in self.held],
        }

    @classmethod
    def from_state(cls, s: dict[str, Any], task: str, loss: str) -> ErrorScorer | None:
        """Rebuild from :meth:`state` under the policy's ``task`` and ``loss``.

        None when the state was scored under another declared task or loss: its errors (and a
        detector fed with them) mean something else, so scoring starts afresh.

        Raises
        ------
        ValueError
            For a state of another format, or an unknown ``task`` or ``loss``.
        """
        if s.get("format") == 1:  # positional lists
            s = {**s, "task": dict(zip(("declared", "loss", "inferred", "why"), s["task"],
                                       strict=True))}  # fmt: skip
        else:
            check_format("error scorer", s, STATE_FORMAT)
        saved = s["task"]
        sc = cls(task, loss)
        if (saved["declared"], saved["loss"]) != (task, loss):
            return None
        sc.inferred, sc.why = saved["inferred"], saved["why"]
        sc.inference = TaskInference.from_state(s["inference"])
        sc.held = [HeldPair(**h) if isinstance(h, dict) else HeldPair(*h) for h in s["held"]]
        return sc
