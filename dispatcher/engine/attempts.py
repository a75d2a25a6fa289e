"""The attempts topic's observer: every HTTP attempt a `Deliverer` makes becomes an attempt
record, written after the attempt's own pair has moved on.

The observer only queues (pair, number, attempt, time); the records are made and handed to the
producer in one callback per turn of the delivery loop, so an attempt's continuation (judging,
the next step, writing its outcome) never waits on them. An attempt cut under way (`cut`) is
handed to the producer at once: the worker may be stopping, and flushes its producer once the
delivery loop has cut what it cut (`WiredLoop.flush_cut_records`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from dispatcher.config.settings import Settings
from dispatcher.hooks.masking import TextMask
from dispatcher.http.sender import Attempt
from dispatcher.kafka.attempts import AttemptWriter
from dispatcher.metrics import Metrics
from dispatcher.model.attempt import AttemptRecord
from dispatcher.model.hook import Hook
from dispatcher.model.pair import Pair
from dispatcher.pipeline.excerpt import excerpt

Seen = tuple[Pair, int, Attempt, float]


class AttemptRecorder:
    """An `AttemptObserver` writing attempt records through `writer`, on `loop`."""

    def __init__(
        self,
        writer: AttemptWriter,
        loop: asyncio.AbstractEventLoop,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.writer = writer
        self.loop = loop
        self.clock = clock
        self._seen: list[Seen] = []
        self._masks: dict[str, tuple[Hook, TextMask]] = {}

    def __call__(self, pair: Pair, number: int, attempt: Attempt) -> None:
        if not self._seen:
            self.loop.call_soon(self.flush)
        self._seen.append((pair, number, attempt, self.clock()))

    def cut(self, pair: Pair, number: int, attempt: Attempt) -> None:
        """Write the record of an attempt cut under way (a cut observer of the `Deliverer`),
        now, after those seen before it."""
        self._seen.append((pair, number, attempt, self.clock()))
        self.flush()

    def flush(self) -> None:
        """Write every attempt seen since the last flush."""
        seen, self._seen = self._seen, []
        for pair, number, attempt, ended in seen:
            self.writer.write(self.record(pair, number, attempt, ended))

    def record(self, pair: Pair, number: int, attempt: Attempt, ended: float) -> AttemptRecord:
        """The record of one attempt that ended at `ended` (epoch s)."""
        verdict = attempt.verdict
        shown = None if verdict.status is None else excerpt(verdict.head)  # None: no answer
        if shown:
            shown = self._mask(pair.hook)(shown)
        return AttemptRecord(
            event_id=pair.event.id,
            hook_id=pair.hook.id,
            attempt=number,
            idempotency_key=pair.idempotency_key,
            http_status=verdict.status,
            latency_ms=attempt.seconds * 1000,
            error_kind=verdict.kind,
            error=verdict.error,
            response_excerpt=shown,
            at=ended - attempt.seconds,
            tenant=pair.event.tenant,
            source=pair.source,
            hook_tenant=pair.hook.tenant,
        )

    def _mask(self, hook: Hook) -> TextMask:
        """The hook's text mask, made again when the hook's definition changed."""
        known = self._masks.get(hook.id)
        if known is None or known[0] is not hook:
            known = self._masks[hook.id] = (hook, TextMask(hook))
        return known[1]


def attempt_observers(
    settings: Settings, producer: Any, metrics: Metrics, loop: asyncio.AbstractEventLoop
) -> list[AttemptRecorder]:
    """The attempts topic's observer on `producer`, or none when `topics.attempts` is empty
    (then nothing of it runs at all). A `Deliverer` is given it among its `observers` and its
    `cut` among its `cut_observers`."""
    topic = settings.topics.attempts
    if not topic:
        return []
    return [AttemptRecorder(AttemptWriter(producer, topic, metrics), loop)]
