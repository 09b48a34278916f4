"""Warnings of each kind at most once per interval, and connection failures explained."""

from __future__ import annotations

import logging
import time

from streamproc.security import KafkaSecurity

log = logging.getLogger(__name__)


class RateLimited:
    """Log a warning of each kind at most once per ``every_s`` seconds."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._last: dict[str, float] = {}

    def due(self, kind: str) -> bool:
        """Whether a message of this kind may be logged now; if so, the clock restarts."""
        now = time.monotonic()
        last = self._last.get(kind)
        if last is None or now - last >= self.every_s:
            self._last[kind] = now
            return True
        return False

    def warn(self, kind: str, msg: str, *args: object) -> None:
        if self.due(kind):
            log.warning(msg, *args)

    async def cannot_connect(
        self, who: str, bootstrap: str, security: KafkaSecurity, exc: Exception, then: str
    ) -> None:
        """Say why a client could not connect: refused credentials are an error, not a glitch."""
        if not self.due("connect"):
            return
        reason = await security.explain(bootstrap, exc)
        refused = reason != str(exc)
        log.log(
            logging.ERROR if refused else logging.WARNING,
            "%s cannot connect to Kafka at %s (%s); %s.",
            who,
            bootstrap,
            reason,
            then,
        )
