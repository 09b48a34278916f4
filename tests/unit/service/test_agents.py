"""The retrain agent's retry loop, written once for training and for handing a job off."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from streamproc.core.retrain import TrainerError
from streamproc.service import agents


def job() -> Any:
    """What the retry loop reads of a job: the request id, for its log line."""
    return SimpleNamespace(request=SimpleNamespace(request_id="r-1"))


def flaky(errors: list[TrainerError]) -> tuple[list[int], Any]:
    """A trainer raising ``errors`` in turn, then answering "candidate"; and its call count."""
    calls: list[int] = []

    def call(job: Any) -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return "candidate"

    return calls, call


@pytest.fixture(autouse=True)
def no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agents, "retry_delays", lambda: [0.0, 0.0])


def test_transient_failures_are_retried_until_one_succeeds() -> None:
    calls, call = flaky([TrainerError("busy", transient=True)] * 2)
    assert asyncio.run(agents._retrying(call, job())) == "candidate"
    assert len(calls) == 3


def test_a_permanent_failure_is_raised_at_once() -> None:
    calls, call = flaky([TrainerError("bad config")])
    with pytest.raises(TrainerError, match="bad config"):
        asyncio.run(agents._retrying(call, job()))
    assert len(calls) == 1


def test_the_last_transient_failure_is_raised_once_the_retries_are_spent() -> None:
    calls, call = flaky([TrainerError(f"busy {i}", transient=True) for i in range(5)])
    with pytest.raises(TrainerError, match="busy 2"):
        asyncio.run(agents._retrying(call, job()))
    assert len(calls) == 3  # the first try and one per delay
