"""The faust floor: a faust-streaming worker whose agent only decodes each record with orjson.

    python bench/faust_floor.py BOOTSTRAP PREFIX APP_ID WEB_PORT DATA_DIR

Same topics, batching (``take_events``) and group settings as ``streamproc worker``, none of its
work: what the framework alone costs per event on this machine. bench/throughput.py runs it as
phase (d) and measures it like a worker (committed offsets reach the end).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import faust
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamproc.service.agents import BATCH_MAX, BATCH_WITHIN_S


def main() -> None:
    bootstrap, prefix, app_id, web_port, data_dir = sys.argv[1:6]
    app = faust.App(
        prefix + app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=data_dir,
        web_host="127.0.0.1",
        web_port=int(web_port),
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
    )
    source = app.topic(
        prefix + "predictions", prefix + "labels", key_type=bytes, value_type=bytes,
        key_serializer="raw", value_serializer="raw",
    )  # fmt: skip
    decoded = [0]

    @app.agent(source)
    async def floor(stream: Any) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            for event in events:
                orjson.loads(event.value)
            decoded[0] += len(events)

    faust.Worker(
        app, loglevel="info", quiet=True, redirect_stdouts=False
    ).execute_from_commandline()


if __name__ == "__main__":
    main()
