"""FileRegistry paths: bounded for any id, injective, and readable where they can be."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streamproc.core.events import Reason, RetrainRequest
from streamproc.core.example import Example
from streamproc.core.registry import MAX_SEGMENT, FileRegistry, _path_part
from streamproc.core.retrain import RetrainLedger, retrain

CJK_35 = "模型" * 17 + "库"  # 35 characters, 105 bytes of UTF-8, 315 escaped (issue 12)


def test_a_35_character_cjk_model_id_registers_loads_and_lists(tmp_path: Path) -> None:
    assert len(CJK_35) == 35 and len(CJK_35.encode()) == 105
    reg = FileRegistry(tmp_path)
    mv = reg.register(CJK_35, "v2", b"weights", created_ts=1.0)
    assert reg.load(CJK_35, "v2") == b"weights"
    got = reg.get(CJK_35, "v2")
    assert got is not None and got.model_id == CJK_35 and got.artifact_uri == mv.artifact_uri
    (folder,) = tmp_path.iterdir()
    assert len(folder.name.encode()) <= MAX_SEGMENT
    # The readable part: the escaped start of the id, then "+" and the id's sha256.
    assert folder.name.startswith("%E6%A8%A1%E5%9E%8B") and len(folder.name.split("+")[1]) == 64


def test_a_long_version_is_listed_under_its_own_name(tmp_path: Path) -> None:
    reg = FileRegistry(tmp_path)
    long_version = "release/" + "x" * 400
    reg.register("m", "v1", b"a", created_ts=1.0)
    reg.register("m", long_version, b"b", created_ts=2.0)
    assert [v.version for v in reg.versions("m")] == ["v1", long_version]
    assert reg.load("m", long_version) == b"b"


@pytest.mark.parametrize(
    "ident",
    ["a", "fraud/eu", "..", ".", "", "a+b", "~x", "é" * 200, "x" * MAX_SEGMENT, "x" * 1000],
)
def test_segments_are_safe_and_bounded(ident: str) -> None:
    part = _path_part(ident)
    assert part not in (".", "..", "") and os.sep not in part
    assert len(part.encode()) <= MAX_SEGMENT


def test_segments_are_injective_across_the_hashing_boundary() -> None:
    # Ids whose escaped forms share a long prefix, ids at the bound, and a short id spelled
    # like a long one's hashed name: all distinct segments.
    base = "x" * (MAX_SEGMENT - 1)
    ids = [base, base + "x", base + "xx", base + "y", "é" * 100, "é" * 101]
    ids.append(_path_part(base + "xx"))  # a short id that looks like a hashed name
    parts = [_path_part(i) for i in ids]
    assert len(set(parts)) == len(ids)


def test_a_registry_that_cannot_write_gives_a_failed_result_not_an_exception(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "registry"
    blocker.write_text("a file where the registry's folder should be")
    reg = FileRegistry(blocker)
    # label = x1 > x2; the deployed version answered at random: a candidate would be promoted.
    examples = [
        Example({"x1": float(i % 7), "x2": float(i % 5)}, i % 7 > i % 5, i % 2 == 0, "v1", float(i))
        for i in range(400)
    ]
    req = RetrainRequest("rr-1", "m1", "v1", 400.0, (Reason("error", "cusum", 15, 13.8, 400),))
    with pytest.raises(OSError):  # the registry itself raises ...
        reg.register("m1", "v2", b"x", created_ts=1.0)
    # ... and the whole job says so as a result (the worker's agent does the same, around
    # every job: streamproc.service.agents.Retrains.handle).
    out = retrain(req, examples, "v1", reg, now=5.0)
    assert out.result.status == "failed" and out.deployment is None
    assert "NotADirectoryError" in (out.result.error or ""), out.result.error


def test_a_job_left_in_flight_by_a_stopped_worker_is_failed_at_its_deadline() -> None:
    led = RetrainLedger()
    assert led.admit("rr-1", now=0.0, run_s=600.0) == "start"
    # The worker dies; rr-1 is never delivered again. A request meanwhile is coalesced ...
    assert led.admit("rr-2", now=599.0) == "coalesce" and led.expired is None
    # ... and the first one after the deadline starts, naming rr-1 to be failed.
    assert led.admit("rr-3", now=601.0, run_s=600.0) == "start" and led.expired == "rr-1"
    assert led.deadline == 601.0 + 600.0
