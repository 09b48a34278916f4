"""The peer: the same detection done the way a user would without streamproc, on quix-streams.

    python bench/peer_quix.py BOOTSTRAP PREFIX GROUP STATE_DIR

A quix-streams application (its own consumer group, earliest offsets) on the single-event
``PREFIX predictions`` and ``PREFIX labels`` topics, as an inference server emits them: per model,
river's ADWIN on each numeric feature, and river's ADWIN on the error (a label joined to its
prediction by ``event_id``, whichever arrives first waits in a dict). No checkpointing, no
dead-letters, no retrain requests: less work than a streamproc worker does, so a fair floor
for "a user's own consumer". bench/throughput.py runs it in its own virtual environment
(quix-streams pins its own Kafka client, confluent-kafka) and measures it like a worker
(committed offsets reach the end; ``commit_interval`` 0.5 s as the worker's polling).

Prints ``peer ready`` once the application runs, and the drift count on exit.
"""

from __future__ import annotations

import signal
import sys
from collections import defaultdict
from typing import Any

from quixstreams import Application
from river.drift import ADWIN


def main() -> None:
    bootstrap, prefix, group, state_dir = sys.argv[1:5]
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        commit_interval=0.5,
        state_dir=state_dir,
        auto_create_topics=False,
    )
    features: defaultdict[str, defaultdict[str, ADWIN]] = defaultdict(lambda: defaultdict(ADWIN))
    errors: defaultdict[str, ADWIN] = defaultdict(ADWIN)
    waiting_prediction: dict[str, Any] = {}
    waiting_label: dict[str, Any] = {}
    drifts = [0]

    def error(model: str, prediction: Any, label: Any) -> None:
        det = errors[model]
        det.update(float(prediction != label))
        drifts[0] += det.drift_detected

    def on_prediction(e: dict[str, Any]) -> None:
        model = e["model_id"]
        dets = features[model]
        for name, value in e["features"].items():
            det = dets[name]
            det.update(value)
            drifts[0] += det.drift_detected
        label = waiting_label.pop(e["event_id"], None)
        if label is None:
            waiting_prediction[e["event_id"]] = e["prediction"]
        else:
            error(model, e["prediction"], label)

    def on_label(e: dict[str, Any]) -> None:
        prediction = waiting_prediction.pop(e["event_id"], None)
        if prediction is None:
            waiting_label[e["event_id"]] = e["label"]
        else:
            error(e["model_id"], prediction, e["label"])

    predictions = app.topic(prefix + "predictions", value_deserializer="json")
    labels = app.topic(prefix + "labels", value_deserializer="json")
    app.dataframe(predictions).update(on_prediction)
    app.dataframe(labels).update(on_label)
    signal.signal(signal.SIGTERM, lambda *_: app.stop())
    print("peer ready", flush=True)
    app.run()
    print(f"peer drifts {drifts[0]}", flush=True)


if __name__ == "__main__":
    main()
