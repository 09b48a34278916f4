"""Hot swap: follow the deployments topic and swap the served model atomically.

Examples
--------
>>> import pickle, tempfile
>>> from streamproc.core.events import DeploymentEvent
>>> from streamproc.core.registry import FileRegistry
>>> from streamproc.core.example import Example
>>> from streamproc.core.training import train
>>> reg = FileRegistry(tempfile.mkdtemp())
>>> model = train([Example({"x": float(i % 10)}, i % 10 >= 5, None, "v1", 0.0) for i in range(200)])
>>> _ = reg.register("m", "v2", pickle.dumps(model), created_ts=0.0)
>>> watcher = DeploymentWatcher("127.0.0.1:9092", "", ["m"], registry_root=reg.root)
>>> watcher.handle(DeploymentEvent("dep-1", "m", "v2", "promote", ts=1.0))
True
>>> watcher.current("m").version, watcher.predict("m", {"x": 9.0})
('v2', True)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self

from aiokafka import AIOKafkaConsumer

from streamproc.client.ratelimit import RateLimited
from streamproc.core.events import (
    DeploymentEvent,
    InvalidEvent,
    parse_deployment,
)
from streamproc.core.registry import FileRegistry, Registry
from streamproc.core.topics import DEPLOYMENTS, prefixed
from streamproc.security import KafkaSecurity

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- hot swap


class Served(NamedTuple):
    """The version a server serves for a model and the loaded model: swapped as one value."""

    version: str
    model: Any


Loader = Callable[[DeploymentEvent], Any]
OnSwap = Callable[[DeploymentEvent, Any], None]


class DeploymentWatcher:
    """Follow ``<prefix>deployments`` and hot-swap the served model of each watched model id.

    Every promote or rollback event for a watched model loads that version's artifact and then
    replaces the served ``(version, model)`` pair with one attribute assignment, so a request
    sees either the old pair or the new one, never a mix. A version that fails to load (bad
    checksum, missing version, not a model) is logged, counted in ``failures``, and the old
    model keeps serving. A repeated ``deployment_id`` is ignored once applied.

    Parameters
    ----------
    bootstrap_servers : str
        Kafka bootstrap servers.
    topic_prefix : str
        The workers' topic prefix.
    model_ids : iterable of str
        The models this server serves; other models' deployments are ignored.
    registry_root : path, optional
        The workers' registry folder (``<STREAMPROC_DATA_DIR>/registry``, a shared mount across
        hosts). The default loader reads the version from it (sha256 verified) and unpickles it.
        Built-in artifacts are pickles: point this only at a registry you trust.
    registry : Registry, optional
        Any registry instead of a folder, e.g. the workers' ``MlflowRegistry`` (with
        ``STREAMPROC_REGISTRY=mlflow``). A deployment whose ``artifact_uri`` is ``models:/...``
        is loaded from MLflow by that URI (sha256 verified against the version's tag); without
        an MLflow ``registry``, one on ``MLFLOW_TRACKING_URI`` is used.
    loader : callable, optional
        ``loader(event) -> model`` replaces the default loader, e.g. to fetch from S3 or MLflow
        using ``event.artifact_uri``. It runs in the watcher's thread.
    on_swap : callable, optional
        ``on_swap(event, model)``, called after each swap; its exceptions are logged.
    from_beginning : bool
        True (default): on start, read the topic from the beginning and load only each model's
        latest deployment, so a restarted server serves what is deployed now. False: only
        deployments published after start.
    consumer_config : mapping, optional
        Extra ``AIOKafkaConsumer`` keyword arguments; they override ``security``.
    security : KafkaSecurity, optional
        TLS / SASL settings; by default :meth:`KafkaSecurity.from_env`.

    Examples
    --------
    >>> watcher = DeploymentWatcher(  # doctest: +SKIP
    ...     "127.0.0.1:9092", "", ["fraud-eu"], registry_root="/data/streamproc/registry"
    ... ).start()
    >>> watcher.serve("fraud-eu", "v1", initial_model)  # doctest: +SKIP
    >>> watcher.predict("fraud-eu", {"amount": 12.5})  # doctest: +SKIP
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic_prefix: str,
        model_ids: Iterable[str],
        registry_root: str | Path | None = None,
        loader: Loader | None = None,
        on_swap: OnSwap | None = None,
        *,
        registry: Registry | None = None,
        from_beginning: bool = True,
        consumer_config: Mapping[str, Any] | None = None,
        security: KafkaSecurity | None = None,
    ) -> None:
        if loader is None and registry_root is None and registry is None:
            raise ValueError(
                "DeploymentWatcher needs registry_root or a loader(event) callback "
                "(or registry=, any Registry such as an MlflowRegistry)."
            )
        self.bootstrap_servers = bootstrap_servers
        self.topic = prefixed(topic_prefix, DEPLOYMENTS)
        self.model_ids = frozenset([model_ids] if isinstance(model_ids, str) else model_ids)
        self._keys = frozenset(m.encode() for m in self.model_ids)
        self._registry: Registry | None = registry
        if registry is None and registry_root is not None:
            self._registry = FileRegistry(registry_root)
        self._models_uri_registry: Any = None
        self._loader: Loader = loader if loader is not None else self._load_from_registry
        self.on_swap = on_swap
        self.from_beginning = from_beginning
        self.consumer_config = dict(consumer_config or {})
        self.security = security if security is not None else KafkaSecurity.from_env()
        self._security_kwargs = self.security.aiokafka_kwargs()
        #: Deployments that could not be loaded (the old model kept serving).
        self.failures = 0
        #: Swaps done.
        self.swaps = 0
        self._served: Mapping[str, Served] = {}  # replaced whole, never mutated
        self._previous: dict[str, Served] = {}  # the pair each swap replaced, for rollbacks
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._warn = RateLimited(30.0)

    # -- serving -----------------------------------------------------------------------------

    def current(self, model_id: str) -> Served | None:
        """The ``(version, model)`` pair served for ``model_id``, or None before any."""
        return self._served.get(model_id)

    def predict(self, model_id: str, features: Mapping[str, Any]) -> Any:
        """``current(model_id).model.predict(features)``; LookupError if nothing is served."""
        served = self._served.get(model_id)
        if served is None:
            raise LookupError(f"no model served for {model_id!r} yet; serve() one or deploy one.")
        return served.model.predict(features)

    def serve(self, model_id: str, version: str, model: Any) -> None:
        """Serve a model you loaded yourself (e.g. the one the server boots with)."""
        with self._lock:
            self._swap(model_id, Served(version, model))

    def _swap(self, model_id: str, new: Served) -> None:
        old = self._served.get(model_id)
        if old is not None:
            self._previous[model_id] = old
        self._served = {**self._served, model_id: new}  # the one atomic step
        with self._changed:
            self._changed.notify_all()

    def wait_for_version(self, model_id: str, version: str, timeout: float = 30.0) -> bool:
        """Block until ``version`` is served for ``model_id``; False if ``timeout`` passed."""

        def serving() -> bool:
            s = self._served.get(model_id)
            return s is not None and s.version == version

        with self._changed:
            return self._changed.wait_for(serving, timeout)

    # -- deployments -------------------------------------------------------------------------

    def _load_from_registry(self, event: DeploymentEvent) -> Any:
        uri = event.artifact_uri or ""
        if uri.startswith("models:/"):
            return pickle.loads(self._mlflow().load_uri(uri))
        if self._registry is None:
            raise ValueError(
                f"deployment {event.deployment_id} has artifact_uri {uri!r}, not models:/...; "
                "give the watcher registry_root or a registry to load it from"
            )
        return pickle.loads(self._registry.load(event.model_id, event.version))

    def _mlflow(self) -> Any:
        """The MLflow registry ``models:/`` URIs load from (built on first use)."""
        if hasattr(self._registry, "load_uri"):
            return self._registry
        if self._models_uri_registry is None:
            from streamproc.service.training.mlflow_registry import MlflowRegistry  # imports mlflow

            self._models_uri_registry = MlflowRegistry()
        return self._models_uri_registry

    def handle(self, event: DeploymentEvent) -> bool:
        """Apply one deployment event; True if the served model was swapped.

        Ignored: other models, an already applied ``deployment_id``, the version already
        served. A rollback to the version the last swap replaced reuses that model. A load
        failure keeps the old model and counts in ``failures``; the same id may be retried.
        """
        mid = event.model_id
        if mid not in self.model_ids:
            return False
        with self._lock:
            if event.deployment_id in self._seen:
                log.debug("deployment %s already applied; ignored", event.deployment_id)
                return False
            cur = self._served.get(mid)
            if cur is not None and cur.version == event.version:
                self._seen.add(event.deployment_id)
                return False
            prev = self._previous.get(mid)
            if prev is not None and prev.version == event.version:
                model = prev.model
            else:
                try:
                    model = self._loader(event)
                    if not callable(getattr(model, "predict", None)):
                        raise TypeError(f"loaded a {type(model).__name__}, which has no predict()")
                except Exception as exc:
                    self.failures += 1
                    log.error(
                        "model %s: cannot load %s version %s (%s); still serving %s.",
                        mid,
                        event.action,
                        event.version,
                        exc,
                        cur.version if cur else "nothing",
                    )
                    return False
            self._swap(mid, Served(event.version, model))
            self._seen.add(event.deployment_id)
            self.swaps += 1
        log.info(
            "model %s: now serving %s (%s, was %s)",
            mid,
            event.version,
            event.action,
            cur.version if cur else None,
        )
        if self.on_swap is not None:
            try:
                self.on_swap(event, model)
            except Exception:
                log.exception("on_swap callback failed for %s %s", mid, event.version)
        return True

    def _parse(self, key: bytes | None, value: bytes | None) -> DeploymentEvent | None:
        if key is not None and key not in self._keys:
            return None
        if value is None:
            return None
        try:
            event = parse_deployment(value)
        except InvalidEvent as exc:
            self._warn.warn("invalid", "%s: ignoring an invalid deployment: %s", self.topic, exc)
            return None
        return event if event.model_id in self.model_ids else None

    def _on_record(self, key: bytes | None, value: bytes | None) -> None:
        event = self._parse(key, value)
        if event is not None:
            self.handle(event)

    # -- background thread -------------------------------------------------------------------

    def start(self) -> Self:
        """Start following deployments in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=lambda: asyncio.run(self._consume()),
                name="streamproc-deployment-watcher",
                daemon=True,
            )
            self._thread.start()
        return self

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Block until the start-up read of the topic is done; False if ``timeout`` passed."""
        return self._ready.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (waits up to ``timeout`` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def _pause(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < end:
            await asyncio.sleep(0.05)

    async def _consume(self) -> None:
        delay = 0.5
        consumer: Any = None
        while not self._stop.is_set():
            consumer = AIOKafkaConsumer(
                self.topic,
                bootstrap_servers=self.bootstrap_servers,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest" if self.from_beginning else "latest",
                **{**self._security_kwargs, **self.consumer_config},
            )
            try:
                await consumer.start()
                break
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await consumer.stop()
                consumer = None
                await self._warn.cannot_connect(
                    "deployment watcher", self.bootstrap_servers, self.security, exc, "retrying"
                )
                await self._pause(delay)
                delay = min(delay * 2, 10.0)
        if consumer is None:
            return
        try:
            if self.from_beginning:
                await self._catch_up(consumer)
            else:
                while not self._stop.is_set() and not consumer.assignment():
                    await self._poll(consumer)
                for tp in consumer.assignment():
                    await consumer.position(tp)  # pin "latest" now, not at the first fetch
            self._ready.set()
            while not self._stop.is_set():
                await self._poll(consumer)
        except Exception:
            log.exception("deployment watcher stopped on an error")
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 5.0)

    async def _poll(self, consumer: Any) -> None:
        batches = await consumer.getmany(timeout_ms=200)
        for msgs in batches.values():
            for m in msgs:
                self._on_record(m.key, m.value)

    async def _catch_up(self, consumer: Any) -> None:
        """Read to the end offsets seen at start; apply only each model's latest deployment."""
        while not self._stop.is_set() and not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
        parts = list(consumer.assignment())
        if not parts:
            return
        ends = await consumer.end_offsets(parts)
        latest: dict[str, DeploymentEvent] = {}
        ids: set[str] = set()
        while not self._stop.is_set():
            positions = [await consumer.position(tp) for tp in parts]
            if all(pos >= ends[tp] for pos, tp in zip(positions, parts, strict=True)):
                break
            batches = await consumer.getmany(timeout_ms=200)
            for msgs in batches.values():
                for m in msgs:
                    event = self._parse(m.key, m.value)
                    if event is not None:
                        latest[event.model_id] = event
                        ids.add(event.deployment_id)
        for event in latest.values():
            self.handle(event)
        with self._lock:  # superseded deployments must not be applied if redelivered later
            self._seen |= ids - {e.deployment_id for e in latest.values()}
