"""The joins metric counts every join between two reports, past the cap on the label delays it
samples (a catch-up's batch can join more than that for one model)."""

from __future__ import annotations

import orjson

from streamproc.core.events import SourceRef
from streamproc.core.monitor import MAX_LATENCIES
from streamproc.core.router import Monitors, route_record
from streamproc.service.board import StatusBoard

CHUNK = 1000  # within the join's default bounds (2,000 waiting on either side)


def test_joins_past_the_delays_kept_are_all_counted() -> None:
    monitors, board = Monitors(), StatusBoard()
    chunks = MAX_LATENCIES // CHUNK + 1
    for c in range(chunks):
        r = range(c * CHUNK, (c + 1) * CHUNK)
        ids = [f"e{i}" for i in r]
        preds = {"model_id": "m", "model_version": "v1", "event_id": ids,
                 "ts": [float(i) for i in r], "prediction": [i % 2 for i in r],
                 "features": {"x": [float(i % 7) for i in r]}}  # fmt: skip
        labels = {"model_id": "m", "event_id": ids, "ts": [i + 0.5 for i in r],
                  "label": [i % 2 for i in r]}  # fmt: skip
        for topic, value in (("predictions", preds), ("labels", labels)):
            route_record(monitors, topic, orjson.dumps(value), SourceRef(topic, 0, c), 0.0)
    mon = monitors.live["m"]
    n = chunks * CHUNK
    assert mon.join.counts["joined"] == n > MAX_LATENCIES == len(mon.join_latencies)
    board.applied(mon, 0)
    registry = board.metrics.registry
    counted = registry.get_sample_value("streamproc_label_joins_total", {"model": "m"})
    assert counted == n and mon.joins_unread == 0
