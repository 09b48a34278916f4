"""Checks a command makes before it starts anything, each failing with one sentence.

A worker checks its policy (and trainers), its admin token file and its web port before a
broker is started or a topic created, so a typo leaves nothing running; a configured broker
(``STREAMPROC_BROKER``) is checked reachable before it is used.
"""

from __future__ import annotations

import errno
import socket

from streamproc.config import Settings
from streamproc.core.exceptions import StreamprocError
from streamproc.core.topics import RETRAIN_RESULTS

__all__ = ["PreflightError", "check_broker_reachable", "check_web_port", "check_worker"]


class PreflightError(StreamprocError):
    """Something a command needs is not there; the message says what and what to do."""


def check_worker(settings: Settings) -> None:
    """Everything a worker can check without a broker: policy, trainers, token file, web port.

    Raises
    ------
    streamproc.core.policy.PolicyError
        The policy file cannot be used.
    PreflightError
        The admin token file cannot be read, or the web port is taken.
    """
    from streamproc.core.policy import load_policy
    from streamproc.service.agents import check_trainers

    book = load_policy(settings.policy_file)
    check_trainers(book, settings.topic(RETRAIN_RESULTS))
    try:
        settings.admin_token()
    except ValueError as exc:
        raise PreflightError(str(exc)) from None
    check_web_port(settings.web_host, settings.web_port)


def check_web_port(host: str, port: int) -> None:
    """Refuse a web port another process listens on (say, a worker already running)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As the web server binds: a port in TIME_WAIT is free, one with a listener is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PreflightError(
                    f"the web port {host}:{port} is in use (another worker?); choose a free one "
                    "with --web-port or STREAMPROC_WEB_PORT."
                ) from None
            raise PreflightError(
                f"cannot open the web port {host}:{port} ({exc.strerror}); check "
                "STREAMPROC_WEB_HOST and STREAMPROC_WEB_PORT."
            ) from None


def check_broker_reachable(bootstrap: str, timeout_s: float = 5.0) -> None:
    """Refuse a configured broker none of whose bootstrap addresses accepts a connection."""
    problems = []
    for address in (a.strip() for a in bootstrap.split(",") if a.strip()):
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise PreflightError(
                f"STREAMPROC_BROKER (or --broker) {bootstrap!r}: {address!r} is not host:port; "
                "write it like kafka1:9092,kafka2:9092."
            )
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return
        except OSError as exc:
            problems.append(f"{address}: {exc.strerror or exc}")
    raise PreflightError(
        f"cannot reach the Kafka broker STREAMPROC_BROKER (or --broker) = {bootstrap!r} "
        f"({'; '.join(problems) or 'no address'}); check the address and that the broker "
        "runs, or unset STREAMPROC_BROKER to use the local one (`streamproc kafka start`)."
    )
