"""The topics streamproc reads and writes: their logical names, roles and the prefixing rule.

This is the one place the names are written; every module (the core's router, the worker, the
command line, the SDK) takes them from here. A *logical* name is the name of the design
(``predictions``); the name on the cluster is the configured prefix followed by it
(:func:`prefixed`), so that several deployments can share a cluster.

Roles
    - :data:`SOURCE_TOPICS`: written by inference servers and outside monitors; what ``record``
      captures, ``replay`` reads and the watchdog watches for lag.
    - :data:`MONITORED_TOPICS`: what the drift agent consumes: the sources, plus deployments
      and retrain results (a model's own history).
    - :data:`BATCHED_TOPICS`: the topics whose records may carry a columnar batch of events.
    - :data:`TOPICS`: every topic of the design, in the order of :data:`CATALOG`; the worker
      creates them all.

Examples
--------
>>> prefixed("staging.", PREDICTIONS)
'staging.predictions'
>>> [t.name for t in CATALOG if t.event == "RetrainRequest"]
['retrain-requests']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "BATCHED_TOPICS",
    "CATALOG",
    "DEAD_LETTERS",
    "DEPLOYMENTS",
    "LABELS",
    "METRICS",
    "MONITORED_TOPICS",
    "PREDICTIONS",
    "RETRAIN_REQUESTS",
    "RETRAIN_RESULTS",
    "SOURCE_TOPICS",
    "TOPICS",
    "TopicInfo",
    "prefixed",
]

PREDICTIONS: Final = "predictions"
LABELS: Final = "labels"
METRICS: Final = "metrics"
RETRAIN_REQUESTS: Final = "retrain-requests"
RETRAIN_RESULTS: Final = "retrain-results"
DEPLOYMENTS: Final = "deployments"
DEAD_LETTERS: Final = "dead-letters"


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """One topic of the design: what its records are and who writes them.

    Attributes
    ----------
    name : str
        The logical name (without the prefix).
    key : str
        What a record's Kafka key is.
    event : str
        The name of the event class of :mod:`streamproc.core.events` its values follow.
    written_by : str
        Who produces its records.
    """

    name: str
    key: str
    event: str
    written_by: str


CATALOG: Final = (
    TopicInfo(PREDICTIONS, "model_id", "PredictionEvent", "inference servers (client SDK)"),
    TopicInfo(
        LABELS,
        "model_id",
        "LabelEvent",
        "whoever learns the ground truth, possibly hours later",
    ),
    TopicInfo(METRICS, "model_id", "MetricEvent", "inference servers, external monitors"),
    TopicInfo(
        RETRAIN_REQUESTS,
        "model_id",
        "RetrainRequest",
        "the worker's drift agent; manual triggers",
    ),
    TopicInfo(
        RETRAIN_RESULTS,
        "model_id",
        "RetrainResult",
        "the worker's retrain agent; external trainers",
    ),
    TopicInfo(
        DEPLOYMENTS,
        "model_id",
        "DeploymentEvent",
        "the retrain agent (promote), rollback logic",
    ),
    TopicInfo(
        DEAD_LETTERS,
        "the bad record's key",
        "DeadLetter",
        "any agent that cannot accept a record",
    ),
)

TOPICS: Final = tuple(t.name for t in CATALOG)
SOURCE_TOPICS: Final = (PREDICTIONS, LABELS, METRICS)
MONITORED_TOPICS: Final = (*SOURCE_TOPICS, DEPLOYMENTS, RETRAIN_RESULTS)
BATCHED_TOPICS: Final = (PREDICTIONS, LABELS)


def prefixed(prefix: str, name: str) -> str:
    """The name on the cluster of the logical topic ``name``: the prefix, then the name."""
    return f"{prefix}{name}"
