"""The one place streamproc uses aiokafka's private API (checked on aiokafka 0.14.0).

Nothing else in streamproc imports these; when raising the aiokafka bound in ``pyproject.toml``,
read each against the new version's source. ``tests/unit/service/test_private_apis.py`` fails,
naming the attribute, when one is gone.

=========================================  ======================================================
``aiokafka.conn.create_conn``              one connection to one broker, outside a client: its
                                           errors say why a bootstrap failed (:func:`probe`)
``aiokafka.protocol.metadata``             the request :func:`probe` sends once connected
``.MetadataRequest``
=========================================  ======================================================

(``aiokafka.helpers.create_ssl_context``, ``aiokafka.admin`` and ``aiokafka.errors`` are public.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.protocol.metadata import MetadataRequest

__all__ = ["PRIVATE", "probe"]

# (module, attribute) of every private name used here: the test checks each exists.
PRIVATE = (("aiokafka.conn", "create_conn"), ("aiokafka.protocol.metadata", "MetadataRequest"))


async def probe(host: str, port: int, timeout: float, **client_kwargs: Any) -> None:
    """Connect to one broker and ask it for metadata; raise whatever aiokafka raises.

    Parameters
    ----------
    host, port
        The broker's address.
    timeout
        Seconds for connecting, and again for the answer.
    client_kwargs
        Security settings, as for aiokafka's clients (``KafkaSecurity.aiokafka_kwargs``).

    Raises
    ------
    aiokafka.errors.KafkaError, ssl.SSLError, OSError, TimeoutError
        The connection or the request failed: the cause a client's "Unable to bootstrap" hides.
    """
    conn = None
    try:
        conn = await asyncio.wait_for(
            create_conn(
                host,
                port,
                client_id="streamproc-probe",
                request_timeout_ms=int(timeout * 1000),
                **client_kwargs,
            ),
            timeout,
        )
        await asyncio.wait_for(conn.send(MetadataRequest([])), timeout)
    finally:
        if conn is not None:
            conn.close()
