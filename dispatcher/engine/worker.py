"""A worker's run: it waits for the cluster, builds its parts (`engine/assembly.py`), runs the
consumer threads and the delivery loop until stopped, then drains and shuts down in order."""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import logging
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from dispatcher import tracing
from dispatcher.config.settings import Settings
from dispatcher.engine.affinity import pin_this_thread
from dispatcher.engine.assembly import Assembly, Parts
from dispatcher.engine.consumer import LEAVE_AT_LEAST, ConsumerLoop
from dispatcher.engine.health import HealthKeeper
from dispatcher.engine.liveness import Heartbeats, LoopBeat
from dispatcher.engine.loop import Abandoned, unless_stopped
from dispatcher.engine.loop import run as run_loop
from dispatcher.engine.share import ShareLoop, refuse_ordered_hooks
from dispatcher.engine.status import StatusServer
from dispatcher.engine.wiring import CLOSE_GRACE, LAST_FLUSH
from dispatcher.errors import PAIR_ERROR_KINDS, RECORD_ERROR_KINDS, KafkaUnavailable
from dispatcher.kafka.avro import event_decoder
from dispatcher.kafka.clients import check_reachable, ensure_topics
from dispatcher.kafka.follower import follow_store
from dispatcher.kafka.sharegroup import ShareLimits, prepare_share_group, refuse_consumer_group
from dispatcher.metrics import Metrics
from dispatcher.model.event import Event, Record
from dispatcher.pipeline.match import HookIndex
from dispatcher.signals import STOP_SIGNALS

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)
JOIN_GRACE = 2.0  # seconds past a consumer's bounded close before its thread is left behind
# a stop ends by this long past the drain deadline: a consumer thread's leave, its close, its
# last flush (the attempt records of the requests the drain cut: its wait for the delivery
# loop's cut, at most CUT_WAIT past the deadline, is over by the end of its close) and a
# margin, beside which hook health withdraws its reports (`WITHDRAW_SECONDS`, within it) and
# the hook store's follower stops, all bounded by the one stop deadline
STOP_GRACE = LEAVE_AT_LEAST + CLOSE_GRACE + LAST_FLUSH + JOIN_GRACE
# a part closed beside the consumers, given the stop deadline (`time.monotonic()`)
Closing = Callable[[float], Awaitable[None]]
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
        self.index = index  # of `--workers N`: its CPU (`cpu_affinity`), its port in errors
        self.hooks = hooks
        self.metrics = metrics or Metrics()
        self._count_hooks(hooks)
        self.decoder = decoder or event_decoder(settings.schema_registry)
        self._stop_requested = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.status: StatusServer | None = None
        self.health: HealthKeeper | None = None
        # its parts' beats, judged once they turn (not while it waits for Kafka at start)
        self.heartbeats = Heartbeats(settings.liveness_timeout)
        self._tracing: TracerProvider | None = None
        self._stop_by: float | None = None  # the stop deadline, once the stop began (`_shut_down`)
        self._watched = False  # its stop is watched (`run`)

    def set_hooks(self, hooks: HookIndex) -> None:
        """Swap the hooks in force (hot reload); pairs already started keep their definition."""
        self.hooks = hooks
        self._count_hooks(hooks)

    def _count_hooks(self, hooks: HookIndex) -> None:
        """`dispatcher_hooks`, each hook's deliveries and dead-letter series (for the kinds it
        can get) at 0, whether this worker holds it as unusable, and the breakers of the hooks
        that send (after the series: a hook gone loses its cached children there)."""
        self.metrics.hooks.set(len(hooks))
        kinds = tuple(
            k for k in PAIR_ERROR_KINDS if k != "redelivered" or self.settings.consume == "share"
        )
        expected = {hook.id: kinds for hook in hooks}
        self.metrics.expect_dead_letters({**expected, "": RECORD_ERROR_KINDS})
        self.metrics.expect_deliveries(expected)
        self.metrics.show_unusable({hook.id: hook.unusable is not None for hook in hooks})
        self.metrics.keep_circuits({hook.id for hook in hooks if hook.enabled})

    def request_stop(self) -> None:
        self._stop_requested.set()
        self.heartbeats.stop_watching()  # its parts end their turns: alive while it stops
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
            finally:  # the spans still buffered, exported by the stop deadline or dropped
                stop_by = self._stop_by or time.monotonic() + STOP_GRACE  # (stopped starting)
                tracing.stop(self._tracing, stop_by)
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
            limits, retired = await unless_stopped(self._wake, self._prepare_cluster, "starting")
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
        wake = self._wake
        # it ends by itself only when its producer failed for good (`health.fatal`): stop then
        health_task.add_done_callback(lambda _task: wake.set())
        assembly = Assembly(
            settings, lambda: self.hooks, self.decoder, self.metrics, health, self._tracing, loop
        )
        parts = assembly.parts(limits, retired)
        # the Kafka clients' own threads exist now, and stay free; the consumer threads started
        # below run where this one does
        pin_this_thread(settings.cpu_affinity, self.index)
        events = parts.intakes[0]
        # worker i's port is the i-th above http_port, admin.port skipped (`worker_port`)
        port_setting = f"http_port, worker {self.index}'s" if self.index else "http_port"
        self.status = StatusServer(
            settings.http_port,
            self.metrics.registry,
            events.ready.is_set,
            setting=port_setting,
            stalled=self.heartbeats.stalled,
        )
        self.status.start()
        beating = LoopBeat.start(self.heartbeats, "delivery loop")
        for i, intake in enumerate(parts.intakes):
            intake.pulse = self.heartbeats.pulse_of(f"consumer-{i}")
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
        # stopping (asked to, or a consumer thread stopped by itself): a stuck stop is the
        # stop watchdog's, not the liveness probe's
        self.heartbeats.stop_watching()
        beating.cancel()

        async def stop_health(stop_by: float) -> None:
            health_stop.set()
            await health_task
            await asyncio.to_thread(health.stop, stop_by)

        beside: dict[str, Closing] = {"hook health": stop_health}
        if follower is not None:
            beside["hook store"] = lambda stop_by: asyncio.to_thread(follower.stop, stop_by)
        await self._shut_down(parts, threads, beside)
        self.status.stop()
        fatal = [part.fatal for part in (*parts.intakes, health) if part.fatal is not None]
        if fatal:
            raise KafkaUnavailable.failed_for_good(fatal[0])
        if parts.stuck:
            names = ", ".join(thread.name for thread in parts.stuck)
            raise KafkaUnavailable(
                f"{names} did not stop within {STOP_GRACE:g}s of the drain deadline"
                " (a Kafka client call that did not return: its stack is logged above)"
            )
        log.info("stopped")

    def _prepare_cluster(self) -> tuple[ShareLimits | None, tuple[str, ...]]:
        """Wait for the cluster, create the topics written to, find the retired retry tiers
        (`find_retired_tiers`), prepare the share group (queue mode: its limits). The admin
        client goes with the return: kept, it would go on logging refused connections through
        an outage, unpolled, straight to stderr."""
        settings, topics = self.settings, self.settings.topics
        admin = check_reachable(settings)
        outputs = [topics.results, topics.dead_letter, *topics.retry_topics]
        outputs += filter(None, [topics.attempts])
        retention = round(topics.attempts_retention * 1000)  # 0: the cluster's default
        configs = {topics.attempts: {"retention.ms": str(retention)}} if retention else {}
        ensure_topics(admin, outputs, configs=configs)
        if topics.operations:  # few events, each keyed by its hook: one partition
            ensure_topics(admin, [topics.operations], partitions=1)
        retired = find_retired_tiers(admin, settings)
        if settings.consume == "share":
            refuse_consumer_group(admin, settings.group_id)
            return prepare_share_group(admin, settings.group_id), retired
        return None, retired

    def _consume(self, intake: ConsumerLoop | ShareLoop, parts: Parts) -> None:
        """A consumer thread: runs until stopped, then wakes the delivery loop to finish.

        A loop that stopped by itself (a Kafka client of it failed for good: `intake.fatal`)
        comes to its drain before the worker's stop sets the drain deadline: it drains to
        now, as nothing it waited for can be acknowledged any more, then leaves its groups
        and closes as any stopping loop does."""
        loop, wake = self._loop, self._wake

        def drain_deadline() -> float:
            return parts.deadline[0] if parts.deadline else time.monotonic()

        try:
            intake.run(drain_deadline)
        finally:
            if loop is not None and wake is not None:
                loop.call_soon_threadsafe(wake.set)

    async def _shut_down(
        self,
        parts: Parts,
        threads: list[threading.Thread],
        beside: Mapping[str, Closing] | None = None,
    ) -> None:
        """Stop fetching, drain in-flight deliveries to the deadline; then close the consumers
        (their commit and leave) and the parts `beside` them (hook health, the hook store's
        follower) side by side, each bounded by the one stop deadline, `STOP_GRACE` past the
        drain's: with the broker gone, the stop then takes the longest of their waits, not
        their sum. How long each took is logged. The final export of spans is bounded by that
        deadline too (`run`)."""
        drain = self.settings.drain_timeout
        log.info("stopping: draining in-flight deliveries (up to %gs)", drain)
        if self._watched:
            faulthandler.dump_traceback_later(drain + STOP_WATCHDOG, exit=True)
        began = time.monotonic()
        parts.deadline.append(began + drain)
        for intake in parts.intakes:
            intake.stop()
        cut = await parts.scheduler.drain(drain)
        if cut:
            log.warning("%d deliveries cut at the drain deadline: they will be redelivered", cut)
        drained = time.monotonic()
        stop_by = self._stop_by = parts.deadline[0] + STOP_GRACE
        closings: dict[str, Awaitable[None]] = {
            "consumers": self._close_consumers(parts, threads, stop_by)
        }
        closings.update((name, close(stop_by)) for name, close in (beside or {}).items())
        took = await side_by_side(closings)
        log.info(
            "stop: drained in %.1fs, then closed in %.1fs (%s)",
            drained - began,
            time.monotonic() - drained,
            ", ".join(f"{name} {seconds:.1f}s" for name, seconds in took.items()),
        )

    async def _close_consumers(
        self, parts: Parts, threads: list[threading.Thread], stop_by: float
    ) -> None:
        """Wait for the consumer threads to `stop_by`, leaving behind any still running."""
        # each consumer's leave and close are bounded (`ConsumerLoop._leave`, `close_by`): a
        # thread still running past that is stuck in a Kafka client call, and is left behind
        for thread in threads:
            await asyncio.to_thread(thread.join, max(stop_by - time.monotonic(), 0.0))
        parts.stuck = [thread for thread in threads if thread.is_alive()]
        for thread in parts.stuck:
            log.error(
                "%s did not finish by the stop deadline; exiting without it (its uncommitted"
                " offsets will be redelivered). Where it is:\n%s",
                thread.name,
                _stack_of(thread),
            )
        await parts.pool.aclose()


async def side_by_side(steps: Mapping[str, Awaitable[None]]) -> dict[str, float]:
    """Run `steps` at once and wait for them all; the seconds each took. The first that
    raised raises, once every step ended."""
    began = time.monotonic()

    async def timed(step: Awaitable[None]) -> float:
        await step
        return time.monotonic() - began

    ended = await asyncio.gather(*map(timed, steps.values()), return_exceptions=True)
    took: dict[str, float] = {}
    for name, outcome in zip(steps, ended, strict=True):
        if isinstance(outcome, BaseException):
            raise outcome
        took[name] = outcome
    return took


def find_retired_tiers(admin: AdminClient, settings: Settings) -> tuple[str, ...]:
    """The retry tiers in the cluster that `topics.retry` no longer names (`Topics.
    retired_tiers`), each told once: pairs waiting there when the tiers changed would else
    never end. The retry group reads them until they are empty, never writing to them, and
    they are left for the operator to delete."""
    retired = settings.topics.retired_tiers(admin.list_topics(timeout=10).topics)
    for topic in retired:
        log.info(
            "retry tier %s is not in topics.retry: it is read until it is empty, its pairs"
            " going on to the configured tiers; delete it once the group %s.retry has no lag"
            " on it",
            topic,
            settings.group_id,
        )
    return retired


def _stack_of(thread: threading.Thread) -> str:
    """Where `thread` is now, as a traceback's lines."""
    frame = sys._current_frames().get(thread.ident or 0)
    return "".join(traceback.format_stack(frame)) if frame is not None else "(no frame)"
