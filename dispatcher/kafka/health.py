"""The health topic (`topics.health`, compacted) and the operations topic, on Kafka.

`HealthFollower` keeps what the health topic holds (every worker's latest report per hook, the
latest decision per hook) and tells `on_decision` of each decision read; `HealthWriter` writes
reports, decisions and their operational events; `read_decisions` reads the decisions as they
stand (for `hooks pause/resume` and the admin service).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaException, Producer

from dispatcher.config.settings import Settings
from dispatcher.errors import KafkaUnavailable
from dispatcher.kafka.clients import made, producer_config
from dispatcher.kafka.follower import TopicFollower
from dispatcher.kafka.outgoing import is_fatal
from dispatcher.kafka.polled import Polled
from dispatcher.kafka.scan import scan
from dispatcher.kafka.store import ensure_compacted_topic
from dispatcher.logs import REPEAT_WINDOW, Repeats
from dispatcher.model.event import Record
from dispatcher.model.health import Decision, Entry, Report, decode_entry, encode
from dispatcher.pipeline.notices import CONTENT_TYPE, notice, notice_value

log = logging.getLogger(__name__)
# a broker gone for `message.timeout.ms` fails every report in flight at once, and a report a
# round is refused for as long as it is gone: the same line, said once a window with a count
log.addFilter(Repeats(REPEAT_WINDOW))
FLUSH_SECONDS = 15.0


class HealthFollower(TopicFollower):
    """The health topic as last read: `reports` by key, `decisions` by hook id."""

    def __init__(
        self, settings: Settings, on_decision: Callable[[Decision], None] = lambda _: None
    ) -> None:
        super().__init__(settings, settings.topics.health, "hook-health")
        self.on_decision = on_decision
        self._reports: dict[str, Report] = {}
        self._decisions: dict[str, Decision] = {}

    def start(self, timeout: float = 30.0) -> None:
        """Read the topic to its end (every pause in force known), then follow it."""
        self._read_to_end(timeout)
        self._follow_in_thread()

    def reports(self) -> list[Report]:
        with self._changed:
            return list(self._reports.values())

    def decisions(self) -> dict[str, Decision]:
        with self._changed:
            return dict(self._decisions)

    def wait_for_decision(self, decision: Decision, timeout: float) -> bool:
        """Whether the follower has read `decision` (or a later one on its hook) in time."""

        def read() -> bool:
            seen = self._decisions.get(decision.hook_id)
            return seen is not None and seen.at >= decision.at

        with self._changed:
            return self._changed.wait_for(read, timeout)

    def _apply(self, records: list[Record]) -> None:
        for record in records:
            if record.value is None and record.key is not None:
                # a stopped worker withdrew its report (`withdraw`): it no longer counts, where
                # kept it would until it went stale, a stopped worker deciding for rounds on
                self._reports.pop(record.key.decode("utf-8", "replace"), None)
                continue
            entry = _entry(record)
            if isinstance(entry, Report):
                self._reports[entry.key] = entry
            elif isinstance(entry, Decision):
                self._decisions[entry.hook_id] = entry
                self.on_decision(entry)


def _entry(record: Record) -> Entry | None:
    if record.value is None or record.key is None:
        return None
    return decode_entry(record.value)


def read_decisions(settings: Settings, *, create: bool = True) -> dict[str, Decision]:
    """Every hook's latest decision, as the health topic holds them now; without `create`, a
    topic not there yet is read as empty rather than made (a look that changes nothing)."""
    if create:
        ensure_compacted_topic(settings, settings.topics.health)
    decisions: dict[str, Decision] = {}
    for record in scan(settings, settings.topics.health):
        entry = _entry(record)
        if isinstance(entry, Decision):
            decisions[entry.hook_id] = entry
    return decisions


class HealthWriter:
    """Writes reports and decisions to the health topic, and each decision's operational event
    to the operations topic (when there is one), in that order. An event the operations topic
    did not take is written again at the next `poll` (it keeps its id, so a copy changes
    nothing; a decision decided again, its event too, waits as one); whether a decision was taken is told to its `written` callback, whose caller
    decides again. Of the records refused since the last `flush`, only the first one's error
    and how many are kept: a worker's writer lives as long as the worker, and through a long
    outage it is refused every round.

    Its producer is polled as the outcome writer's is (`Polled`): once it failed for good
    (a librdkafka fatal error) `fatal` says of what, nothing is written any more, and its owner
    stops (a worker: `HealthKeeper.run`; `hooks pause` and `resume`: `flush` raises)."""

    def __init__(self, settings: Settings, producer: Any = None) -> None:
        self.health = settings.topics.health
        self.operations = settings.topics.operations
        if producer is None:  # (not `or`: a producer with nothing queued has len 0)
            producer = made(Producer, producer_config(settings, **{"linger.ms": 0}), settings)
        self.producer = producer
        self._polled = Polled(producer)
        self.failed = 0  # records refused or not acknowledged since the last `flush`
        self.first_failure: str | None = None  # the error of the first of them
        self._unsent: dict[str, tuple[str, bytes]] = {}  # events to write again: id -> key, value

    def report(self, report: Report) -> None:
        self._produce(self.health, report.key, encode(report))

    def forget(self, key: str) -> None:
        """A tombstone for `key` (a stopped worker's report)."""
        self._produce(self.health, key, None)

    def decide(
        self,
        decision: Decision,
        written: Callable[[Decision, bool], None] = lambda _decision, _taken: None,
    ) -> None:
        """Write `decision` and its event; `written(decision, taken)` runs on the decision
        record's delivery report (served by `poll` or `flush`), or at once when it could not
        even be queued."""

        def done(err: Any, _message: Any) -> None:
            self._acked(err, _message)
            written(decision, err is None)

        if not self._produce(self.health, decision.key, encode(decision), on_delivery=done):
            written(decision, False)
        event = notice(decision)
        if event is not None and self.operations:
            self._event(event["id"], decision.hook_id, notice_value(event))

    @property
    def fatal(self) -> str | None:
        """What the producer failed for good of (`Polled.fatal`); None while it works."""
        return self._polled.fatal

    def poll(self) -> None:
        """Write again the events not taken, and serve the delivery reports."""
        unsent, self._unsent = self._unsent, {}
        for event_id, (key, value) in unsent.items():
            self._event(event_id, key, value)
        self._polled.poll(0)

    def flush(self, timeout: float = FLUSH_SECONDS) -> None:
        """Wait until every record written is acknowledged; `KafkaUnavailable` otherwise, or
        when one was refused since the last flush (whose failures the next does not repeat),
        naming the producer's fatal error rather than what it refused for it."""
        left = self._polled.flush(timeout)
        failures = self._take_failures()
        if self.fatal is not None:
            failures = f"its producer failed for good: {self.fatal}"
        reason = failures or ("not acknowledged in time" if left else None)
        if reason is not None:
            raise KafkaUnavailable(f"the health topic did not take the change: {reason}")

    def _take_failures(self) -> str | None:
        """The failures since the last flush in a line (None when there was none), forgotten."""
        failed, first = self.failed, self.first_failure
        self.failed, self.first_failure = 0, None
        if first is None or failed == 1:
            return first
        return f"{first} (and {failed - 1} more)"

    def _event(self, event_id: str, key: str, value: bytes) -> None:
        """Write an operational event; refused, it waits for the next `poll`, in the place of
        any copy of it (the same id: its decision decided again) already waiting."""

        def done(err: Any, _message: Any) -> None:
            self._acked(err, _message)
            if err is not None:
                self._unsent[event_id] = (key, value)

        headers: list[tuple[str, str | bytes | None]] = [("content-type", CONTENT_TYPE)]
        if not self._produce(self.operations, key, value, headers, done):
            self._unsent[event_id] = (key, value)

    def _produce(
        self,
        topic: str,
        key: str,
        value: bytes | None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
        on_delivery: Callable[[Any, Any], None] | None = None,
    ) -> bool:
        """Queue one record; False (logged) when the producer refused it, or failed for good
        (then unlogged: its owner says so once, and stops)."""
        if self.fatal is not None:
            return False
        try:
            self.producer.produce(
                topic,
                key=key.encode(),
                value=value,
                headers=headers,
                on_delivery=on_delivery or self._acked,
            )
        except (BufferError, KafkaException) as exc:
            error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else exc
            self._refused(error, f"could not write to {topic}")
            return False
        return True

    def _acked(self, err: Any, _message: Any) -> None:
        if err is not None:
            self._refused(err, "a health record was not acknowledged")

    def _refused(self, error: Any, what: str) -> None:
        """A record not written: counted, and logged unless the producer failed for good."""
        if is_fatal(error):
            self._polled.failed_for_good(error)
        if self.fatal is None:
            log.warning("%s: %s", what, error)
        self._failed(str(error))

    def _failed(self, error: str) -> None:
        self.failed += 1
        if self.first_failure is None:
            self.first_failure = error
