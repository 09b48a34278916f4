"""The training window: a model's most recent labelled examples, bounded in count and in bytes.

A model with wide inputs sends large examples (300 numeric features are ~8 KB of JSON each, 10k
are ~300 KB), and the window is part of the model's snapshot, which must fit a Kafka record. So
the window keeps at most ``max_count`` examples *and* at most ``max_bytes`` of them (their JSON
size), dropping the oldest first. Dropping to stay within the count is the window sliding;
dropping to stay within the bytes is a loss of training data, counted and logged as a warning.

Examples
--------
>>> seen = []
>>> w = TrainingWindow(max_count=3, max_bytes=100, count=seen.append, name="m1")
>>> for i in range(4):
...     w.append(Example({"x": i}, 1, 1, "v1", float(i)))
>>> [ex.ts for ex in w], len(seen)  # slid by count: not a loss
([1.0, 2.0, 3.0], 0)
>>> w.append(Example({"x": "a" * 60}, 1, 1, "v1", 4.0))  # too many bytes: older examples go
>>> [ex.ts for ex in w], seen
([4.0], ['window_evicted_for_bytes', 'window_evicted_for_bytes'])
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson

from streamproc.core.example import Example

__all__ = ["EVICTED_FOR_BYTES", "TrainingWindow"]

log = logging.getLogger(__name__)

EVICTED_FOR_BYTES = "window_evicted_for_bytes"


def example_bytes(example: Example) -> int:
    """Bytes an example takes in the snapshot (its JSON row and a separator)."""
    return len(orjson.dumps(example.row())) + 1


class TrainingWindow(deque[Example]):
    """A deque of :class:`~streamproc.core.example.Example`, oldest first.

    Parameters
    ----------
    max_count
        Examples kept at most (the policy's ``training_window``).
    max_bytes
        Bytes kept at most (the policy's ``training_window_bytes``); JSON size of the examples.
    count
        Called with :data:`EVICTED_FOR_BYTES` for each example dropped to stay within
        ``max_bytes`` (the monitor's counter).
    name
        Whose window it is (a model id), for the warnings.
    """

    def __init__(
        self,
        max_count: int,
        max_bytes: int,
        count: Callable[[str], None] | None = None,
        name: str = "",
    ) -> None:
        super().__init__()
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.evicted_for_bytes = 0
        self._sizes: deque[int] = deque()
        self._count = count
        self._name = name

    def append(self, example: Example) -> None:
        self._append_sized(example, example_bytes(example))

    def extend_sized(self, examples: Sequence[Example], sizes: Sequence[int]) -> None:
        """:meth:`append` of each of ``examples``, whose :func:`example_bytes` are ``sizes``:
        the same examples, sizes and counters (at once when no byte limit is reached)."""
        total = sum(sizes)
        if self.nbytes + total > self.max_bytes:
            for example, size in zip(examples, sizes, strict=True):
                self._append_sized(example, size)
            return
        # No step would drop for bytes: each append past max_count drops the oldest one.
        super().extend(examples)
        self._sizes.extend(sizes)
        self.nbytes += total
        for _ in range(len(self) - self.max_count):
            self._drop_oldest()

    def _append_sized(self, example: Example, size: int) -> None:
        super().append(example)
        self._sizes.append(size)
        self.nbytes += size
        while len(self) > self.max_count:
            self._drop_oldest()
        self.shrink_to(self.max_bytes)

    def extend(self, examples: Iterable[Example]) -> None:
        for ex in examples:
            self.append(ex)

    def capacity(self) -> int:
        """How many examples the window holds at most: ``max_count``, or fewer where examples
        of the current mean size reach ``max_bytes`` first."""
        if not self or self.nbytes <= 0:
            return self.max_count
        return max(1, min(self.max_count, int(self.max_bytes * len(self) / self.nbytes)))

    def rows(self) -> list[list[Any]]:
        """The examples as the snapshot keeps them (:meth:`Example.row`), oldest first."""
        return [ex.row() for ex in self]

    def load_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Append examples saved by :meth:`rows`: the newest that fit the limits stay."""
        self.extend(Example.from_row(row) for row in rows)

    def shrink_to(self, max_bytes: int) -> int:
        """Drop the oldest examples until at most ``max_bytes`` are held; how many went."""
        evicted = 0
        while self and self.nbytes > max_bytes:
            self._drop_oldest()
            evicted += 1
            if self._count is not None:
                self._count(EVICTED_FOR_BYTES)
        if evicted:
            before = self.evicted_for_bytes
            self.evicted_for_bytes = after = before + evicted
            if len(str(after)) > len(str(before)):  # the 1st, 10th, 100th, ... eviction
                log.warning(
                    "%s: training window over %d bytes: %d examples dropped so far (counted as "
                    "%s; retrains learn from fewer examples); raise training_window_bytes in the "
                    "policy or send fewer or shorter features",
                    self._name or "training window",
                    max_bytes,
                    after,
                    EVICTED_FOR_BYTES,
                )
        return evicted

    def _drop_oldest(self) -> None:
        self.popleft()
        self.nbytes -= self._sizes.popleft()
