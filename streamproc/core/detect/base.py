"""What every detector offers: the :class:`Detector` protocol, and the shared state helpers.

Every detector takes one value at a time (``update``), says whether it fired, exposes the
statistic it compares with its threshold, counts the samples it has seen since its last reset,
and turns its whole state into a plain dict (``state``) that
:func:`streamproc.core.detect.registry.restore` turns back into an identical detector. After a
detection the caller reads the evidence, then calls ``reset``.

Examples
--------
>>> fields = ("n", "s")
>>> named_fields("cusum", fields, {"n": 3, "s": 0.5})
{'n': 3, 's': 0.5}
>>> named_fields("cusum", fields, [3, 0.5])  # the positional form written before names
{'n': 3, 's': 0.5}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

__all__ = ["Detector", "named_fields"]


class Detector(Protocol):
    """What every detector offers the trigger policy."""

    kind: ClassVar[str]

    def update(self, x: float) -> bool:
        """Feed one value; return True when a change is detected."""

    def reset(self) -> None:
        """Start afresh after a detection (the caller reads the evidence first)."""

    @property
    def statistic(self) -> float:
        """The current test statistic (compared with :attr:`threshold`)."""

    @property
    def threshold(self) -> float:
        """The value the statistic must reach to fire."""

    @property
    def n(self) -> int:
        """Samples seen since the last reset."""

    def details(self) -> dict[str, Any]:
        """Extra evidence for a retrain request (reference estimates, window sizes)."""

    def state(self) -> dict[str, Any]:
        """Parameters and state as JSON-able primitives; ``registry.restore`` inverts it."""


def named_fields(what: str, names: Sequence[str], saved: Any) -> dict[str, Any]:
    """A snapshot's fields by name, from their named form or the older positional list.

    Snapshots of the CUSUMs were positional lists until their fields got names; a state saved
    by that code still restores: a list is read in the order ``names`` gives.

    Parameters
    ----------
    what
        The detector kind, for the message.
    names
        The field names, in the order the positional form listed them.
    saved
        A dict with exactly these keys, or a list or tuple with one value per name.

    Raises
    ------
    ValueError
        Neither form, or fields missing or unknown: the state was not written by this detector.
    """
    if isinstance(saved, dict):
        if set(saved) != set(names):
            raise ValueError(
                f"{what} state has fields {sorted(saved)}, expected {sorted(names)}; reset the "
                "worker's state (new application id) to start from fresh detectors."
            )
        return dict(saved)
    if isinstance(saved, list | tuple) and len(saved) == len(names):
        return dict(zip(names, saved, strict=True))
    raise ValueError(
        f"{what} state holds {saved!r}, not the {len(names)} fields {list(names)}; reset the "
        "worker's state (new application id) to start from fresh detectors."
    )
