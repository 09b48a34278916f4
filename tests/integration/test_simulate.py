"""streamproc simulate: the SDK-based inference server closes the loop through a real worker."""

from __future__ import annotations

from typing import Any

import pytest

from streamproc.simulate import simulate, summary_lines

pytestmark = pytest.mark.integration


def test_simulated_server_is_retrained_and_hot_swapped_after_a_drift(stack: Any) -> None:
    stack.start_worker()
    run = simulate(stack.settings, stack.bootstrap, "stagger", events=13_000, rate=800.0)
    print("\n".join(summary_lines(run)))
    assert run.swaps, "no deployment reached the server"
    first_event, version, _ = run.swaps[0]
    assert first_event > 10_000 and version.startswith("v-")
    delay_events, delay_s = run.onset_delays[0]
    assert delay_events < 2500 and delay_s < 10
    before, after = run.phases["before any drift"], run.phases["after drift at 10000"]
    assert before[0] / before[1] > 0.95
    assert after[0] / after[1] > 0.7  # recovered: the old model is right ~40% of the time here
