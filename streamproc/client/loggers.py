"""Prediction, label and metric loggers: validate in the caller, buffer, send in batches.

See :mod:`streamproc.client` for the guarantees.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import numbers
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, ClassVar, Self

import orjson
from aiokafka import AIOKafkaProducer

from streamproc.client.ratelimit import RateLimited
from streamproc.core.batches import BATCHED_KINDS, columns
from streamproc.core.events import (
    parse_label,
    parse_metric,
    parse_prediction,
)
from streamproc.core.topics import LABELS, METRICS, PREDICTIONS, prefixed
from streamproc.security import KafkaSecurity

log = logging.getLogger(__name__)

DEFAULT_PRODUCER_CONFIG: Mapping[str, Any] = {"linger_ms": 10, "client_id": "streamproc-client"}


# --------------------------------------------------------------------------- event building


def _check_finite(kind: str, name: str, v: object) -> None:
    """Reject NaN and infinities anywhere: orjson would silently turn them into null."""
    if isinstance(v, bool | str) or v is None:
        return
    if isinstance(v, numbers.Real):
        if not math.isfinite(v):
            raise ValueError(f"{kind}: field '{name}' is not finite ({v}); send a finite number.")
    elif isinstance(v, Mapping):
        for k, x in v.items():
            _check_finite(kind, f"{name}.{k}", x)
    elif isinstance(v, list | tuple):
        for i, x in enumerate(v):
            _check_finite(kind, f"{name}[{i}]", x)


def _record(
    kind: str,
    parse: Callable[[bytes], Any],
    fields: dict[str, Any],
    extra: Mapping[str, Any] | None,
) -> bytes:
    """Validate ``fields`` (plus ``extra``) against the core contract; return the JSON value."""
    obj = {k: v for k, v in fields.items() if v is not None}
    if extra:
        clash = sorted(set(extra) & set(fields))
        if clash:
            raise ValueError(f"{kind}: extra fields {clash} would replace the event's own fields.")
        obj = {**extra, **obj}
    for name, v in obj.items():
        _check_finite(kind, name, v)
    try:
        raw = orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError as exc:  # orjson.JSONEncodeError: a value JSON has no type for
        raise ValueError(f"{kind}: cannot be sent as JSON ({exc}).") from None
    parse(raw)  # InvalidEvent (a ValueError) names the field and says what to do
    return raw


# --------------------------------------------------------------------------- batching

#: A record the SDK sends: (key, value, events it carries).
Outgoing = tuple[bytes, bytes, int]
#: Default size limit of a batched record: under the worker's 1 MiB limit with room for the
#: Kafka record's own overhead under the producer's default ``max_request_size`` (1 MiB).
DEFAULT_MAX_RECORD_BYTES = 1_000_000


class _Batcher:
    """Events waiting to become batched records: per key (model), in order.

    A key's events are cut into a record when it holds ``max_events`` of them, when one more
    would take the record past ``max_bytes``, or once its oldest has waited ``max_s``. An event
    with fields outside the contract (``extra``) has no place in a batch: it goes alone, after
    the events of its model that came before it.
    """

    def __init__(self, kind: str, max_events: int, max_s: float, max_bytes: int) -> None:
        self.kind = kind
        required, optional = BATCHED_KINDS[kind]
        self.known = {*required, *optional, "model_id", "model_version", "features"}
        self.max_events = max_events
        self.max_s = max_s
        self.max_bytes = max_bytes
        self._events: dict[bytes, list[dict[str, Any]]] = {}
        self._bytes: dict[bytes, int] = {}
        self._since: dict[bytes, float] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self._events.values())

    def add(self, key: bytes, raw: bytes, now: float) -> list[Outgoing]:
        """Take one event's JSON; return the records it completed (possibly none)."""
        obj = orjson.loads(raw)
        if not self.known.issuperset(obj):
            return [*self.cut(key), (key, raw, 1)]
        out = []
        if self._bytes.get(key, 0) + len(raw) > self.max_bytes:
            out = self.cut(key)
        if key not in self._events:
            self._events[key], self._bytes[key], self._since[key] = [], 0, now
        self._events[key].append(obj)
        self._bytes[key] += len(raw)
        if len(self._events[key]) >= self.max_events:
            out += self.cut(key)
        return out

    def due(self, now: float) -> list[Outgoing]:
        """Records of the keys whose oldest event has waited ``max_s``."""
        old = [k for k, t in self._since.items() if now - t >= self.max_s]
        return [r for k in old for r in self.cut(k)]

    def wait_s(self, now: float) -> float | None:
        """Seconds until the next key is due; None when nothing waits."""
        if not self._since:
            return None
        return max(min(self._since.values()) + self.max_s - now, 0.0)

    def all(self) -> list[Outgoing]:
        return [r for k in list(self._events) for r in self.cut(k)]

    def cut(self, key: bytes) -> list[Outgoing]:
        events = self._events.pop(key, None)
        self._bytes.pop(key, None)
        self._since.pop(key, None)
        return self._encode(key, events) if events else []

    def _encode(self, key: bytes, events: list[dict[str, Any]]) -> list[Outgoing]:
        """One record, or halves until each fits ``max_bytes`` (the sizes were an estimate)."""
        if len(events) == 1:  # a single event goes as one: the worker reads either form
            return [(key, orjson.dumps(events[0], option=orjson.OPT_SERIALIZE_NUMPY), 1)]
        value = orjson.dumps(columns(self.kind, events), option=orjson.OPT_SERIALIZE_NUMPY)
        if len(value) <= self.max_bytes:
            return [(key, value, len(events))]
        half = len(events) // 2
        return self._encode(key, events[:half]) + self._encode(key, events[half:])


# --------------------------------------------------------------------------- loggers


class _BufferedLogger:
    """Bounded buffer plus the coroutine that drains it to Kafka; shared by sync and async."""

    _logical: ClassVar[str] = ""

    def __init__(
        self,
        bootstrap_servers: str,
        topic_prefix: str = "",
        *,
        buffer_size: int = 10_000,
        batch_size: int = 500,
        producer_config: Mapping[str, Any] | None = None,
        warn_every_s: float = 30.0,
        security: KafkaSecurity | None = None,
        batched: bool = True,
        batch_events: int = 1000,
        batch_ms: float = 100.0,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ) -> None:
        if buffer_size < 1 or batch_size < 1 or batch_events < 1:
            raise ValueError("buffer_size, batch_size and batch_events must be at least 1.")
        if not batch_ms >= 0 or max_record_bytes < 1024:
            raise ValueError("batch_ms must be >= 0 and max_record_bytes at least 1024.")
        kind = self._logical.removesuffix("s")
        #: Sends batched records (None: one record per event; metrics always are).
        self.batcher = (
            _Batcher(kind, batch_events, batch_ms / 1000.0, max_record_bytes)
            if batched and kind in BATCHED_KINDS
            else None
        )
        #: Kafka records sent (fewer than ``sent`` events when batched).
        self.records = 0
        self.bootstrap_servers = bootstrap_servers
        self.topic = prefixed(topic_prefix, self._logical)
        self.buffer_size = buffer_size
        self.batch_size = batch_size
        self.producer_config = {**DEFAULT_PRODUCER_CONFIG, **(producer_config or {})}
        #: TLS / SASL settings; ``producer_config`` overrides any of them.
        self.security = security if security is not None else KafkaSecurity.from_env()
        self._security_kwargs = self.security.aiokafka_kwargs()  # bad TLS files fail here
        #: Events lost: pushed out of the full buffer (oldest first) or still buffered when
        #: ``close()`` gave up, plus those logged after ``close()``.
        self.dropped = 0
        #: Events Kafka acknowledged.
        self.sent = 0
        #: Events handed to the producer that it failed to deliver (after its own retries).
        self.failed = 0
        self._buf: deque[tuple[bytes, bytes]] = deque(maxlen=buffer_size)
        self._lock = threading.Lock()
        self._unacked = 0  # taken from the buffer, not yet acked or failed
        self._warn = RateLimited(warn_every_s)
        self._closed = False
        self._notified = False
        self._wake: Callable[[], object] | None = None
        self._stopping: asyncio.Event | None = None
        self._has_data: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._producer: Any = None
        self._started()

    def _started(self) -> None:
        """What a lifecycle does once the logger is built (the sync one starts its thread)."""

    # -- caller side (any thread, never blocks on Kafka) ------------------------------------

    @property
    def buffered(self) -> int:
        """Events waiting in the buffer."""
        return len(self._buf)

    def _queue(
        self,
        kind: str,
        parse: Callable[[bytes], Any],
        fields: dict[str, Any],
        ts: float | None,
        extra: Mapping[str, Any] | None,
        fix: str,
    ) -> None:
        """Validate one event in the caller, then buffer it keyed by its model.

        The event's payload field is checked first, so a missing one says what to send.
        """
        payload = {"prediction": "prediction", "label": "label", "metric": "value"}[kind]
        if fields[payload] is None:
            raise ValueError(f"{kind}: field '{payload}' is missing; {fix}.")
        fields["ts"] = time.time() if ts is None else ts
        self._put(str(fields["model_id"]).encode(), _record(kind, parse, fields, extra))

    def _put(self, key: bytes, value: bytes) -> None:
        wake = None
        with self._lock:
            closed = self._closed
            full = not closed and len(self._buf) == self.buffer_size
            if closed or full:
                self.dropped += 1  # when full, append() below pushes out the oldest
            if not closed:
                self._buf.append((key, value))
                wake = None if self._notified else self._wake
                if wake is not None:
                    self._notified = True
        if wake is not None:
            wake()
        if closed:
            self._warn.warn("closed", "%s logger is closed; event dropped.", self.topic)
        elif full:
            self._warn.warn(
                "full",
                "%s buffer full (%d events): Kafka at %s is slow or unreachable; dropping "
                "the oldest events (%d dropped so far).",
                self.topic,
                self.buffer_size,
                self.bootstrap_servers,
                self.dropped,
            )

    def _idle(self) -> bool:
        with self._lock:
            return not self._buf and self._unacked == 0

    # -- loop side ---------------------------------------------------------------------------

    def _bind(self) -> None:
        """Attach to the running loop: the drain task and the wake-up hook."""
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        has_data = self._has_data = asyncio.Event()
        self._wake = lambda: loop.call_soon_threadsafe(has_data.set)
        self._task = loop.create_task(self._run(), name=f"streamproc-{self._logical}-logger")

    async def _connect(self) -> Any:
        """A started producer, retrying with backoff until it connects or close() is called."""
        assert self._stopping is not None
        delay = 0.5
        while not self._stopping.is_set():
            try:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap_servers,
                    **{**self._security_kwargs, **self.producer_config},
                )
            except (TypeError, ValueError) as exc:  # a bad producer_config: retrying won't help
                log.error(
                    "%s logger cannot create its Kafka producer (%s); fix producer_config. "
                    "Events will be dropped.",
                    self.topic,
                    exc,
                )
                return None
            try:
                await producer.start()
                return producer
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await producer.stop()
                await self._warn.cannot_connect(
                    f"{self.topic} logger",
                    self.bootstrap_servers,
                    self.security,
                    exc,
                    f"buffering up to {self.buffer_size} events and retrying",
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, 10.0)
        return None

    def _take(self) -> list[tuple[bytes, bytes]]:
        with self._lock:
            n = min(self.batch_size, len(self._buf))
            batch = [self._buf.popleft() for _ in range(n)]
            self._unacked += n
        return batch

    def _done(self, fut: asyncio.Future[Any], n: int = 1) -> None:
        self._unacked -= n
        if fut.cancelled() or fut.exception() is not None:
            self.failed += n
            err = "cancelled" if fut.cancelled() else fut.exception()
            self._warn.warn(
                "failed", "%s: Kafka did not take %d event(s) (%s).", self.topic, n, err
            )
        else:
            self.sent += n
            self.records += 1

    async def _run(self) -> None:
        assert self._stopping is not None and self._has_data is not None
        self._producer = producer = await self._connect()
        if producer is None:
            return
        if self.batcher is not None:
            await self._run_batched(producer, self.batcher)
            return
        while True:
            batch = self._take()
            if batch:
                for i, (key, value) in enumerate(batch):
                    try:
                        fut = await producer.send(self.topic, value=value, key=key)
                    except asyncio.CancelledError:
                        self._unacked -= len(batch) - i
                        self.failed += len(batch) - i
                        raise
                    except Exception as exc:
                        self._unacked -= 1
                        self.failed += 1
                        self._warn.warn("send", "%s: send failed (%s).", self.topic, exc)
                        continue
                    fut.add_done_callback(self._done)
                continue
            if self._stopping.is_set():
                return
            self._notified = False
            if self._buf:
                continue
            await self._has_data.wait()
            self._has_data.clear()

    async def _run_batched(self, producer: Any, batcher: _Batcher) -> None:
        """Drain the buffer into batched records (see :class:`_Batcher`)."""
        assert self._stopping is not None and self._has_data is not None
        try:
            while True:
                taken = self._take()
                now = time.monotonic()
                ready = [r for key, raw in taken for r in self._batch(batcher, key, raw, now)]
                ready += batcher.due(now)
                if not taken and self._stopping.is_set():
                    ready += batcher.all()
                await self._send_records(producer, ready)
                if taken:
                    continue
                if self._stopping.is_set():
                    return
                self._notified = False
                if self._buf:
                    continue
                wait = batcher.wait_s(now)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._has_data.wait(), wait)
                self._has_data.clear()
        except asyncio.CancelledError:
            lost = len(batcher)
            batcher.all()
            self._unacked -= lost
            self.failed += lost
            raise

    def _batch(self, batcher: _Batcher, key: bytes, raw: bytes, now: float) -> list[Outgoing]:
        try:
            return batcher.add(key, raw, now)
        except Exception:  # a bug in batching must not stop the logger: send the event alone
            log.exception("%s: could not batch an event; sending it alone", self.topic)
            return [(key, raw, 1)]

    async def _send_records(self, producer: Any, records: list[Outgoing]) -> None:
        for i, (key, value, n) in enumerate(records):
            try:
                fut = await producer.send(self.topic, value=value, key=key)
            except asyncio.CancelledError:
                left = sum(r[2] for r in records[i:])
                self._unacked -= left
                self.failed += left
                raise
            except Exception as exc:
                self._unacked -= n
                self.failed += n
                self._warn.warn("send", "%s: send failed (%s).", self.topic, exc)
                continue
            fut.add_done_callback(functools.partial(self._done, n=n))

    async def _aflush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._idle():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def _aclose(self, timeout: float) -> None:
        if self._task is None or self._stopping is None or self._has_data is None:
            self._finish_close()
            return
        deadline = time.monotonic() + timeout
        self._stopping.set()  # stops connect retries; the drain task ends once the buffer is
        self._has_data.set()  # empty
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        except Exception:
            log.exception("%s logger's drain task failed", self.topic)
        if self._producer is not None:
            remaining = max(deadline - time.monotonic(), 0.05)
            try:  # flushes what the producer holds, waiting for acks
                await asyncio.wait_for(self._producer.stop(), remaining)
            except Exception as exc:
                self._warn.warn("stop", "%s: producer did not stop cleanly (%s).", self.topic, exc)
        self._finish_close()

    def _finish_close(self) -> None:
        with self._lock:
            self._closed = True
            lost = len(self._buf)
            self._buf.clear()
            self.dropped += lost
        if lost:
            log.warning(
                "%s logger closed with %d undelivered events (dropped: %d in all).",
                self.topic,
                lost,
                self.dropped,
            )


class _AsyncLogger(_BufferedLogger):
    """Async lifecycle: ``await start()`` on your loop, plain ``log()``, ``await close()``."""

    async def start(self) -> None:
        """Start draining on the running loop. Events logged before are kept."""
        if self._task is None:
            self._bind()

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every buffered event is acked or failed; False if ``timeout`` passed."""
        return await self._aflush(timeout)

    async def close(self, timeout: float = 10.0) -> None:
        """Deliver what is buffered for up to ``timeout`` seconds, then stop; never raises."""
        await self._aclose(timeout)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class _SyncLogger(_BufferedLogger):
    """Sync lifecycle: its own event loop in a daemon thread, started by the constructor."""

    def _started(self) -> None:
        # Called at the end of the shared constructor: the loop thread needs the whole object.
        self._loop = asyncio.new_event_loop()
        started = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.call_soon(self._bind)
            self._loop.call_soon(started.set)
            self._loop.run_forever()

        self._thread = threading.Thread(
            target=main, name=f"streamproc-{self._logical}-logger", daemon=True
        )
        self._thread.start()
        started.wait(5.0)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every buffered event is acked or failed; False if ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        while not self._idle():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is buffered for up to ``timeout`` seconds, then stop; never raises."""
        if self._closed or not self._thread.is_alive():
            self._finish_close()
            return
        fut = asyncio.run_coroutine_threadsafe(self._aclose(timeout), self._loop)
        try:
            fut.result(timeout + 0.5)
        except Exception as exc:  # a timeout here means the loop itself is stuck
            log.warning("%s logger did not close in %.1fs (%s).", self.topic, timeout, exc)
            self._finish_close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(0.5)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _PredictionLog(_BufferedLogger):
    _logical = PREDICTIONS

    def log(
        self,
        model_id: str,
        model_version: str,
        features: Mapping[str, Any] | None,
        prediction: Any,
        *,
        score: float | None = None,
        event_id: str | None = None,
        ts: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Queue one prediction; return its ``event_id`` (send it with the label later).

        Raises ValueError if the event breaks the contract; never because of Kafka.
        """
        eid = event_id if event_id is not None else uuid.uuid4().hex
        fields = {
            "event_id": eid,
            "model_id": model_id,
            "model_version": model_version,
            "features": None if features is None else dict(features),
            "prediction": prediction,
            "score": score,
        }
        self._queue("prediction", parse_prediction, fields, ts, extra, "send the model's output")
        return eid


class _LabelLog(_BufferedLogger):
    _logical = LABELS

    def log(
        self,
        model_id: str,
        event_id: str,
        label: Any,
        *,
        ts: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue the ground truth for the prediction ``event_id``.

        Raises ValueError if the event breaks the contract; never because of Kafka.
        """
        fields = {"event_id": event_id, "model_id": model_id, "label": label}
        self._queue("label", parse_label, fields, ts, extra, "send the observed outcome")


class _MetricLog(_BufferedLogger):
    _logical = METRICS

    def log(
        self,
        model_id: str,
        name: str,
        value: float,
        *,
        model_version: str | None = None,
        ts: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue one metric value (e.g. ``drift``, ``accuracy``, ``latency_ms``).

        Raises ValueError if the event breaks the contract; never because of Kafka.
        """
        fields = {
            "model_id": model_id,
            "name": name,
            "value": value,
            "model_version": model_version,
        }
        self._queue("metric", parse_metric, fields, ts, extra, "send a finite number")


class PredictionLogger(_PredictionLog, _SyncLogger):
    """Stream predictions to ``<prefix>predictions`` from sync code (any thread).

    Parameters
    ----------
    bootstrap_servers : str
        Kafka bootstrap servers, ``"host:port[,host:port]"``.
    topic_prefix : str
        Prepended to the topic name (``STREAMPROC_TOPIC_PREFIX`` of the workers).
    buffer_size : int
        Events held while Kafka is slow or down; beyond it the oldest are dropped and counted
        in ``dropped``.
    batch_size : int
        Events taken from the buffer per drain step.
    batched : bool
        Send batched records (default; predictions and labels): per model, up to
        ``batch_events`` events or ``batch_ms`` milliseconds, each record at most
        ``max_record_bytes``. False sends one record per event. Events given ``extra`` fields
        always go alone (a batch has no per-event place for them).
    batch_events : int
        Most events in one batched record (1,000 by default: the per-record cost of the
        worker's consumer is then negligible).
    batch_ms : float
        Longest an event waits for its batch to fill, in milliseconds.
    max_record_bytes : int
        Largest batched record, in bytes (the worker refuses records over 1 MiB).
    producer_config : mapping, optional
        Extra ``AIOKafkaProducer`` keyword arguments (``acks``, ``linger_ms``,
        ``compression_type``...); they override ``security``.
    warn_every_s : float
        At most one warning of each kind (buffer full, broker unreachable) per this many seconds.
    security : KafkaSecurity, optional
        TLS / SASL settings; by default :meth:`KafkaSecurity.from_env`
        (``STREAMPROC_SECURITY_PROTOCOL``, ``STREAMPROC_SASL_*``, ``STREAMPROC_SSL_*``).
        Refused credentials are logged as an error naming the variables to check.

    Examples
    --------
    >>> preds = PredictionLogger("127.0.0.1:9092", "")  # doctest: +SKIP
    >>> eid = preds.log("fraud-eu", "v3", {"amount": 12.5}, True, score=0.91)  # doctest: +SKIP
    >>> preds.close(timeout=5)  # doctest: +SKIP
    """


class LabelLogger(_LabelLog, _SyncLogger):
    """Stream labels (delayed ground truth) to ``<prefix>labels`` from sync code.

    Parameters are those of :class:`PredictionLogger`.

    Examples
    --------
    >>> labels = LabelLogger("127.0.0.1:9092")  # doctest: +SKIP
    >>> labels.log("fraud-eu", eid, False)  # doctest: +SKIP
    """


class MetricLogger(_MetricLog, _SyncLogger):
    """Stream metrics to ``<prefix>metrics`` from sync code.

    Parameters are those of :class:`PredictionLogger`.

    Examples
    --------
    >>> metrics = MetricLogger("127.0.0.1:9092")  # doctest: +SKIP
    >>> metrics.log("fraud-eu", "drift", 0.12, model_version="v3")  # doctest: +SKIP
    """


class AsyncPredictionLogger(_PredictionLog, _AsyncLogger):
    """:class:`PredictionLogger` for asyncio servers: drains on your event loop.

    ``log()`` is a plain (non-async) call that only validates and buffers; ``start()``,
    ``flush()`` and ``close()`` are coroutines. Parameters are those of
    :class:`PredictionLogger`.

    Examples
    --------
    >>> async def serve():  # doctest: +SKIP
    ...     async with AsyncPredictionLogger("127.0.0.1:9092") as preds:
    ...         preds.log("fraud-eu", "v3", {"amount": 12.5}, True)
    """


class AsyncLabelLogger(_LabelLog, _AsyncLogger):
    """:class:`LabelLogger` for asyncio servers (see :class:`AsyncPredictionLogger`)."""


class AsyncMetricLogger(_MetricLog, _AsyncLogger):
    """:class:`MetricLogger` for asyncio servers (see :class:`AsyncPredictionLogger`)."""
