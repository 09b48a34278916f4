"""The one check every versioned piece of core state makes before it is restored.

A snapshot written by another version of the code may mean something else; restoring it would
give wrong decisions silently. So each stateful class stamps its state with a format number,
and :func:`check_format` refuses a state with another one, saying what to do.

>>> check_format("rank_cusum", {"format": 1}, 1)
>>> try:
...     check_format("rank_cusum", {"format": 0}, 1)
... except ValueError as exc:
...     print(str(exc)[:43])
rank_cusum state has format 0, not 1; reset
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_format"]


def check_format(what: str, state: dict[str, Any], expected: int) -> None:
    """Raise ValueError unless ``state["format"]`` is ``expected``.

    Parameters
    ----------
    what
        The kind of state, for the message (a detector kind, "error scorer", ...).
    state
        The saved state, a dict with a ``format`` key.
    expected
        The format this code reads.

    Raises
    ------
    ValueError
        The state was written in another format: the message says to reset the worker's state.
    """
    if state.get("format") != expected:
        raise ValueError(
            f"{what} state has format {state.get('format')!r}, not {expected}; reset the "
            "worker's state (new application id) to start from fresh detectors."
        )
