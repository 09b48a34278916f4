"""``streamproc simulate``: an inference server on a drifting world, live on Kafka.

Built on the client SDK like any user's server: it serves a river model on a world of
:mod:`streamproc.sim.loop` (drift schedule documented there), logs each prediction with
:class:`~streamproc.client.PredictionLogger`, sends each label ``lag`` events later with
:class:`~streamproc.client.LabelLogger`, and hot-swaps to every deployed version through a
:class:`~streamproc.client.DeploymentWatcher`. It prints progress and live accuracy, and ends
with a summary table: accuracy per phase and each drift's delay to deployment, in events and in
wall-clock seconds.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamproc.client import DeploymentWatcher, LabelLogger, PredictionLogger
from streamproc.config import Settings
from streamproc.sim.loop import SCHEDULES, World

__all__ = ["LiveRun", "simulate"]


@dataclass
class LiveRun:
    """What a live simulation saw."""

    stream: str
    events: int = 0
    correct: int = 0
    swaps: list[tuple[int, str, float]] = field(default_factory=list)  # (event, version, wall s)
    phases: dict[str, list[int]] = field(default_factory=dict)  # phase -> [correct, events]
    # (phase, version served) -> [correct, events]: what each version did, whatever the pace
    by_version: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    onset_delays: list[tuple[int, float]] = field(default_factory=list)  # (events, seconds)

    @property
    def accuracy(self) -> float:
        return self.correct / self.events if self.events else float("nan")


def simulate(
    settings: Settings,
    bootstrap: str,
    stream: str = "stagger",
    events: int = 25_000,
    lag: int = 50,
    rate: float = 2000.0,
    model_id: str = "sim",
    seed: int = 1,
    say: Callable[[str], None] = lambda s: None,
    every: int = 1000,
    until_swap: int = 0,
    wait_s: float = 180.0,
    batched: bool = True,
) -> LiveRun:
    """Serve ``events`` events of a world at about ``rate`` per second; see the module docstring.

    ``batched``: the SDK's loggers send batched records (their default); False sends one
    event per record, so that record offsets are the server's event numbers.

    ``until_swap`` > 0: past ``events``, go on until a version deployed after the last drift
    (before ``events``) has served ``until_swap`` events, at a tenth of the pace while none is
    deployed yet; stop anyway at the next drift or after ``wait_s`` more seconds. Then what
    the retrained version does is measured on that many events, however slow the worker was.
    """
    schedule = SCHEDULES[stream]
    world = World(schedule, seed)
    prefix = settings.topic_prefix
    preds = PredictionLogger(bootstrap, prefix, buffer_size=100_000, batched=batched)
    labels = LabelLogger(bootstrap, prefix, buffer_size=100_000, batched=batched)
    watcher = DeploymentWatcher(
        bootstrap, prefix, [model_id], registry_root=settings.registry_dir, from_beginning=False
    ).start()
    watcher.wait_ready(30)
    watcher.serve(model_id, "v0", world.warm_start())
    run = LiveRun(stream)
    due: deque[tuple[int, str, Any]] = deque()
    window: deque[int] = deque(maxlen=every)
    onset_wall: dict[int, float] = {}
    serving = "v0"
    start = time.monotonic()
    last_drift = max((d for d in schedule.drifts if d < events), default=None)
    next_drift = min((d for d in schedule.drifts if d >= events), default=None)
    deadline = start + wait_s
    try:
        for i, feats, y in world:
            if i >= events:
                after = [s[0] for s in run.swaps if last_drift is not None and s[0] >= last_drift]
                if (
                    not until_swap
                    or last_drift is None
                    or (after and i - after[0] >= until_swap)
                    or i == next_drift
                    or time.monotonic() > deadline
                ):
                    break
                if not after:
                    time.sleep(9.0 / rate)  # waiting for the deployment: slow down
            served = watcher.current(model_id)
            assert served is not None
            if served.version != serving:
                serving = served.version
                _swapped(run, i, serving, schedule.drifts, onset_wall, start, say)
            pred = served.model.predict(feats)
            eid = preds.log(model_id, served.version, feats, pred, event_id=f"{model_id}-{i}",
                            ts=time.time())  # fmt: skip
            if i in schedule.drifts:
                onset_wall[i] = time.monotonic()
                say(f"  ~~ event {i}: the world changes ({stream} schedule)")
            hit = int(pred == y)
            _score(run, _phase(i, schedule.drifts), hit, served.version)
            window.append(hit)
            due.append((i + lag, eid, y))
            while due and due[0][0] <= i:
                _, label_eid, label = due.popleft()
                labels.log(model_id, label_eid, label, ts=time.time())
            if (i + 1) % every == 0:
                say(f"events {i + 1:6d}  serving {served.version:<14} accuracy of last "
                    f"{len(window)}: {sum(window) / len(window):6.1%}")  # fmt: skip
            _pace(i + 1, rate, start)
    finally:
        preds.close(10)
        labels.close(10)
        watcher.stop(5)
    return run


def _phase(i: int, drifts: tuple[int, ...]) -> str:
    passed = [d for d in drifts if d <= i]
    return f"after drift at {passed[-1]}" if passed else "before any drift"


def _score(run: LiveRun, phase: str, hit: int, version: str) -> None:
    run.events += 1
    run.correct += hit
    for acc in (
        run.phases.setdefault(phase, [0, 0]),
        run.by_version.setdefault((phase, version), [0, 0]),
    ):
        acc[0] += hit
        acc[1] += 1


def _swapped(
    run: LiveRun,
    i: int,
    version: str,
    drifts: tuple[int, ...],
    onset_wall: dict[int, float],
    start: float,
    say: Callable[[str], None],
) -> None:
    now = time.monotonic()
    run.swaps.append((i, version, now - start))
    passed = [d for d in drifts if d <= i]
    if passed and all(s[0] < passed[-1] for s in run.swaps[:-1]):
        onset = passed[-1]
        run.onset_delays.append((i - onset, now - onset_wall.get(onset, now)))
    say(f"  >> event {i}: the server hot-swapped to {version}")


def _pace(done: int, rate: float, start: float) -> None:
    ahead = done / rate - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)


def summary_lines(run: LiveRun) -> list[str]:
    lines = [f"{'phase':<22} {'accuracy':>9} {'events':>7}"]
    for phase, (right, n) in run.phases.items():
        lines.append(f"{phase:<22} {right / n:9.1%} {n:7d}")
    lines.append(f"{'all':<22} {run.accuracy:9.1%} {run.events:7d}")
    for (phase, version), (right, n) in run.by_version.items():
        lines.append(f"  {phase} served by {version}: {right / n:.1%} of {n}")
    for events, seconds in run.onset_delays:
        lines.append(f"drift -> deployed: {events} events, {seconds:.1f} s")
    lines.append(f"deployments served: {len(run.swaps)}")
    return lines
