"""What one run of a worker is made of, and how it is built: the client pool, the delivery
loop's scheduler and deliverer, and an intake loop per group of topics, wired to each other.

The worker (`engine/worker.py`) starts, runs and stops these parts; here they are only made.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from confluent_kafka import Consumer, Producer, ShareConsumer

from dispatcher.config.settings import Settings
from dispatcher.engine.attempts import attempt_observers
from dispatcher.engine.consumer import ConsumerLoop
from dispatcher.engine.deliver import Deliverer
from dispatcher.engine.health import HealthKeeper
from dispatcher.engine.lag import record_lag
from dispatcher.engine.loop import task_context
from dispatcher.engine.scheduler import Scheduler
from dispatcher.engine.share import ShareLoop
from dispatcher.engine.wiring import Wiring
from dispatcher.http.pool import ClientPool
from dispatcher.kafka.clients import (
    consumer_config,
    made,
    producer_config,
    share_consumer_config,
)
from dispatcher.kafka.sharegroup import ShareLimits
from dispatcher.kafka.writer import outcome_writer
from dispatcher.metrics import Metrics
from dispatcher.model.event import Event, Record
from dispatcher.model.pair import Pair
from dispatcher.pipeline.match import HookIndex

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider


@dataclass(slots=True)
class Parts:
    """What one run of a worker is made of."""

    pool: ClientPool
    deadline: list[float]  # the drain deadline, set when stopping
    scheduler: Scheduler
    intakes: list[ConsumerLoop | ShareLoop] = field(default_factory=list)  # input, then tiers
    stuck: list[threading.Thread] = field(default_factory=list)  # left behind at the stop


@dataclass(frozen=True, slots=True)
class Assembly:
    """What a worker's parts are built from: its settings, the hooks in force (asked afresh
    each time: a hot reload swaps them), its decoder and metrics, its hook-health keeper, its
    tracing (None: off), and the event loop its deliveries run on."""

    settings: Settings
    hooks: Callable[[], HookIndex]
    decoder: Callable[[Record], Event]
    metrics: Metrics
    health: HealthKeeper
    tracing: TracerProvider | None
    loop: asyncio.AbstractEventLoop

    def parts(self, limits: ShareLimits | None, retired: tuple[str, ...] = ()) -> Parts:
        """The consumer loops and the delivery loop's scheduler, wired to each other (the
        groups: `consumer_groups`). With `limits` (queue mode) the input topics are read by
        the share group `group_id`; the tiers, `retired` ones included, and the operations
        topic stay in consumer groups (paused tier partitions hold records until due)."""
        settings, health, loop = self.settings, self.health, self.loop
        pool = ClientPool(settings)
        # the input intake's producer writes attempt records too, batched with its outcomes
        producer = made(Producer, producer_config(settings), settings)
        recorders = attempt_observers(settings, producer, self.metrics, loop)
        tracer = None
        if self.tracing is not None:
            from dispatcher.engine.traced import PairTracer

            tracer = PairTracer(self.tracing)
        deliverer = Deliverer(
            self.metrics,
            settings.topics.retry,
            settings.local_retries,
            observers=[health.observe, *recorders],
            held=health.held,
            tracer=tracer,
            cut_observers=[recorder.cut for recorder in recorders],
        )
        parts = Parts(pool=pool, deadline=[], scheduler=Scheduler(deliverer, pool.client_for))
        holding = held_at_intake(settings, self.hooks, pool, deliverer)
        for group_id, topics in consumer_groups(settings, retired):
            primary = not parts.intakes
            share = limits if primary else None
            own = producer if primary else None
            parts.intakes.append(
                self._intake(parts.scheduler, group_id, topics, primary, share, own, holding)
            )
        return parts

    def _intake(
        self,
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
        settings, loop = self.settings, self.loop
        producer = producer or made(Producer, producer_config(settings), settings)
        writer = outcome_writer(producer, settings, self.metrics)
        intake: ConsumerLoop | ShareLoop
        context = task_context()

        def submit(pairs: list[Pair], until: float | None = None) -> None:
            loop.call_soon_threadsafe(scheduler.start, pairs, intake, until, context=context)

        def release(partitions: set[tuple[str, int]], wait: float) -> Future[int]:
            coroutine = scheduler.release(intake, partitions, wait)
            return asyncio.run_coroutine_threadsafe(coroutine, loop)

        wiring = Wiring(
            settings, producer, writer, self.hooks, self.decoder, self.metrics,
            submit, release, topics, scheduler.deliverer.untried, holding,
            # the input's producer writes the attempt records, those of the pairs cut too
            scheduler.drained.wait if primary else (lambda _seconds: True),
        )  # fmt: skip
        if share is not None:

            def on_share_stats(payload: str) -> None:
                assert isinstance(intake, ShareLoop)
                intake.on_statistics(payload)

            config = share_consumer_config(settings, stats_cb=on_share_stats)
            member = made(ShareConsumer, config, settings)
            intake = ShareLoop(member, wiring, share)
            # it is told of every attempt: a lock hand-off carries a cut pair's attempts on
            deliverer = scheduler.deliverer
            deliverer.observers = (*deliverer.observers, intake.observe)
            return intake

        def on_stats(payload: str) -> None:
            assert isinstance(intake, ConsumerLoop)
            record_lag(payload, intake.assigned, self.metrics.consumer_lag)

        config = consumer_config(settings, group_id, stats_cb=on_stats)
        consumer = made(Consumer, config, settings)
        intake = ConsumerLoop(consumer, wiring, reports_ready=primary, group_id=group_id)
        return intake


def consumer_groups(settings: Settings, retired: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """Each group a worker joins, with its topics, the input's first.

    Input topics, retry tiers and the operations topic are consumed in groups of their own
    (`group_id`, `group_id.retry`, `group_id.operations`): a group balances partition counts
    across all its topics, so in one group a second worker could get every tier partition and
    no input partition. The retry group reads the `retired` tiers too (`Topics.retired_tiers`:
    tiers `topics.retry` no longer names), so that pairs waiting there when the tiers changed
    are still delivered; it commits them as any tier, so once it has no lag on one, that
    topic holds nothing left to read."""
    topics = settings.topics
    groups = [(settings.group_id, list(topics.events))]
    if topics.retry_topics or retired:
        groups.append((f"{settings.group_id}.retry", [*topics.retry_topics, *retired]))
    if topics.operations:  # hooks may subscribe to `dispatcher.hook.*` events
        groups.append((f"{settings.group_id}.operations", [topics.operations]))
    return groups


def held_at_intake(
    settings: Settings,
    hooks: Callable[[], HookIndex],
    pool: ClientPool,
    deliverer: Deliverer,
) -> Callable[[], frozenset[str]]:
    """The hooks whose fresh pairs an intake loop hands to their first retry tier itself,
    in bundles (`ConsumerLoop._hold_back`): their circuit is open and `holds_at_intake`.
    Asked from consumer threads once a batch; none while `retry_bundles` is off."""
    if not settings.retry_bundles:
        return frozenset

    def holding() -> frozenset[str]:
        in_force = hooks()
        found = set()
        for client in pool.refusing():
            hook = in_force.get(client.hook.id)
            if hook is None or not (hook is client.hook or hook == client.hook):
                continue  # a superseded definition's client: fresh pairs have another
            if deliverer.holds_at_intake(hook):
                found.add(hook.id)
        return frozenset(found)

    return holding
