"""Run a worker: create the source topics, build the app, add the agents, serve until stopped."""

from __future__ import annotations

import asyncio
import logging

import faust

from streamproc.config import Settings
from streamproc.service.agents import install
from streamproc.service.app import create_app
from streamproc.service.topics import ensure_topics

log = logging.getLogger(__name__)


def run_worker(settings: Settings, bootstrap: str, loglevel: str = "info") -> None:
    """Block running one worker; SIGTERM or SIGINT stops it cleanly."""
    asyncio.run(ensure_topics(settings, bootstrap))
    wiring = create_app(settings, bootstrap)
    install(wiring)
    log.info(
        "worker %s on %s (prefix %r, %d partitions, web 127.0.0.1:%d)",
        settings.app_id,
        bootstrap,
        settings.topic_prefix,
        settings.partitions,
        settings.web_port,
    )
    # Keep the logging the CLI configured: faust would otherwise disable our loggers.
    worker = faust.Worker(
        wiring.app, loglevel=loglevel, quiet=True, redirect_stdouts=False, override_logging=False
    )
    worker.execute_from_commandline()
