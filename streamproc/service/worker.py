"""Run a worker: create the source topics, build the app, add the agents, serve until stopped."""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import io
import logging
import signal
from typing import Any

import faust

from streamproc.config import Settings
from streamproc.core.topics import MONITORED_TOPICS
from streamproc.service.agents import install
from streamproc.service.app import create_app
from streamproc.service.board import StatusBoard
from streamproc.service.commitguard import CommitGuard
from streamproc.service.commits import CommitGap
from streamproc.service.faust_compat import (
    guard_commits,
    pause_streams_while_seeking,
    refuse_gaps,
    track_written_topics,
)
from streamproc.service.topics import ensure_topics
from streamproc.service.training.registries import open_registry
from streamproc.service.watchdog import Watchdog, consumer_state, install_watchdog
from streamproc.service.web import install_web

log = logging.getLogger(__name__)

# Allocations between two collections of the youngest generation (CPython's default: 700). The
# core allocates many short-lived objects per event beside a large long-lived state; measured by
# bench/gc_threshold.py (the core on batched records, CPU time, interleaved runs).
GC_THRESHOLD = 50_000


def run_worker(settings: Settings, bootstrap: str, loglevel: str = "info") -> None:
    """Block running one worker; SIGTERM or SIGINT stops it cleanly."""
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    asyncio.run(ensure_topics(settings, bootstrap))
    wiring = create_app(settings, bootstrap)
    board = StatusBoard(settings.metrics_models)
    commits = CommitGap(settings.commit_gap_s, board.metrics.registry)
    guard = CommitGuard(settings.topic(t) for t in MONITORED_TOPICS)
    install(wiring, board, commits, guard)
    pause_streams_while_seeking(wiring.app.consumer)  # else commits trail after rebalances (#17)
    refuse_gaps(wiring.app.consumer)  # else a false jump in offsets skips records (#17)
    guard_commits(wiring.app.consumer, guard)  # else records faust skipped are committed (#17)
    written = [wiring.requests, wiring.results, wiring.deployments, wiring.dead_letters]

    @wiring.app.task
    async def track_written() -> None:  # else a record can strand in aiokafka's producer
        await track_written_topics(wiring.app, [t.get_topic_name() for t in written])

    dog = Watchdog(
        settings.stall_s, dump=lambda: dump_tasks(wiring.app), commits=commits, guard=guard
    )
    install_watchdog(wiring, dog, bootstrap, every_s=min(30.0, settings.stall_s / 3))
    install_web(wiring, board, open_registry(settings), settings.admin_token(), dog)
    log.info(
        "worker %s on %s (prefix %r, %d partitions, web http://%s:%d/dashboard)",
        settings.app_id,
        bootstrap,
        settings.topic_prefix,
        settings.partitions,
        settings.web_host,
        settings.web_port,
    )
    dump_tasks_on_signal(wiring.app)
    # Keep the logging the CLI configured: faust would otherwise disable our loggers.
    worker = faust.Worker(
        wiring.app, loglevel=loglevel, quiet=True, redirect_stdouts=False, override_logging=False
    )
    worker.execute_from_commandline()


def dump_tasks_on_signal(app: faust.App, signum: int = signal.SIGUSR1) -> None:
    """``kill -USR1 <pid>`` logs every asyncio task's stack: how to see where a worker waits."""
    faulthandler.register(signal.SIGUSR2, all_threads=True)  # thread stacks to stderr

    signal.signal(signum, lambda *_: dump_tasks(app))


def dump_tasks(app: faust.App) -> None:
    for task in asyncio.all_tasks(app.loop):
        out = io.StringIO()
        task.print_stack(file=out)
        log.warning("task %s:\n%s%s", task.get_name(), out.getvalue(), await_chain(task))
    log.warning("producer state (aiokafka's view):\n%s", producer_state(app.producer))
    # Last, so that a log's tail has it: what faust fetches, has read and committed.
    log.warning("consumer state (faust's view of each assigned partition):\n%s",
                consumer_state(app.consumer))  # fmt: skip


def await_chain(task: asyncio.Task[object]) -> str:
    """The coroutines ``task`` is suspended in, outermost first, and what the innermost awaits.

    asyncio's ``print_stack`` shows a suspended task's outermost frame only (for an agent,
    faust's ``_execute_actor``); where it really waits is at the end of this chain.
    """
    lines = ["await chain:"]
    coro: Any = task.get_coro()
    for _ in range(64):  # a bound: chains are short, and a cycle must not hang the dump
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        if frame is None:
            break
        code = frame.f_code
        lines.append(f'  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}')
        inner = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
        if inner is None:
            break
        if not (hasattr(inner, "cr_frame") or hasattr(inner, "ag_frame")):
            lines.append(f"  awaiting {repr(inner)[:300]}")
            break
        coro = inner
    return "\n".join(lines)


def producer_state(producer: Any) -> str:
    """What aiokafka's producer waits for: requests sent per broker connection and not yet
    answered, nodes with a produce request in flight, partitions muted. Read only, from
    aiokafka 0.14's private attributes; whatever another version lacks shows as ``?``."""
    client = getattr(getattr(producer, "_producer", None), "client", None)
    sender = getattr(getattr(producer, "_producer", None), "_sender", None)
    lines = []
    for key, conn in dict(getattr(client, "_conns", {}) or {}).items():
        pending = [type(req).__name__ for _, req, _ in getattr(conn, "_requests", ())]
        lines.append(f"connection {key}: {conn!r}, connected {conn.connected()}, "
                     f"waiting for answers to {pending}")  # fmt: skip
    lines.append(f"produce requests in flight to nodes {getattr(sender, '_in_flight', '?')}, "
                 f"muted partitions {getattr(sender, '_muted_partitions', '?')}")  # fmt: skip
    return "\n".join(lines)
