"""The champion alias follows deployments: set on registered versions, cleared otherwise."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from streamproc.core.events import DeploymentEvent
from streamproc.core.registry import CHAMPION, FileRegistry
from streamproc.service.aliases import AliasFollower


def dep(version: str, action: str = "promote") -> DeploymentEvent:
    return DeploymentEvent(f"dep-{version}-{action}", "m/1", version, action, ts=1.0)


def test_alias_follows_promotions_and_rollbacks_and_clears_for_outside_versions(
    tmp_path: Path,
) -> None:
    reg = FileRegistry(tmp_path)
    reg.register("m/1", "v-a", b"a", created_ts=1.0)
    reg.register("m/1", "v-b", b"b", created_ts=2.0)
    follower = AliasFollower(reg)
    assert follower.move(dep("v-a"))
    assert follower.move(dep("v-b"))
    assert reg.get_alias("m/1", CHAMPION).version == "v-b"
    assert follower.move(dep("v-a", "rollback"))
    assert reg.get_alias("m/1", CHAMPION).version == "v-a"
    assert not follower.move(dep("s3-pipeline-7"))  # an external artifact: not registered
    assert reg.get_alias("m/1", CHAMPION) is None
    assert (follower.moved, follower.failed) == (3, 0)


def test_a_failing_registry_is_counted_and_the_queue_goes_on(tmp_path: Path) -> None:
    class Down(FileRegistry):
        def get(self, model_id: str, version: str) -> Any:
            if version == "v-down":
                raise ConnectionError("registry unreachable")
            return super().get(model_id, version)

    reg = Down(tmp_path)
    reg.register("m/1", "v-a", b"a", created_ts=1.0)
    follower = AliasFollower(reg)

    async def run() -> None:
        task = asyncio.create_task(follower.run())
        follower.follow(dep("v-down"))
        follower.follow(dep("v-a"))
        while follower.moved + follower.failed < 2:
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(asyncio.wait_for(run(), 30))
    assert (follower.moved, follower.failed) == (1, 1)
    assert reg.get_alias("m/1", CHAMPION).version == "v-a"
