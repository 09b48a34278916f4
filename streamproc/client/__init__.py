"""Client SDK for inference servers: stream events into Kafka, hot-swap deployed models.

Two halves, both safe to put on the inference path:

- **Loggers** (:class:`PredictionLogger`, :class:`LabelLogger`, :class:`MetricLogger`, and their
  ``Async*`` twins) validate an event with the core's contracts *in the caller* (a caller bug,
  such as a NaN feature, raises :class:`ValueError` before anything leaves the process), then
  append it to a bounded in-memory buffer and return. A background task drains the buffer in
  batches to an aiokafka producer, keyed by ``model_id``. Predictions and labels go out as
  batched records by default (:mod:`streamproc.core.batches`: per model, up to ``batch_events``
  events or ``batch_ms`` milliseconds, each record under 1 MiB; ``batched=False`` sends one
  record per event, as any producer may). Kafka being slow or down never blocks
  or raises in ``log()``: the buffer fills, the **oldest** events are dropped first (the newest
  describe the model as it is now), every loss is counted in ``dropped``, and a rate-limited
  warning is logged.
- :class:`DeploymentWatcher` follows the ``deployments`` topic for chosen models, loads each
  deployed artifact (from the registry, checksum verified, or with your own loader) and swaps the
  served model atomically. A version that fails to load is never served; the old one stays.

The wire format is plain JSON (``shared/design.md``), so a server in another language can do the
same with any Kafka client.

Modules: :mod:`~streamproc.client.loggers`, :mod:`~streamproc.client.watcher`, and
:mod:`~streamproc.client.pipeline` (the pipeline side of an external trainer).
"""

from streamproc.client.loggers import (
    AsyncLabelLogger,
    AsyncMetricLogger,
    AsyncPredictionLogger,
    LabelLogger,
    MetricLogger,
    PredictionLogger,
)
from streamproc.client.watcher import DeploymentWatcher, Served

__all__ = [
    "AsyncLabelLogger",
    "AsyncMetricLogger",
    "AsyncPredictionLogger",
    "DeploymentWatcher",
    "LabelLogger",
    "MetricLogger",
    "PredictionLogger",
    "Served",
]
