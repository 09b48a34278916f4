"""Offline replay: the design doc's contract, on the same core as the live agents."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from streamproc.cli.replay import replay, replay_file
from streamproc.core.retrain import candidate_version
from streamproc.sim.scenarios import interactions, rule_model, seed_metrics


def lines(records: list[tuple[str, dict]]) -> list[bytes]:
    return [orjson.dumps({"topic": t, "value": v}) for t, v in records]


def test_seed_table_replays_to_requests_after_steps_3_and_5() -> None:
    out = list(replay(lines([("metrics", m) for m in seed_metrics("m")])))
    assert [(e.topic, e.input_index) for e in out] == [
        ("retrain-requests", 2),
        ("deployments", 2),
        ("retrain-requests", 4),
        ("deployments", 4),
    ]
    first_req, first_dep, second_req = out[0].value, out[1].value, out[2].value
    assert first_dep["version"] != first_req["model_version"]  # the candidate, as live
    # The recorded traffic keeps its recorded version: the next request is about it.
    assert second_req["model_version"] == first_req["model_version"]


def test_bad_lines_become_dead_letters_with_their_input_index() -> None:
    good = orjson.dumps({"topic": "metrics", "value": seed_metrics("m")[0]})
    src = [
        b"not json",
        b'{"topic": "clicks", "value": {}}',
        good,
        b'{"topic": "labels", "value": {}}',
    ]
    out = list(replay(src))
    assert [(e.topic, e.input_index) for e in out] == [
        ("dead-letters", 0),
        ("dead-letters", 1),
        ("dead-letters", 3),
    ]
    assert "not valid JSON" in out[0].value["error"]
    assert "required field 'event_id' is missing" in out[2].value["error"]


def test_retrain_for_real_trains_gates_and_deploys(tmp_path: Path) -> None:
    initial = ("v1", rule_model("A", flip=0.3))
    records = []
    for x in interactions("m", lambda i: "A", lambda i: initial, 0, 400):
        records += [("predictions", x.prediction), ("labels", x.label)]
    records.append(("metrics", {"model_id": "m", "ts": 2e9, "name": "drift", "value": 0.5}))
    out = list(replay(lines(records), retrain_for_real=True))
    assert [e.topic for e in out] == ["retrain-requests", "retrain-results", "deployments"]
    assert out[1].value["status"] == "succeeded"
    assert out[1].value["metrics"]["candidate_error"] < out[1].value["metrics"]["current_error"]


def test_cli_writes_the_out_file(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(lines([("metrics", m) for m in seed_metrics("m")])) + b"\n")
    policy = tmp_path / "p.toml"
    policy.write_text('[default]\nmetrics = [{ name = "drift", above = 0.01 }]\n')
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "streamproc", "replay", str(src), "--policy", str(policy),
         "--out", str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "retrain-requests\t5" in proc.stdout
    assert "input metrics\t5" in proc.stdout and "dead-letters\t0" in proc.stdout
    rows = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert [r["input_index"] for r in rows if r["topic"] == "retrain-requests"] == [0, 1, 2, 3, 4]
    assert replay_file(src, None) == {"retrain-requests": 2, "deployments": 2}


# ------------------------------------------------------------ issue 12 items 12 and 13


def shifting_traffic(n: int = 6000, version: str = "v1") -> list[bytes]:
    """A feature shifted by 3 sd at event 2,000 and back at 4,000, every prediction stamped
    ``version`` (as recorded: the inference server never ran a retrained model)."""
    import random

    rng = random.Random(3)
    out = []
    for i in range(n):
        shift = 3.0 if 2000 <= i < 4000 else 0.0
        pred = {
            "event_id": f"e{i}",
            "model_id": "m",
            "model_version": version,
            "ts": 1000.0 + i,
            "features": {"x": rng.gauss(shift, 1.0)},
            "prediction": 0,
        }
        out.append(orjson.dumps({"topic": "predictions", "value": pred}))
    return out


def test_recorded_versions_keep_being_monitored_after_a_simulated_deployment() -> None:
    out = list(replay(shifting_traffic()))
    requests = [e for e in out if e.topic == "retrain-requests"]
    deployments = [e for e in out if e.topic == "deployments"]
    # Before: one request (after the simulated deployment, every "v1" prediction was ignored).
    assert len(requests) == 2
    assert 2000 <= requests[0].input_index < 2200  # the shift
    assert 4000 <= requests[1].input_index < 4200  # and back
    assert all(r.value["model_version"] == "v1" for r in requests)
    assert all(r.value["reasons"][0]["signal"] == "feature:x" for r in requests)
    # The emitted deployments name the candidates the live loop would deploy.
    assert [d.value["version"] for d in deployments] == [
        candidate_version(r.value["request_id"]) for r in requests
    ]


def test_a_recorded_switch_of_version_is_followed_after_a_simulated_deployment() -> None:
    first = shifting_traffic(3000)  # the shift at 2,000 fires once
    second = [
        line.replace(b'"model_version":"v1"', b'"model_version":"v2"')
        for line in shifting_traffic(6000)[3000:]
    ]
    out = list(replay(first + second))
    requests = [e.value for e in out if e.topic == "retrain-requests"]
    assert [r["model_version"] for r in requests] == ["v1", "v2"]


def test_summary_is_printed_also_when_nothing_fired(tmp_path: Path) -> None:
    quiet = [line for line in shifting_traffic(1500)]  # no shift before event 2,000
    labels = [
        orjson.dumps({"topic": "labels", "value": {"event_id": f"e{i}", "model_id": "m",
                                                   "ts": 2600.0 + i, "label": 0}})
        for i in range(1490, 1500)
    ] + [orjson.dumps({"topic": "labels", "value": {"event_id": "nope", "model_id": "m",
                                                    "ts": 2700.0, "label": 0}})]  # fmt: skip
    metric = {"model_id": "m", "ts": 2700.0, "name": "drift", "value": 0.01, "model_version": "v0"}
    src = tmp_path / "quiet.jsonl"
    src.write_bytes(
        b"\n".join([*quiet, *labels, orjson.dumps({"topic": "metrics", "value": metric}),
                    b"not json"]) + b"\n"
    )  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "streamproc", "replay", str(src)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    got = dict(line.split("\t") for line in proc.stdout.splitlines() if "\t" in line)
    assert got == {
        "input predictions": "1500",
        "input labels": "11",
        "input metrics": "1",
        "joined": "10",
        "evicted predictions": "0",
        "evicted labels": "0",
        "evicted for bytes (join)": "0",
        "evicted for bytes (training window)": "0",
        "stale metrics": "1",
        "stale joins": "0",
        "dead-letters": "1",
        "retrain-requests": "0",
        "deployments": "0",
        "retrain-results": "0",
    }
    assert "no retrain request" in proc.stdout


def test_a_label_letter_names_the_labels_line_also_when_it_came_before_its_prediction() -> None:
    t0 = 1_700_000_000.0
    lines = [
        orjson.dumps({"topic": topic, "value": value})
        for topic, value in [
            *(("predictions", {"event_id": f"p{i}", "model_id": "m", "model_version": "v1",
                               "ts": t0 + i, "prediction": 0.5}) for i in range(5)),
            ("metrics", {"model_id": "m", "name": "x", "value": 1.0, "ts": t0}),
            ("labels", {"event_id": "p0", "model_id": "m", "ts": t0, "label": "cat"}),  # line 6
            ("labels", {"event_id": "late", "model_id": "m", "ts": t0 + 9, "label": "cat"}),
            ("predictions", {"event_id": "late", "model_id": "m", "model_version": "v1",
                             "ts": t0 + 9, "prediction": 0.5}),  # completes line 7's pair
        ]
    ]  # fmt: skip
    letters = [
        (e.input_index, e.value["source"]) for e in replay(lines) if e.topic == "dead-letters"
    ]
    assert letters == [
        (6, {"topic": "labels", "partition": 0, "offset": 6}),
        (8, {"topic": "labels", "partition": 0, "offset": 7}),
    ]
