"""What every intake loop is wired to, group mode's and queue mode's alike: one value, so a
worker builds it once and both loops read the same names."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol

from dispatcher.config.settings import Settings
from dispatcher.engine.liveness import Pulse
from dispatcher.engine.scheduler import CANCEL_GRACE
from dispatcher.kafka.closing import close_within
from dispatcher.kafka.producing import Done
from dispatcher.kafka.writer import OutcomeWriter, decode_failure_records
from dispatcher.metrics import Metrics
from dispatcher.model.event import Record
from dispatcher.model.outcome import Outcome
from dispatcher.model.pair import Pair
from dispatcher.pipeline.intake import Decoder, Intake, Undecodable
from dispatcher.pipeline.match import HookIndex

log = logging.getLogger(__name__)
Key = tuple[str, int]
P = ParamSpec("P")
# seconds a consumer's close (commit, leaving the group) gets after the drain and the leave: a
# LeaveGroup held up behind a JoinGroup (a dead member's rebalance) times out after 5 s
CLOSE_GRACE = 6.0
ACKS_EVERY = 0.02  # seconds between two servings of acknowledgements while waiting
# seconds past the drain deadline the last flush waits for the delivery loop's drain to end: its
# cut (`Scheduler.drain`) starts at the deadline and gives the pairs CANCEL_GRACE to end
CUT_WAIT = CANCEL_GRACE + 1.0
LAST_FLUSH = 1.0  # seconds the last flush waits for Kafka's acknowledgements, at most


class Submit(Protocol):
    """Hands pairs to the delivery loop (`Scheduler.start`); `until`: the monotonic time from
    which none of them is to start an attempt or end there (queue mode: its records' lock)."""

    def __call__(self, pairs: list[Pair], until: float | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class Wiring:
    """An intake loop's ties to the rest of the worker.

    `producer` is the loop's own (its acknowledgements are served on the loop's thread, which
    owns what they complete); `submit` hands pairs to the delivery loop; `release` lets go of
    the running pairs of some partitions and answers how many it cut; `untried` ends a pair
    given no attempt (it traces it when tracing is on: `Deliverer.untried`); `holding` names
    the hooks whose fresh pairs the loop hands to their first retry tier itself (their circuit
    is open: `assembly.held_at_intake`). `drained(seconds)` waits up to `seconds` for the
    delivery loop's drain at a stop to end, and says whether it has: by then the attempt
    records of the requests it cut are written, on the producer of the loop given it (the
    input's, which writes them; the other loops' never wait).
    """

    settings: Settings
    producer: Any
    writer: OutcomeWriter
    hooks: Callable[[], HookIndex]
    decode: Decoder
    metrics: Metrics
    submit: Submit
    release: Callable[[set[Key], float], Future[int]]
    topics: Sequence[str]
    untried: Callable[[Pair, Outcome], Outcome] = lambda _pair, outcome: outcome
    holding: Callable[[], Collection[str]] = lambda: ()
    drained: Callable[[float], bool] = lambda _seconds: True


def say_producer_failed(error: str, left: str) -> None:
    """Say that a producer failed for good of `error` (`Polled.fatal`), and so what it serves
    stops, in the one line every part uses (an intake loop, hook health, a replay), so that an
    alert or a search finds them all; `left`: what that leaves undone, and for whom."""
    log.error("fatal producer error, stopping (%s): %s", left, error)


class WiredLoop:
    """The base of an intake loop: its consumer, and its wiring as attributes of its own.
    `fatal` names the error a Kafka client of the loop failed for good of, which stopped the
    loop, and the worker with it (it exits 3)."""

    def __init__(self, consumer: Any, wiring: Wiring) -> None:
        self.consumer = consumer
        self.stopping = threading.Event()
        self.pulse = Pulse.unwatched()  # beats once a turn (a worker's: `Heartbeats.pulse_of`)
        self.fatal: str | None = None
        self.settings = wiring.settings
        self.topics = list(wiring.topics)
        self.producer = wiring.producer
        self.writer = wiring.writer
        self.hooks = wiring.hooks
        self.decode = wiring.decode
        self.metrics = wiring.metrics
        self.submit = wiring.submit
        self.release = wiring.release
        self.untried = wiring.untried
        self.holding = wiring.holding
        self.drained = wiring.drained

    def stop(self) -> None:
        self.stopping.set()

    def producer_failed(self) -> bool:
        """Whether the loop's producer failed for good (`Producing.fatal`). The first time it
        is seen, the loop says so and stops: nothing it is given can be acknowledged any more,
        so no pair ends and nothing more is committed; the next owner of its partitions
        delivers what is not."""
        error = self.writer.fatal
        if error is None:
            return False
        if self.fatal is None:
            say_producer_failed(
                error, "what is not acknowledged is left uncommitted, for the next worker"
            )
            self.fatal = error
            self.stop()
        return True

    def taken(
        self,
        take: Callable[Concatenate[Record, P], Intake],
        record: Record,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Intake:
        """`take(record, ...)`: the record's intake; an `internal` dead letter's when taking
        it in fails unexpectedly (a defect of ours, not a record that does not decode), logged
        with the traceback, so that one record neither ends the consumer thread nor holds its
        partition."""
        try:
            return take(record, *args, **kwargs)
        except Exception as exc:
            log.error(
                "taking in %s[%d]@%d failed unexpectedly: it is dead-lettered",
                record.topic,
                record.partition,
                record.offset,
                exc_info=exc,
            )
            return Undecodable(f"internal error: {type(exc).__name__}: {exc}", "internal")

    def dead_letter(self, record: Record, why: Undecodable, done: Done, now: float) -> None:
        """The dead letter of `record`, not a valid event (or one that intake failed on:
        `why.kind`), with no hook but a retry-tier pair's (`why.state`); `done` runs once it
        is acknowledged."""
        if why.kind == "decode":
            self.metrics.decode_failures.labels(record.topic).inc()
        hook_id = "" if why.state is None else why.state.hook_id
        self.metrics.dead_letters.labels(hook_id, why.kind).inc()
        records = decode_failure_records(
            self.settings.topics, record, why.error, now, why.kind, why.state, why.hook_tenant
        )
        self.writer.write_now(records, done, record)

    def flush_cut_records(self, deadline: float) -> None:
        """The stop's last flush of the loop's producer, once the delivery loop's drain has
        ended (at most CUT_WAIT past `deadline`): the attempt records of the requests it cut
        at the deadline are written after the drain's own flush. Bounded by LAST_FLUSH when
        Kafka does not answer; skipped when the producer failed for good, and when the loop
        stopped by itself (the worker's drain starts only once it has ended)."""
        if self.fatal is not None or self.writer.fatal is not None:
            return
        until = deadline + CUT_WAIT
        while not self.drained(ACKS_EVERY) and time.monotonic() < until:
            self.writer.poll(0)  # the acks of what was written meanwhile
        self.writer.flush_unsent()
        self.writer.flush(LAST_FLUSH)

    def close(self) -> None:
        self.consumer.close()

    def close_by(self, deadline: float) -> None:
        """Close the consumer, waiting for it to `deadline` and CLOSE_GRACE after."""
        seconds = deadline - time.monotonic() + CLOSE_GRACE
        close_within(self.close, seconds, f"the consumer of {', '.join(self.topics)}")
