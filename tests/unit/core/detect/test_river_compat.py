"""The private river attributes the adapters read exist in the running river, named once."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from streamproc.core.detect import river_compat

ROOT = Path(__file__).resolve().parents[4]


def test_every_private_river_attribute_used_exists_in_the_running_river() -> None:
    assert river_compat.missing() == []


def test_the_running_river_is_one_checked_and_within_the_declared_bound() -> None:
    running = version("river")
    assert running in river_compat.CHECKED_VERSIONS, (
        f"river {running} is not among the versions river_compat was checked against; check "
        "each name in river_compat against its source, then add it to CHECKED_VERSIONS."
    )
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [d for d in deps if d.startswith("river")]
    upper = re.search(r"<([0-9.]+)", spec)
    assert upper is not None, f"river has no upper bound in pyproject.toml: {spec!r}"
    bound = tuple(int(v) for v in upper.group(1).split("."))
    for checked in river_compat.CHECKED_VERSIONS:
        assert tuple(int(v) for v in checked.split("."))[:2] < bound


def test_the_adapters_reach_river_privates_only_through_the_compat_module() -> None:
    source = (ROOT / "streamproc/core/detect/river_adapters.py").read_text()
    named = {
        *(n for names in river_compat.PRIVATE_READ.values() for n in names),
        *(n for names in river_compat.PRIVATE_READ_NESTED.values() for n in names),
        *river_compat.PRIVATE_WRITTEN,
    }
    used = {n for n in named if re.search(rf"\.{n}\b", source)}
    assert used == set(), f"river privates used outside river_compat: {sorted(used)}"
