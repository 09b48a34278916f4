"""streamproc simulate: the SDK-based inference server closes the loop through a real worker.

Every assertion is about events, none about the pace: which event the drift was detected on,
which version served which events and how well. The live run's own delay to deployment (in
events and in seconds) depends on how busy the machine is, and is only printed.
"""

from __future__ import annotations

from typing import Any

import pytest

from streamproc.sim.live import simulate, summary_lines

pytestmark = pytest.mark.integration

DRIFT = 10_000
AFTER_SWAP = 2_000  # events the retrained version serves before the run ends


def test_simulated_server_is_retrained_and_hot_swapped_after_a_drift(stack: Any) -> None:
    stack.start_worker()
    requests = stack.reader("retrain-requests")
    run = simulate(
        stack.settings, stack.bootstrap, "stagger", events=13_000, rate=800.0,
        until_swap=AFTER_SWAP, batched=False,  # record offsets are then event numbers
    )  # fmt: skip
    print("\n".join(summary_lines(run)))
    before = run.phases["before any drift"]
    assert before[0] / before[1] > 0.95
    assert run.swaps, "no deployment reached the server"
    first_event, version, _ = run.swaps[0]
    assert first_event > DRIFT and version.startswith("v-")

    # Detected on the drift's own data: the first request was tipped by a record (a label or a
    # prediction, whose offsets are the server's event numbers) within 2500 events of it.
    requests.wait_for(lambda r: bool(r.records), timeout=30, what="a retrain request")
    reqs = [r.json() for r in requests.of(stack.topic("retrain-requests"))]
    assert all(r["source"]["offset"] >= DRIFT for r in reqs if r["source"]), reqs
    tipped = min(r["source"]["offset"] for r in reqs if r["source"])
    assert tipped < DRIFT + 2500, reqs

    # Recovered: the version deployed after the drift is right on the new concept, where the
    # old model is right ~40% of the time; measured on the events each one served.
    by_version = {
        v: acc for (phase, v), acc in run.by_version.items() if phase.endswith(str(DRIFT))
    }
    old = by_version.get("v0")
    # Every version deployed after the drift (the retrain, then its refit once it has answered
    # enough labels of its own): together they served the run's last AFTER_SWAP events.
    new = [acc for v, acc in by_version.items() if v != "v0"]
    served, right = sum(a[1] for a in new), sum(a[0] for a in new)
    assert version in by_version and served >= AFTER_SWAP, by_version
    assert right / served > 0.9, by_version
    if old is not None and old[1] >= 200:
        assert old[0] / old[1] < 0.7, by_version
