"""faust agents: decode, call the core, encode, send.

- ``drift``: predictions, labels, metrics, deployments and retrain results in batches; each
  record goes through :func:`streamproc.core.router.route`; retrain requests, rollbacks and dead
  letters out; changed monitors are checkpointed to the ``monitors`` table every few seconds,
  and only then are their events committed (:mod:`streamproc.service.checkpoint`).
- ``retrainer``: retrain requests in; each is admitted by the model's ledger (handled once, one
  in flight), trained off the event loop (transient failures retried with backoff), gated, and its
  result and deployment published. A webhook trainer's job completes in ``completions``.
- ``completions``: results of external trainers in; the waiting job is judged and published.

Each agent is a method of a small class (:class:`DriftAgent`, :class:`Retrains`); :func:`install`
only builds them and registers their methods with the app.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import orjson
from mode import CrashingSupervisor

from streamproc.core.alignment import SIDES
from streamproc.core.events import (
    InvalidEvent,
    RetrainRequest,
    RetrainResult,
    SourceRef,
    dead_letter,
    encode,
    parse_deployment,
    parse_retrain_request,
    parse_retrain_result,
)
from streamproc.core.monitor import ModelMonitor
from streamproc.core.policy import PolicyBook, PolicyError, load_policy
from streamproc.core.registry import Registry
from streamproc.core.retrain import (
    OURS,
    Candidate,
    RetrainLedger,
    RetrainOutcome,
    TrainerError,
    TrainingJob,
    failed,
    judge,
    prepare,
    unexpected,
)
from streamproc.core.router import Monitors, Outcome, route_record
from streamproc.core.topics import (
    DEPLOYMENTS,
    MONITORED_TOPICS,
    RETRAIN_REQUESTS,
    RETRAIN_RESULTS,
)
from streamproc.service.aliases import AliasFollower
from streamproc.service.alignment import TopicAlignment
from streamproc.service.app import MAX_STATE_BYTES, Wiring, send_acked
from streamproc.service.board import StatusBoard
from streamproc.service.checkpoint import Checkpointer
from streamproc.service.commitguard import CommitGuard
from streamproc.service.commits import CommitGap
from streamproc.service.training.registries import open_registry
from streamproc.service.training.trainers import (
    WebhookTrainer,
    candidate_from_result,
    retry_delays,
    trainer_from_config,
)

log = logging.getLogger(__name__)

BATCH_MAX = 2000
# A batch waits at most this long to fill: it is the drift agent's share of the loop's delay.
# bench/closed_loop.py --live-rate 1000 (stagger, drift to deployment): 471 and 502 events at
# 0.2 s, 345 and 370 at 0.05 s. Under load the batch fills first and this never applies.
BATCH_WITHIN_S = 0.05
WEBHOOK_DEADLINE_S = 6 * 3600.0
# A snapshot is one changelog record: its key and Kafka's framing must fit beside it.
SNAPSHOT_LIMIT = MAX_STATE_BYTES - 64 * 1024


def install(
    w: Wiring,
    board: StatusBoard,
    commits: CommitGap | None = None,
    guard: CommitGuard | None = None,
) -> None:
    """Attach the agents to the app; they report what they do to ``board``.

    A crashed agent stops the worker (CrashingSupervisor): a worker that stays up with a dead
    agent would hold its partitions and process nothing, while a restarted one resumes from
    its committed offsets and changelog state.
    """
    settings = w.settings
    book = load_policy(settings.policy_file)
    check_trainers(book, w.results.get_topic_name())
    registry = open_registry(settings)
    retrains = Retrains(w, book, registry, board)
    monitors = Monitors(book, load=w.monitors.load, max_snapshot_bytes=SNAPSHOT_LIMIT)
    ckpt = Checkpointer(w, monitors, settings.checkpoint_s, commits, guard)
    retrains.live = monitors.live  # fresher than the table between checkpoints
    drift = DriftAgent(w, board, monitors, ckpt, AliasFollower(registry), commits)

    app = w.app
    # mode types connect() with a union of callables mypy cannot match an async def against.
    app.on_partitions_revoked.connect(cast(Any, drift.on_revoked))
    app.timer(interval=max(settings.checkpoint_s / 2, 0.1))(drift.checkpoint_when_idle)
    app.task(drift.follow_aliases)
    crash = CrashingSupervisor
    app.agent(w.monitored, name="drift", supervisor_strategy=crash)(drift.run)
    app.agent(w.requests, name="retrainer", supervisor_strategy=crash)(retrains.run)
    app.agent(w.results, name="completions", supervisor_strategy=crash)(retrains.run_completions)


class DriftAgent:
    """The drift agent: batches of monitored records through the core, checkpointed."""

    def __init__(
        self,
        w: Wiring,
        board: StatusBoard,
        monitors: Monitors,
        ckpt: Checkpointer,
        aliases: AliasFollower,
        commits: CommitGap | None = None,
    ) -> None:
        self.w = w
        self.board = board
        self.metrics = board.metrics
        self.monitors = monitors
        self.ckpt = ckpt
        self.aliases = aliases
        self.commits = commits
        self.prefix = w.settings.topic_prefix
        self.logical_of = {w.settings.topic(n): n for n in MONITORED_TOPICS}
        # Catching up, whichever topic ran ahead of the other overflowed its side of the join.
        self.alignment = TopicAlignment(
            w.app.consumer,
            {side: w.settings.topic(side) for side in SIDES},
            w.settings.label_lead_s,
            board.metrics.held_partitions,
        )

    async def on_revoked(self, app: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        # faust awaits this before the group moves on: write what we applied (no acks: the
        # records come again from the last commit and are recognised), then drop the cache
        # (partitions we keep are reloaded from the table, which now has everything).
        # faust sends the revoked set positionally: on_partitions_revoked.send(revoked).
        revoked = args[0]
        async with self.ckpt.lock:
            await self.ckpt.checkpoint(ack=False)
            self.monitors.forget()
            self.alignment.forget()  # what waits comes again from the last commit
        self.board.forget_partitions({tp.partition for tp in revoked})
        if self.commits is not None:
            self.commits.forget(revoked)

    async def checkpoint_when_idle(self) -> None:
        async with self.ckpt.lock:
            if self.alignment.has_waiting():  # records waiting for a stalled topic go on
                await self.apply_batch([])
            if self.ckpt.due():
                await self.ckpt.checkpoint()

    async def follow_aliases(self) -> None:
        await self.aliases.run()

    async def run(self, stream: Any) -> None:
        async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            async with self.ckpt.lock:
                await self.apply_batch(events)
                if self.ckpt.due():
                    await self.ckpt.checkpoint()

    async def apply_batch(self, events: Sequence[Any]) -> None:
        touched: dict[str, int] = {}
        applied: Counter[tuple[str, str]] = Counter()  # plain outcomes per topic and model
        generation = self.w.app.consumer_generation_id
        flowing = self.w.app.flow_control.is_active()
        try:
            for event in events:
                await self._apply_record(event, generation, flowing, touched, applied)
            for side, event in self.alignment.due() if flowing else ():
                await self._apply_admitted(event, side, touched, applied)
                self.alignment.applied(event)
        finally:  # what was applied is counted, even if a send failed midway
            for (logical, model_id), n in applied.items():
                self.metrics.events.labels(logical, self.metrics.model(model_id)).inc(n)
        for req in self.monitors.take_resends():
            log.warning(
                "model %s: request %s was made before a worker stopped and never confirmed "
                "sent; sending it again (a duplicate, if it did arrive, is not retrained twice)",
                req.model_id,
                req.request_id,
            )
            await self.request(req)
        if events:
            last = events[-1].message
            self.metrics.lag.labels(self.logical_of.get(last.topic, last.topic)).set(
                max(time.time() - last.timestamp, 0.0)
            )
        for model_id, partition in touched.items():
            self.board.applied(self.monitors.live[model_id], partition)

    async def _apply_record(
        self,
        event: Any,
        generation: int,
        flowing: bool,
        touched: dict[str, int],
        applied: Counter[tuple[str, str]],
    ) -> None:
        """One record's outcomes, unless it was fetched before a rebalance; a record of the
        predictions or labels topic may wait for the other's (:class:`TopicAlignment`)."""
        msg = event.message
        if msg.generation_id != generation or not flowing:
            # Fetched before (or during) a rebalance: faust sends it again from the last
            # commit. Keep a reference so this copy is never marked committable.
            msg.incref()
            return
        logical = self.logical_of.get(msg.topic, msg.topic.removeprefix(self.prefix))
        if logical not in SIDES:
            await self._apply_admitted(event, logical, touched, applied)
            return
        for side, ready in self.alignment.offer(logical, event):
            await self._apply_admitted(ready, side, touched, applied)
            self.alignment.applied(ready)

    async def _apply_admitted(
        self, event: Any, logical: str, touched: dict[str, int], applied: Counter[tuple[str, str]]
    ) -> None:
        """Most outcomes only changed their model: counted in ``applied`` (the metric is
        increased once per batch), not sent through :meth:`apply`."""
        msg = event.message
        self.ckpt.hold(event)
        src = SourceRef(logical, msg.partition, msg.offset)
        plain = logical not in (DEPLOYMENTS, RETRAIN_RESULTS)
        # A batched record is many events: one outcome each, applied in order.
        for out in route_record(self.monitors, logical, event.value, src, msg.timestamp):
            model_id = out.model_id
            if plain and model_id is not None and out.is_plain():
                touched[model_id] = self.ckpt.partition_of[model_id] = msg.partition
                if not out.redelivered:
                    if (logical, model_id) not in applied:
                        self.metrics.model(model_id)  # its label, in order of first sight
                    applied[logical, model_id] += 1
                continue
            await self.apply(out, logical, event, touched)

    async def request(self, req: RetrainRequest) -> None:
        """Save the model (the retrainer reads its examples from the table; the snapshot keeps
        the request in its outbox), send the request, then take it out of the outbox."""
        self.ckpt.save_model(req.model_id)
        await send_acked(self.w.requests, req.model_id, encode(req))
        self.monitors.sent(req)
        self.board.requested(req)

    async def apply(self, out: Outcome, logical: str, event: Any, touched: dict[str, int]) -> None:
        """One outcome of the core: its dead letter, the model it changed, what it asks for."""
        msg = event.message
        metrics = self.metrics
        if out.dead_letter is not None:
            dl = out.dead_letter
            log.warning("dead letter from %s: %s", dl.source, dl.error)
            # The letter's topic: a label that came early is counted as the label it is.
            metrics.dead_letters.labels(dl.source.topic, dl.reason).inc()
            await self.w.dead_letters.send(key=msg.key, value=encode(dl))
            if out.model_id is None:
                return  # not applied; else applied (a label_type_mismatch), goes on
        if out.model_id is not None:
            if logical == DEPLOYMENTS:  # every one, redelivered too: idempotent
                self.aliases.follow(parse_deployment(event.value))
            touched[out.model_id] = self.ckpt.partition_of[out.model_id] = msg.partition
            if not out.redelivered:
                metrics.events.labels(logical, metrics.model(out.model_id)).inc()
                _report(self.board, logical, event.value)
        for req in out.requests:
            log.info("model %s: retrain requested: %s", req.model_id, _why(req))
            await self.request(req)
        for dep in out.deployments:
            log.warning("model %s: rollback to %s", dep.model_id, dep.version)
            await send_acked(self.w.deployments, dep.model_id, encode(dep))


def check_trainers(book: PolicyBook, results_topic: str) -> None:
    """Refuse to start with a trainer that cannot be built (say, its token variable is unset)."""
    for where, policy in [("[default]", book.default), *book.overrides]:
        if policy.trainer:
            try:
                trainer_from_config(dict(policy.trainer), results_topic)
            except ValueError as exc:
                raise PolicyError(f"policy {where}: trainer is not usable: {exc}") from None


def _report(board: StatusBoard, logical: str, raw: bytes) -> None:
    """Results and deployments also go on the board (parsed again: they are rare)."""
    if logical == RETRAIN_RESULTS:
        board.result(parse_retrain_result(raw))
    elif logical == DEPLOYMENTS:
        board.deployed(parse_deployment(raw))


def _why(req: RetrainRequest) -> str:
    return ", ".join(
        f"{r.signal} {r.value:.4g} vs {r.threshold:.4g} (n={r.n})" for r in req.reasons
    )


class Retrains:
    """The ``retrainer`` and ``completions`` agents: ledger bookkeeping around prepare -> train
    -> judge -> publish."""

    def __init__(self, w: Wiring, book: PolicyBook, registry: Registry, board: StatusBoard) -> None:
        self.w = w
        self.book = book
        self.registry = registry
        self.board = board
        self.live: dict[str, ModelMonitor] = {}

    async def run(self, stream: Any) -> None:
        """The ``retrainer`` agent: retrain requests in; a malformed one is dead-lettered."""
        w = self.w
        async for event in stream.events():
            msg = event.message
            try:
                req = parse_retrain_request(event.value)
            except InvalidEvent as exc:
                src = SourceRef(RETRAIN_REQUESTS, msg.partition, msg.offset)
                dl = dead_letter(src, str(exc), event.value, msg.timestamp)
                await w.dead_letters.send(key=msg.key, value=encode(dl))
                continue
            await self.handle(req, msg.partition)

    async def run_completions(self, stream: Any) -> None:
        """The ``completions`` agent: results of external trainers in."""
        async for event in stream.events():
            try:
                result = parse_retrain_result(event.value)
            except InvalidEvent:
                continue  # the drift agent dead-letters bad results; one letter is enough
            if result.extra.get("by") != OURS["by"]:
                await self.complete(result, event.message.partition)

    def _ledger(self, model_id: str) -> RetrainLedger:
        saved = self.w.retrains.load(model_id)
        return RetrainLedger.from_state(orjson.loads(saved)) if saved else RetrainLedger()

    async def _save(self, model_id: str, ledger: RetrainLedger, partition: int) -> None:
        self.w.retrains.put(model_id, orjson.dumps(ledger.state()), partition)
        # The ledger decides what a redelivered request does: get it to the changelog now.
        await self.w.app.producer.flush()
        await self.w.retrains.written()

    def _trainer(self, model_id: str) -> Any:
        cfg = self.book.for_model(model_id).trainer
        return trainer_from_config(dict(cfg) if cfg else "builtin", self.w.results.get_topic_name())

    async def handle(self, req: RetrainRequest, partition: int) -> None:
        mid = req.model_id
        ledger = self._ledger(mid)
        admission = ledger.admit(req.request_id, now=time.time())
        if ledger.expired:
            gone = RetrainResult(
                ledger.expired,
                mid,
                "failed",
                time.time(),
                error=_expired(ledger.expired),
                extra=OURS,
            )
            await self._publish(RetrainOutcome(gone, None), ledger.expired)
        if admission in ("duplicate", "coalesce"):
            log.info("model %s: request %s is a %s; not retraining", mid, req.request_id, admission)
            await self._save(mid, ledger, partition)
            return
        if admission == "resume" and ledger.waiting is not None:
            return  # an external trainer has it; its result completes the job
        await self._save(mid, ledger, partition)  # in flight before the work: never lost
        self.board.retrain_started(req)
        try:
            outcome = await self._run(req, ledger, partition)
        except Exception as exc:  # one bad job must not stop the worker
            log.exception("model %s: retrain %s raised", mid, req.request_id)
            outcome = failed(req, time.time(), unexpected(exc))
        if outcome is not None:
            await self._finish(outcome, ledger, partition)

    async def _run(
        self, req: RetrainRequest, ledger: RetrainLedger, partition: int
    ) -> RetrainOutcome | None:
        """Train and judge; None when an external trainer took the job."""
        mid = req.model_id
        mon = self.live.get(mid)
        if mon is None:
            mon_bytes = self.w.monitors.load(mid)
            mon = ModelMonitor.restore(mon_bytes, self.book.for_model(mid)) if mon_bytes else None
        examples: Sequence[Any] = mon.training_examples() if mon else []
        deployed = mon.version if mon else req.model_version
        try:
            job = prepare(req, examples, deployed, task=mon.scorer.task if mon else None)
        except TrainerError as exc:
            return failed(req, time.time(), str(exc))
        trainer = self._trainer(mid)
        log.info("model %s: retraining for %s on %d examples", mid, req.request_id, len(job.train))
        if isinstance(trainer, WebhookTrainer):
            await self._hand_off(trainer, job, ledger, partition)
            return None
        return await self._train_and_judge(trainer, job)

    async def _train_and_judge(
        self, trainer: Callable[[TrainingJob], Candidate], job: TrainingJob
    ) -> RetrainOutcome:
        try:
            candidate = await _retrying(trainer, job)
        except TrainerError as exc:
            return failed(job.request, time.time(), str(exc))
        return await self._judge(job, candidate)

    async def _judge(self, job: TrainingJob, candidate: Candidate) -> RetrainOutcome:
        """Gate ``candidate`` against the champion, off the event loop (the registry may be
        a network call)."""
        return await asyncio.get_running_loop().run_in_executor(
            None, judge, job, candidate, self.registry, time.time(), self.w.settings.gate_margin
        )

    async def _hand_off(
        self, trainer: WebhookTrainer, job: TrainingJob, ledger: RetrainLedger, partition: int
    ) -> None:
        try:
            await _retrying(trainer.start, job)
        except TrainerError as exc:
            await self._fail(job.request, str(exc), ledger, partition)
            return
        ledger.wait_for_external(job.state(), deadline=time.time() + WEBHOOK_DEADLINE_S)
        await self._save(job.request.model_id, ledger, partition)
        log.info(
            "model %s: %s handed to %s", job.request.model_id, job.request.request_id, trainer.url
        )

    async def complete(self, result: RetrainResult, partition: int) -> None:
        """An external trainer answered: judge its candidate like any other."""
        ledger = self._ledger(result.model_id)
        if ledger.in_flight != result.request_id or ledger.waiting is None:
            return  # not a job we are waiting for (or already judged)
        job = TrainingJob.from_state(ledger.waiting)
        try:
            candidate = candidate_from_result(result, len(job.holdout))
        except TrainerError as exc:
            await self._fail(job.request, str(exc), ledger, partition)
            return
        try:
            outcome = await self._judge(job, candidate)
        except Exception as exc:  # one bad job must not stop the worker
            log.exception("model %s: judging %s raised", result.model_id, result.request_id)
            outcome = failed(job.request, time.time(), unexpected(exc))
        await self._finish(outcome, ledger, partition)

    async def _fail(
        self, req: RetrainRequest, error: str, ledger: RetrainLedger, partition: int
    ) -> None:
        """Publish ``req`` as failed with ``error``, and end it in the ledger."""
        await self._finish(failed(req, time.time(), error), ledger, partition)

    async def _finish(self, outcome: RetrainOutcome, ledger: RetrainLedger, partition: int) -> None:
        rid = outcome.result.request_id
        await self._publish(outcome, rid)
        self.board.retrain_ended(outcome.result.model_id, rid)
        merged = ledger.finish(rid)
        if merged:
            log.info("model %s: coalesced %s into %s", outcome.result.model_id, merged, rid)
        await self._save(outcome.result.model_id, ledger, partition)

    async def _publish(self, outcome: RetrainOutcome, rid: str) -> None:
        mid = outcome.result.model_id
        log.info("model %s: retrain %s %s", mid, rid, outcome.result.status)
        await send_acked(self.w.results, mid, encode(outcome.result))
        if outcome.deployment is not None:
            log.info("model %s: deploying %s", mid, outcome.deployment.version)
            await send_acked(self.w.deployments, mid, encode(outcome.deployment))


_T = TypeVar("_T")


async def _retrying(call: Callable[[TrainingJob], _T], job: TrainingJob) -> _T:
    """``call(job)`` off the event loop; a transient :class:`TrainerError` is retried after each
    of :func:`retry_delays`, the last one (or a permanent one) raised."""
    loop = asyncio.get_running_loop()
    delays = retry_delays()
    for attempt in range(len(delays) + 1):
        try:
            return await loop.run_in_executor(None, call, job)
        except TrainerError as exc:
            if not (exc.transient and attempt < len(delays)):
                raise
            log.warning(
                "retrain %s: %s; retrying in %.0f s", job.request.request_id, exc, delays[attempt]
            )
            await asyncio.sleep(delays[attempt])
    raise AssertionError("unreachable")


def _expired(request_id: str) -> str:
    return (
        f"retrain {request_id} did not finish before its deadline (a worker stopped during "
        "it, or its external trainer never answered); a newer request replaced it — check the "
        "worker's log and the training pipeline"
    )
