"""The pipeline side of an external trainer: answer a training job with a RetrainResult.

A webhook, Airflow or Kubeflow trainer hands the job (``TrainingJob.to_json_obj()`` plus
``callback: {topic, key}``) to your pipeline. Its last task calls :func:`publish_result` with
that job, the candidate's predictions for the job's holdout and where the artifact lives; the
result goes to the callback topic, keyed by model id, and the waiting worker judges it.

Examples
--------
>>> job = {"request": {"request_id": "rr-1", "model_id": "m"}, "holdout": [{}, {}],
...        "callback": {"topic": "retrain-results", "key": "m"}}
>>> r = result_for(job, [True, False], "models:/m/4", {"auc": 0.91})
>>> r.request_id, r.status, r.metrics["holdout_predictions"], r.extra["artifact_uri"]
('rr-1', 'succeeded', [True, False], 'models:/m/4')
>>> result_for(job, [True], "s3://b/m.pkl")
Traceback (most recent call last):
...
ValueError: 1 holdout predictions for 2 holdout examples in job rr-1; one per example, in order
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from streamproc.core.events import RetrainResult, encode, parse_retrain_result
from streamproc.security import KafkaSecurity

__all__ = ["publish_result", "result_for"]


def result_for(
    job: Mapping[str, Any],
    holdout_predictions: Sequence[Any] | None,
    artifact_uri: str | None,
    metrics: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> RetrainResult:
    """The RetrainResult answering ``job``: ``succeeded``, or ``failed`` with ``error``.

    Raises
    ------
    ValueError
        The job is not one streamproc sent, or the predictions do not match its holdout.
    """
    try:
        rid, mid = job["request"]["request_id"], job["request"]["model_id"]
    except (KeyError, TypeError):
        raise ValueError(
            "job lacks request.request_id / request.model_id; pass the job exactly as the "
            "trainer sent it (the dag run's conf, or the pipeline's job parameter)"
        ) from None
    now = time.time()
    if error is not None:
        return parse_retrain_result(encode(RetrainResult(rid, mid, "failed", now, error=error)))
    preds = list(holdout_predictions or [])
    if len(preds) != len(job.get("holdout", [])):
        raise ValueError(
            f"{len(preds)} holdout predictions for {len(job.get('holdout', []))} holdout "
            f"examples in job {rid}; one per example, in order"
        )
    if not artifact_uri:
        raise ValueError(f"job {rid}: give the artifact_uri the trained model was stored at")
    out = {**(metrics or {}), "holdout_predictions": preds}
    result = RetrainResult(
        rid, mid, "succeeded", now, None, out, extra={"artifact_uri": artifact_uri}
    )
    return parse_retrain_result(encode(result))  # the worker's own check, here and now


def publish_result(
    bootstrap_servers: str,
    job: Mapping[str, Any],
    holdout_predictions: Sequence[Any] | None,
    artifact_uri: str | None,
    metrics: Mapping[str, Any] | None = None,
    error: str | None = None,
    security: KafkaSecurity | None = None,
) -> RetrainResult:
    """Publish :func:`result_for` on the job's callback topic and wait for the broker's ack.

    ``security`` defaults to :meth:`KafkaSecurity.from_env` (the ``STREAMPROC_SASL_*`` /
    ``STREAMPROC_SSL_*`` variables).
    """
    result = result_for(job, holdout_predictions, artifact_uri, metrics, error)
    callback = job.get("callback") or {}
    topic, key = callback.get("topic"), callback.get("key", result.model_id)
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"job {result.request_id} has no callback.topic to answer on")
    sec = security if security is not None else KafkaSecurity.from_env()
    asyncio.run(_send(bootstrap_servers, topic, str(key).encode(), encode(result), sec))
    return result


async def _send(bootstrap: str, topic: str, key: bytes, value: bytes, sec: KafkaSecurity) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **sec.aiokafka_kwargs())
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()
