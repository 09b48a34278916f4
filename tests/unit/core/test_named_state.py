"""Named state (issue 15, item 7): examples and snapshot fields by name, configuration from the
policy at restore time, and snapshots written by the code before the change still restore.

``data/monitor_snapshot_9e73bd5.json`` was captured by running the code at 9e73bd5 (before
this change): the snapshot of a monitor fed :func:`traffic` (0..262 and one early label), and
what that monitor emitted and held after ``traffic(262, 420)`` more. Restoring the snapshot
with today's code and playing the same traffic must give the same decisions and the same state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from streamproc.core.events import DeploymentEvent, LabelEvent, PredictionEvent, SourceRef
from streamproc.core.example import Example, as_examples
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import load_policy_text
from streamproc.core.retrain import TrainingJob
from streamproc.core.window import TrainingWindow

FIXTURE = Path(__file__).parent / "data" / "monitor_snapshot_9e73bd5.json"

# The capture's policy and traffic, as they were run at 9e73bd5.
POLICY = (
    "[default]\n"
    "training_window = 40\n"
    "join = { max_pending = 30, ttl_s = 5000.0, max_early = 10 }\n"
    "rollback = { min_samples = 20, max_samples = 400, z = 3.0 }\n"
    'error = { detector = "cusum", warmup = 50, shift = 0.5, arl = 1e4 }\n'
    "refit_examples = 60\n"
    "label_shift = false\n"  # the label signal came after the capture
)


def traffic(start: int, stop: int) -> list[tuple[str, Any]]:
    """Predictions (v2 from 200 on, a v3 canary every 10th), labels 20 late, a deployment."""
    out: list[tuple[str, Any]] = []
    for i in range(start, stop):
        if i == 200:
            dep = DeploymentEvent(
                "d-200",
                "m",
                "v2",
                "promote",
                200.0,
                previous_version="v1",
                request_id="rr-x",
                metrics={"train": 150},
            )
            out.append(("deployment", dep))
        version = "v1" if i < 200 else ("v3" if i % 10 == 0 else "v2")
        features = {"x": (i % 7) * 0.5, "c": "red" if i % 3 else "blue"}
        wrong = i % 11 == 0 or (i >= 300 and i % 3 == 0)
        pred = (i % 2) ^ int(wrong)
        out.append(("prediction", PredictionEvent(f"e{i}", "m", version, float(i), pred, features)))
        j = i - 20
        if j >= 0 and j % 17 != 5:  # some labels never come
            out.append(("label", LabelEvent(f"e{j}", "m", float(i), j % 2)))
    return out


def play(mon: ModelMonitor, events: list[tuple[str, Any]], offset: int) -> list[str]:
    """Feed the events; the ids of what the monitor emitted."""
    emitted = []
    for k, (kind, ev) in enumerate(events):
        src = SourceRef(kind, 0, offset + k)
        if kind == "deployment":
            mon.on_deployment(ev)
            continue
        out = mon.on_prediction(ev, src) if kind == "prediction" else mon.on_label(ev, src)
        if out is not None:
            emitted.append(getattr(out, "request_id", None) or out.deployment_id)
    return emitted


def positional_trigger(s: dict[str, Any]) -> dict[str, Any]:
    """The trigger's state in the positional form the capture's code wrote (now named)."""
    pending = s["pending"]
    return {
        **s,
        "active": {k: [a["ts"], a["reason"]] for k, a in s["active"].items()},
        "pending": None if pending is None else [pending["request_id"], pending["ts"]],
    }


def observed(mon: ModelMonitor) -> Any:
    """What the capture recorded after the traffic, through public attributes (JSON-normalized:
    a NaN statistic is null on both sides)."""
    watch = mon.watch
    state = {
        "version": mon.version,
        "counts": mon.counts,
        "join_counts": mon.join.counts,
        "pending": mon.join.pending,
        "examples": [ex.row() for ex in mon.examples],
        "trigger": positional_trigger(mon.trigger.state()),
        "watch": None if watch is None else [list(watch.base), list(watch.new), watch.z],
        "refit": [mon.refit_due, mon.own_examples, mon.last_refit_id],
        "detectors": {k: [d.statistic, d.n] for k, d in sorted(mon.detectors.items())},
        "others": {
            v: [vs.predictions, vs.labels, sorted(vs.detectors)] for v, vs in mon.others.items()
        },
        "traffic": mon.traffic.weights,
    }
    return orjson.loads(orjson.dumps(state))


@pytest.fixture(scope="module")
def captured() -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(FIXTURE.read_bytes())
    return data


def test_a_snapshot_from_before_named_state_restores_and_goes_on_the_same(
    captured: dict[str, Any],
) -> None:
    policy = load_policy_text(POLICY).default
    mon = ModelMonitor.restore(orjson.dumps(captured["snapshot"]), policy)
    assert all(isinstance(ex, Example) for ex in mon.examples)
    assert len(mon.examples) == 40 and mon.examples[-1].version == "v2"
    assert mon.join.pending > 0 and mon.watch is not None
    emitted = play(mon, traffic(262, 420), 1000)
    assert emitted == captured["emitted_after"]
    assert observed(mon) == captured["after"]


def test_restore_then_continue_equals_never_stopping() -> None:
    policy = load_policy_text(POLICY).default
    first, straight = ModelMonitor("m", policy), ModelMonitor("m", policy)
    head, tail = traffic(0, 262), traffic(262, 420)
    play(first, head, 0)
    play(straight, head, 0)
    back = ModelMonitor.restore(first.snapshot(), policy)
    assert play(back, tail, 1000) == play(straight, tail, 1000)
    assert observed(back) == observed(straight)
    assert back.snapshot() == straight.snapshot()


# ------------------------------------------------------------------ Example


def test_examples_in_the_snapshot_are_rows_in_field_order(captured: dict[str, Any]) -> None:
    policy = load_policy_text(POLICY).default
    mon = ModelMonitor.restore(orjson.dumps(captured["snapshot"]), policy)
    saved_rows = [list(r) for r in captured["snapshot"]["examples"][0]]
    assert mon.examples.rows() == saved_rows
    ex = mon.examples[-1]
    features, label, prediction, version, ts = saved_rows[-1]
    assert (ex.features, ex.label, ex.prediction, ex.version, ex.ts) == (
        features,
        label,
        prediction,
        version,
        ts,
    )


def test_example_rows_must_have_five_fields() -> None:
    with pytest.raises(ValueError, match=r"an example has 5 fields .* got 2"):
        Example.from_row([{"x": 1.0}, 1])
    with pytest.raises(ValueError, match="pass \\[features, label, prediction, version, ts\\]"):
        as_examples([[{}, 1, 1, "v1"]])


def test_window_bytes_count_the_row_not_the_tuple() -> None:
    ex = Example({"x": 1.5}, 1, 0, "v1", 2.0)
    w = TrainingWindow(max_count=10, max_bytes=10_000)
    w.append(ex)
    assert w.nbytes == len(orjson.dumps(ex.row())) + 1
    assert w.nbytes == len(b'[{"x":1.5},1,0,"v1",2.0]') + 1


def test_a_training_job_saved_before_named_state_restores_examples() -> None:
    request = {
        "request_id": "rr-1",
        "model_id": "m",
        "model_version": "v1",
        "ts": 5.0,
        "reasons": [{"signal": "manual", "detector": "operator", "value": 0,
                     "threshold": 0, "n": 0, "details": {}}],
    }  # fmt: skip
    saved = {
        "request": request,
        "deployed_version": "v1",
        "holdout": [[{"x": 1.0}, 1, 0, "v1", 3.0], [{"x": 2.0}, 0, 0, "v1", 4.0]],
        "task": "classification",
    }
    job = TrainingJob.from_state(saved)
    assert job.holdout == (
        Example({"x": 1.0}, 1, 0, "v1", 3.0),
        Example({"x": 2.0}, 0, 0, "v1", 4.0),
    )
    assert job.state()["holdout"] == saved["holdout"]


# ------------------------------------------------------------------ configuration from the policy

OTHER_POLICY = (
    "[default]\n"
    "training_window = 25\n"
    "join = { max_pending = 12, ttl_s = 9000.0, max_early = 4, max_bytes = 200000 }\n"
    "rollback = { min_samples = 17, max_samples = 70, z = 5.5 }\n"
    'error = { detector = "cusum", warmup = 50, shift = 0.5, arl = 1e4 }\n'
    "refit_examples = 60\n"
)


def test_config_in_an_old_snapshot_is_ignored_for_the_policys(captured: dict[str, Any]) -> None:
    saved = captured["snapshot"]
    # What the code at 9e73bd5 stored besides the state: the limits it ran under.
    assert saved["examples"][1] == 40
    assert saved["join"]["limits"][:3] == [30, 5000.0, 10]
    assert saved["watch"]["limits"] == [20, 400, 3.0]
    assert {"decay", "max"} <= set(saved["versions"]["traffic"])
    policy = load_policy_text(OTHER_POLICY).default
    mon = ModelMonitor.restore(orjson.dumps(saved), policy)
    assert (mon.examples.max_count, len(mon.examples)) == (25, 25)
    assert mon.examples.rows() == saved["examples"][0][-25:]  # the newest that fit
    j = mon.join
    assert (j.max_pending, j.ttl_s, j.max_early, j.max_bytes) == (12, 9000.0, 4, 200_000)
    assert j.pending == 12 and j.counts["evicted_predictions"] > 0  # evicted and counted
    watch = mon.watch
    assert watch is not None
    assert (watch.min_samples, watch.max_samples, watch.z_crit) == (17, 70, 5.5)
    assert list(watch.base) == saved["watch"]["base"] and list(watch.new) == saved["watch"]["new"]
    assert watch.base.n == saved["watch"]["base"][0]  # [n, total, sumsq] rows, by name


def test_a_policy_without_rollback_ends_a_saved_watch(captured: dict[str, Any]) -> None:
    text = POLICY.replace("rollback = { min_samples = 20, max_samples = 400, z = 3.0 }", "")
    policy = load_policy_text(text + "rollback = false\n").default
    mon = ModelMonitor.restore(orjson.dumps(captured["snapshot"]), policy)
    assert mon.watch is None


def test_snapshots_hold_state_only() -> None:
    policy = load_policy_text(POLICY).default
    mon = ModelMonitor("m", policy)
    play(mon, traffic(0, 262), 0)
    s = orjson.loads(mon.snapshot())
    assert "examples" not in s and len(s["window"]) == 40
    assert "limits" not in s["join"]
    assert set(s["watch"]) == {"prev", "base", "new", "z"}
    assert set(s["versions"]["traffic"]) == {"w"}
    assert "max" not in s["versions"]["others"]
    # Named fields, not positional lists (the old lists are still read: the capture test).
    assert set(s["version"]) == {"current", "deployed", "last_deployment_id"}
    assert set(s["refit"]) == {"due", "own_examples", "last_refit_id"}
    v1 = s["versions"]["others"]["sets"]["v1"]
    assert {"predictions", "labels", "last_ts"} <= set(v1) and "counts" not in v1


def test_snapshot_bytes_do_not_grow(captured: dict[str, Any]) -> None:
    """The same monitor state takes the bytes it took at 9e73bd5: the per-example parts
    (training window, join buffers) byte for byte, the rest a few field names more at most.

    Names cost a fixed number of bytes, never bytes per example: measured 509 more on this
    snapshot of 9,326 (the CUSUMs' named state, about 30 bytes per CUSUM in ``detectors`` and in
    each version's ``versions`` entry; the error scorer's task and evidence, ``version``,
    ``refit`` and ``label_wait`` by name)."""
    policy = load_policy_text(POLICY).default
    saved = captured["snapshot"]
    old = orjson.dumps(saved)
    new = ModelMonitor.restore(old, policy).snapshot()
    s = orjson.loads(new)
    assert orjson.dumps(s["window"]) == orjson.dumps(saved["examples"][0])
    for part in ("pending", "early"):
        assert orjson.dumps(s["join"][part]) == orjson.dumps(saved["join"][part])
    assert len(new) - len(old) <= 600
