"""A worker: the consumer thread, the delivery loop, the HTTP side, and orderly shutdown."""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from confluent_kafka import Consumer, Producer, ShareConsumer

from dispatcher import tracing
from dispatcher.config.settings import Settings
from dispatcher.engine.affinity import pin_this_thread
from dispatcher.engine.attempts import attempt_observers
from dispatcher.engine.consumer import LEAVE_AT_LEAST, ConsumerLoop
from dispatcher.engine.deliver import Deliverer
from dispatcher.engine.health import HealthKeeper
from dispatcher.engine.lag import record_lag
from dispatcher.engine.loop import Abandoned, task_context, unless_stopped
from dispatcher.engine.loop import run as run_loop
from dispatcher.engine.scheduler import Scheduler
from dispatcher.engine.share import ShareLoop, refuse_ordered_hooks
from dispatcher.engine.status import StatusServer
from dispatcher.engine.wiring import CLOSE_GRACE, Wiring
from dispatcher.errors import PAIR_ERROR_KINDS, RECORD_ERROR_KINDS, KafkaUnavailable
from dispatcher.http.pool import ClientPool
from dispatcher.kafka.avro import event_decoder
from dispatcher.kafka.clients import (
    check_reachable,
    consumer_config,
    ensure_topics,
    producer_config,
    share_consumer_config,
)
from dispatcher.kafka.follower import follow_store
from dispatcher.kafka.sharegroup import ShareLimits, prepare_share_group
from dispatcher.kafka.writer import outcome_writer
from dispatcher.metrics import Metrics
from dispatcher.model.event import Event, Record
from dispatcher.model.pair import Pair
from dispatcher.pipeline.match import HookIndex
from dispatcher.signals import STOP_SIGNALS

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)
JOIN_GRACE = 2.0  # seconds past a consumer's bounded close before its thread is left behind
# a consumer thread ends by this long past the drain deadline: its leave, its close, a margin
STOP_GRACE = LEAVE_AT_LEAST + CLOSE_GRACE + JOIN_GRACE
STOP_WATCHDOG = 30.0  # seconds past the drain deadline before a stuck stop dumps stacks, exits


class Worker:
    """One member of the consumer group. `run()` returns after a graceful stop."""

    def __init__(
        self,
        settings: Settings,
        hooks: HookIndex,
        metrics: Metrics | None = None,
        decoder: Callable[[Record], Event] | None = None,
        index: int = 0,
    ) -> None:
        self.settings = settings
        self.index = index  # of `--workers N`: picks this worker's CPU (`cpu_affinity`)
        self.hooks = hooks
        self.metrics = metrics or Metrics()
        self._count_hooks(hooks)
        self.decoder = decoder or event_decoder(settings.schema_registry)
        self._stop_requested = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.status: StatusServer | None = None
        self.health: HealthKeeper | None = None
        self._tracing: TracerProvider | None = None
        self._watched = False  # its stop is watched (`run`)

    def set_hooks(self, hooks: HookIndex) -> None:
        """Swap the hooks in force (hot reload); pairs already started keep their definition."""
        self.hooks = hooks
        self._count_hooks(hooks)

    def _count_hooks(self, hooks: HookIndex) -> None:
        """`dispatcher_hooks`, and each hook's dead-letter series at 0 for the kinds it can get."""
        self.metrics.hooks.set(len(hooks))
        kinds = tuple(
            k for k in PAIR_ERROR_KINDS if k != "redelivered" or self.settings.consume == "share"
        )
        expected = {hook.id: kinds for hook in hooks}
        self.metrics.expect_dead_letters({**expected, "": RECORD_ERROR_KINDS})

    def request_stop(self) -> None:
        self._stop_requested.set()
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def run(self, *, install_signals: bool = True) -> None:
        """Run until stopped (SIGTERM/SIGINT when `install_signals`, else `request_stop`).

        With its signals, the worker is a process of its own, and its stop is watched: still
        running `STOP_WATCHDOG` seconds past the drain deadline, it writes every thread's stack
        to stderr and exits 1 (faulthandler), rather than hang whatever it is stuck on."""
        # in this process: a worker of `--workers N` is a process of its own, started afresh
        self._tracing = tracing.start("worker")
        self._watched = install_signals
        try:
            try:
                run_loop(self._main(install_signals))
            finally:
                tracing.stop(self._tracing)
            # The Kafka clients sit in reference cycles (callbacks naming their loop): collect
            # them now, or a stopped worker's librdkafka threads go on talking to the cluster.
            gc.collect()
        finally:
            if self._watched:
                faulthandler.cancel_dump_traceback_later()

    async def _main(self, install_signals: bool) -> None:
        loop = asyncio.get_running_loop()
        self._loop, self._wake = loop, asyncio.Event()
        if self._stop_requested.is_set():
            self._wake.set()
        if install_signals:
            for sig in STOP_SIGNALS:
                loop.add_signal_handler(sig, self.request_stop)
        if self.settings.consume == "share":  # the hooks file's; the store's come in unusable
            refuse_ordered_hooks(self.hooks)
        settings = self.settings
        log.info("waiting for Kafka at %s", settings.bootstrap_servers)
        try:  # off the loop, so a stop while the cluster does not answer is seen at once
            limits = await unless_stopped(self._wake, self._prepare_cluster, "starting")
        except Abandoned:
            log.info("stopped while starting: nothing was consumed")
            return
        # The hook store and the health topic (pauses) are read to their end before any event
        # is consumed, then followed.
        follower = await asyncio.to_thread(follow_store, settings, self.hooks, self.set_hooks)
        health = self.health = HealthKeeper(settings, lambda: self.hooks, self.metrics)
        await asyncio.to_thread(health.start)
        health_stop = asyncio.Event()
        health_task = asyncio.create_task(health.run(health_stop))
        parts = self._assemble(loop, limits)
        # the Kafka clients' own threads exist now, and stay free; the consumer threads started
        # below run where this one does
        pin_this_thread(settings.cpu_affinity, self.index)
        events = parts.intakes[0]
        self.status = StatusServer(settings.http_port, self.metrics.registry, events.ready.is_set)
        self.status.start()
        threads = [
            threading.Thread(
                target=self._consume, args=(intake, parts), name=f"consumer-{i}", daemon=True
            )
            for i, intake in enumerate(parts.intakes)
        ]
        for thread in threads:
            thread.start()
        log.info(
            "worker started: %s group %s, %d hooks, topics %s, /metrics on port %d",
            "share" if limits is not None else "consumer",
            settings.group_id,
            len(self.hooks),
            ", ".join(settings.topics.events),
            self.status.port,  # the one bound: `http_port: 0` takes any free port
        )
        await self._wake.wait()
        await self._shut_down(parts, threads)
        health_stop.set()
        await health_task
        await asyncio.to_thread(health.stop)
        self.status.stop()
        if follower is not None:
            follower.stop()
        fatal = [intake.fatal for intake in parts.intakes if intake.fatal is not None]
        if fatal:
            raise KafkaUnavailable(f"the Kafka client failed for good: {fatal[0]}")
        if parts.stuck:
            names = ", ".join(thread.name for thread in parts.stuck)
            raise KafkaUnavailable(
                f"{names} did not stop within {STOP_GRACE:g}s of the drain deadline"
                " (a Kafka client call that did not return: its stack is logged above)"
            )
        log.info("stopped")

    def _prepare_cluster(self) -> ShareLimits | None:
        """Wait for the cluster, create the topics written to, prepare the share group (queue
        mode: its limits). The admin client goes with the return: kept, it would go on logging
        refused connections through an outage, unpolled, straight to stderr."""
        settings, topics = self.settings, self.settings.topics
        admin = check_reachable(settings)
        outputs = [topics.results, topics.dead_letter, *topics.retry_topics]
        outputs += filter(None, [topics.attempts])
        retention = round(topics.attempts_retention * 1000)  # 0: the cluster's default
        configs = {topics.attempts: {"retention.ms": str(retention)}} if retention else {}
        ensure_topics(admin, outputs, configs=configs)
        if topics.operations:  # few events, each keyed by its hook: one partition
            ensure_topics(admin, [topics.operations], partitions=1)
        if settings.consume == "share":
            return prepare_share_group(admin, settings.group_id)
        return None

    def _assemble(self, loop: asyncio.AbstractEventLoop, limits: ShareLimits | None) -> _Parts:
        """The consumer loops and the delivery loop's scheduler, wired to each other.

        Input topics, retry tiers and the operations topic are consumed in groups of their own
        (`group_id`, `group_id.retry`, `group_id.operations`): a group balances partition counts
        across all its topics, so in one group a second worker could get every tier partition
        and no input partition. With `limits` (queue mode) the input topics are read by the
        share group `group_id`; the tiers and the operations topic stay in consumer groups
        (paused tier partitions hold records until due).
        """
        settings = self.settings
        pool = ClientPool(settings)
        health = self.health
        assert health is not None
        # the input intake's producer writes attempt records too, batched with its outcomes
        producer = Producer(producer_config(settings))
        observers = [health.observe, *attempt_observers(settings, producer, self.metrics, loop)]
        tracer = None
        if self._tracing is not None:
            from dispatcher.engine.traced import PairTracer

            tracer = PairTracer(self._tracing)
        deliverer = Deliverer(
            self.metrics,
            settings.topics.retry,
            settings.local_retries,
            observers=observers,
            held=health.held,
            tracer=tracer,
        )
        parts = _Parts(pool=pool, deadline=[], scheduler=Scheduler(deliverer, pool.client_for))
        holding = self._holding(pool, deliverer)
        groups = [(settings.group_id, list(settings.topics.events))]
        if settings.topics.retry_topics:
            groups.append((f"{settings.group_id}.retry", list(settings.topics.retry_topics)))
        if settings.topics.operations:  # hooks may subscribe to `dispatcher.hook.*` events
            groups.append((f"{settings.group_id}.operations", [settings.topics.operations]))
        for group_id, topics in groups:
            primary = not parts.intakes
            share = limits if primary else None
            own = producer if primary else None
            parts.intakes.append(
                self._intake(loop, parts.scheduler, group_id, topics, primary, share, own, holding)
            )
        return parts

    def _holding(self, pool: ClientPool, deliverer: Deliverer) -> Callable[[], frozenset[str]]:
        """The hooks whose fresh pairs an intake loop hands to their first retry tier itself,
        in bundles (`ConsumerLoop._hold_back`): their circuit is open and `holds_at_intake`.
        Asked from consumer threads once a batch; none while `retry_bundles` is off."""
        if not self.settings.retry_bundles:
            return frozenset

        def holding() -> frozenset[str]:
            hooks = self.hooks
            found = set()
            for client in pool.refusing():
                hook = hooks.get(client.hook.id)
                if hook is None or not (hook is client.hook or hook == client.hook):
                    continue  # a superseded definition's client: fresh pairs have another
                if deliverer.holds_at_intake(hook):
                    found.add(hook.id)
            return frozenset(found)

        return holding

    def _intake(
        self,
        loop: asyncio.AbstractEventLoop,
        scheduler: Scheduler,
        group_id: str,
        topics: list[str],
        primary: bool,
        share: ShareLimits | None = None,
        producer: Producer | None = None,
        holding: Callable[[], frozenset[str]] = frozenset,
    ) -> ConsumerLoop | ShareLoop:
        """One consumer thread's loop, with a producer of its own: acknowledgements are served
        on the thread that polls the producer, which must be the thread owning the tracker."""
        settings = self.settings
        producer = producer or Producer(producer_config(settings))
        writer = outcome_writer(producer, settings, self.metrics)
        intake: ConsumerLoop | ShareLoop
        context = task_context()

        def submit(pairs: list[Pair]) -> None:
            loop.call_soon_threadsafe(scheduler.start, pairs, intake, context=context)

        def release(partitions: set[tuple[str, int]], wait: float) -> Future[int]:
            coroutine = scheduler.release(intake, partitions, wait)
            return asyncio.run_coroutine_threadsafe(coroutine, loop)

        wiring = Wiring(
            settings, producer, writer, lambda: self.hooks, self.decoder, self.metrics,
            submit, release, topics, scheduler.deliverer.untried, holding,
        )  # fmt: skip
        if share is not None:
            intake = ShareLoop(ShareConsumer(share_consumer_config(settings)), wiring, share)
            return intake

        def on_stats(payload: str) -> None:
            assert isinstance(intake, ConsumerLoop)
            record_lag(payload, intake.assigned, self.metrics.consumer_lag)

        consumer = Consumer(consumer_config(settings, group_id, stats_cb=on_stats))
        intake = ConsumerLoop(consumer, wiring, reports_ready=primary)
        return intake

    def _consume(self, intake: ConsumerLoop | ShareLoop, parts: _Parts) -> None:
        """A consumer thread: runs until stopped, then wakes the delivery loop to finish."""
        loop, wake = self._loop, self._wake
        try:
            intake.run(lambda: parts.deadline[0])
        finally:
            if loop is not None and wake is not None:
                loop.call_soon_threadsafe(wake.set)

    async def _shut_down(self, parts: _Parts, threads: list[threading.Thread]) -> None:
        """Stop fetching, drain in-flight deliveries to the deadline, commit, close."""
        drain = self.settings.drain_timeout
        log.info("stopping: draining in-flight deliveries (up to %gs)", drain)
        if self._watched:
            faulthandler.dump_traceback_later(drain + STOP_WATCHDOG, exit=True)
        parts.deadline.append(time.monotonic() + drain)
        for intake in parts.intakes:
            intake.stop()
        cut = await parts.scheduler.drain(drain)
        if cut:
            log.warning("%d deliveries cut at the drain deadline: they will be redelivered", cut)
        # each consumer's leave and close are bounded (`ConsumerLoop._leave`, `close_by`): a
        # thread still running past that is stuck in a Kafka client call, and is left behind
        by = parts.deadline[0] + STOP_GRACE
        for thread in threads:
            await asyncio.to_thread(thread.join, max(by - time.monotonic(), 0.0))
        parts.stuck = [thread for thread in threads if thread.is_alive()]
        for thread in parts.stuck:
            log.error(
                "%s did not finish by the stop deadline; exiting without it (its uncommitted"
                " offsets will be redelivered). Where it is:\n%s",
                thread.name,
                _stack_of(thread),
            )
        await parts.pool.aclose()


@dataclass(slots=True)
class _Parts:
    """What one run of a worker is made of."""

    pool: ClientPool
    deadline: list[float]  # the drain deadline, set when stopping
    scheduler: Scheduler
    intakes: list[ConsumerLoop | ShareLoop] = field(default_factory=list)  # input, then tiers
    stuck: list[threading.Thread] = field(default_factory=list)  # left behind at the stop


def _stack_of(thread: threading.Thread) -> str:
    """Where `thread` is now, as a traceback's lines."""
    frame = sys._current_frames().get(thread.ident or 0)
    return "".join(traceback.format_stack(frame)) if frame is not None else "(no frame)"
