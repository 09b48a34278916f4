"""The registry's ``champion`` alias follows the deployments topic.

Every deployment the drift agent reads (a promotion by the retrainer, an automatic or a manual
rollback, one published by hand) moves the alias to its version, so the registry names what is
deployed. The moves run off the event loop, one at a time and in the order read; a registry
call that fails (MLflow down, a version deployed from outside streamproc and so not in the
registry) is logged with what to do and never stops the worker. A deployed version that is not
in the registry (an external pipeline's artifact, an initial version deployed by hand) clears
the alias: it must never name a version that is no longer deployed.
"""

from __future__ import annotations

import asyncio
import logging

from streamproc.core.events import DeploymentEvent
from streamproc.core.registry import CHAMPION, Registry, RegistryError

__all__ = ["AliasFollower"]

log = logging.getLogger(__name__)


class AliasFollower:
    """Queue of deployments whose version ``alias`` must point at, applied by :meth:`run`."""

    def __init__(self, registry: Registry, alias: str = CHAMPION) -> None:
        self.registry = registry
        self.alias = alias
        self.queue: asyncio.Queue[DeploymentEvent] = asyncio.Queue()
        #: Moves done, and moves that failed (logged).
        self.moved = 0
        self.failed = 0

    def follow(self, dep: DeploymentEvent) -> None:
        self.queue.put_nowait(dep)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            dep = await self.queue.get()
            await loop.run_in_executor(None, self.move, dep)

    def move(self, dep: DeploymentEvent) -> bool:
        """Point the alias at ``dep.version``; False (logged) when the registry refuses."""
        try:
            if self.registry.get(dep.model_id, dep.version) is None:
                self.registry.delete_alias(dep.model_id, self.alias)
                log.info(
                    "model %s: %s cleared: the deployed %s is not in the registry",
                    dep.model_id,
                    self.alias,
                    dep.version,
                )
                return False
            self.registry.set_alias(dep.model_id, self.alias, dep.version)
        except RegistryError as exc:
            self.failed += 1
            log.warning("model %s: alias %s not moved: %s", dep.model_id, self.alias, exc)
            return False
        except Exception:
            self.failed += 1
            log.exception(
                "model %s: moving alias %s to %s failed; the registry is unreachable or refused "
                "it: the next deployment moves it again",
                dep.model_id,
                self.alias,
                dep.version,
            )
            return False
        self.moved += 1
        log.info("model %s: %s -> %s (%s)", dep.model_id, self.alias, dep.version, dep.action)
        return True
