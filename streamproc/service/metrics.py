"""Prometheus metrics of one worker, served at ``/metrics`` on its web port.

Cardinality stays bounded with any number of models: a ``model`` label is given to at most
``max_models`` models (``STREAMPROC_METRICS_MODELS``, default 100). Counters label the first
``max_models`` models a worker sees and count every other model under ``model="_other"``; the
detector gauges are exported, at scrape time, for the ``max_models`` models whose headline
signal is nearest its threshold, and only for headline signals (error, prediction, score,
reported metrics, and the worst feature as a ratio). Other labels take fixed values (topics,
dead-letter reasons, result statuses, deployment actions). Per labelled model that is 5 counter
series (events by topic, requests, joins) plus 3 per headline signal; so a worker exports at most
about ``max_models * 20`` series (one reported metric) whatever it serves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from streamproc.core.events import DEPLOY_ACTIONS, RESULT_STATUSES
from streamproc.core.timeline import SignalStatus, headline

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4"  # UTF-8 by definition; aiohttp refuses a charset here
OTHER = "_other"
_LATENCY_BUCKETS = (1, 10, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400)
_RETRAIN_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 1800, 6 * 3600)


class Metrics:
    """The worker's metrics; ``signals`` returns each model's detectors for the gauges."""

    def __init__(
        self,
        signals: Callable[[], dict[str, list[SignalStatus]]] | None = None,
        max_models: int = 100,
    ) -> None:
        disable_created_metrics()  # *_created series double the output and say little here
        self.max_models = max_models
        self._labelled: set[str] = set()
        r = self.registry = CollectorRegistry()
        self.events = Counter(
            "streamproc_events", "Records applied to a model, by topic.", ["topic", "model"],
            registry=r,
        )  # fmt: skip
        self.dead_letters = Counter(
            "streamproc_dead_letters", "Records sent to dead-letters, by topic and reason.",
            ["topic", "reason"], registry=r,
        )  # fmt: skip
        self.requests = Counter(
            "streamproc_retrain_requests", "Retrain requests emitted.", ["model"], registry=r
        )
        self.results = Counter(
            "streamproc_retrain_results", "Retrain results seen, by status.", ["status"],
            registry=r,
        )  # fmt: skip
        self.deployments = Counter(
            "streamproc_deployments", "Deployments seen, by action (promote, rollback).",
            ["action"], registry=r,
        )  # fmt: skip
        # Created at 0: Prometheus' increase() sees the first failed retrain or rollback only
        # if the series existed before it (the alert rules in deploy/prometheus count on it).
        for status in sorted(RESULT_STATUSES):
            self.results.labels(status)
        for action in sorted(DEPLOY_ACTIONS):
            self.deployments.labels(action)
        self.joins = Counter(
            "streamproc_label_joins", "Labels joined to their predictions.", ["model"], registry=r
        )
        self.join_latency = Histogram(
            "streamproc_label_join_latency_seconds",
            "Event time from a prediction to its label.",
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.lag = Gauge(
            "streamproc_processing_lag_seconds",
            "Wall time minus Kafka time of the last record processed, by topic.",
            ["topic"], registry=r,
        )  # fmt: skip
        self.held_partitions = Gauge(
            "streamproc_held_partitions",
            "Predictions or labels partitions paused because their records ran ahead of the "
            "other topic's in record time (a worker catching up).",
            registry=r,
        )  # fmt: skip
        self.retrain_duration = Histogram(
            "streamproc_retrain_duration_seconds",
            "Wall time from taking a retrain request to publishing its result.",
            buckets=_RETRAIN_BUCKETS, registry=r,
        )  # fmt: skip
        self.in_flight = Gauge(
            "streamproc_retrains_in_flight", "Retrains being trained or awaited.", registry=r
        )
        self.evicted_for_bytes = Gauge(
            "streamproc_state_evicted_for_bytes",
            "Waiting predictions/labels (part=join) and training examples (part=window) a "
            "model dropped to keep its state within its byte bounds, as counted in its state.",
            ["model", "part"], registry=r,
        )  # fmt: skip
        if signals is not None:
            r.register(_SignalCollector(signals, max_models))

    def model(self, model_id: str) -> str:
        """The label value for ``model_id``: itself for the first ``max_models``, else _other."""
        if model_id in self._labelled:
            return model_id
        if len(self._labelled) < self.max_models:
            self._labelled.add(model_id)
            return model_id
        return OTHER

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _SignalCollector(Collector):
    """Detector statistic, threshold and fired count per model and headline signal."""

    def __init__(self, signals: Callable[[], dict[str, list[SignalStatus]]], top: int) -> None:
        self.signals = signals
        self.top = top

    def collect(self) -> Iterator[Any]:
        stat = GaugeMetricFamily(
            "streamproc_signal_statistic",
            "A detector's current statistic (worst feature: statistic / threshold).",
            labels=["model", "signal", "detector"],
        )
        thr = GaugeMetricFamily(
            "streamproc_signal_threshold",
            "The value the statistic must reach to fire.",
            labels=["model", "signal", "detector"],
        )
        fired = CounterMetricFamily(
            "streamproc_signal_fired",
            "Times a detector fired (before confirmation and quorum).",
            labels=["model", "signal"],
        )
        heads = {m: headline(s) for m, s in self.signals().items()}
        nearest = sorted(heads, key=lambda m: -max((s.ratio for s in heads[m]), default=0.0))
        for model in nearest[: self.top]:
            for s in heads[model]:
                stat.add_metric([model, s.signal, s.detector], _finite(s.statistic))
                thr.add_metric([model, s.signal, s.detector], _finite(s.threshold))
                fired.add_metric([model, s.signal], s.fired)
        yield from (stat, thr, fired)


def _finite(x: float) -> float:
    return x if x == x else 0.0  # a detector with no data yet reports NaN
