"""A producer polled and flushed without its end ever raised out of the polling thread.

A producer that failed for good (librdkafka's fatal error) is told by confluent-kafka as an
exception from `poll()` and `flush()`, not through the error callback. Every producer of the
dispatcher (the outcome writer's, the hook-health writer's, a replay's, `dispatcher produce`'s)
is polled through `Polled`, which keeps that error in `fatal` for whoever writes through it to
stop on.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, KafkaException

from dispatcher.kafka.outgoing import is_fatal


class Polled:
    """A producer polled and flushed without its end ever raised: once it failed for good (a
    librdkafka fatal error, see the module) `fatal` says of what, for whoever writes through it
    to stop, and nothing written through it is waited for any more."""

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self._fatal: KafkaError | None = None

    @property
    def fatal(self) -> str | None:
        """What the producer failed for good of, in a line; None while it works."""
        error = self._fatal
        return None if error is None else f"{error.str()} ({error.name()})"

    def poll(self, timeout: float) -> None:
        """Serve the producer's delivery reports, waiting up to `timeout` seconds for one; a
        fatal error is kept in `fatal`, not raised."""
        try:
            self.producer.poll(timeout)
        except (KafkaException, SystemError) as exc:
            self._failed(exc)

    def flush(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for every record to be acknowledged; how many are not.
        A fatal error is kept in `fatal`, not raised."""
        try:
            left: int = self.producer.flush(timeout)
        except (KafkaException, SystemError) as exc:
            self._failed(exc)
            return len(self.producer)
        return left

    def _failed(self, exc: KafkaException | SystemError) -> None:
        error = fatal_cause(exc)
        if error is None:
            raise exc  # not the producer's end: a defect, which must not pass unseen
        self.failed_for_good(error)

    def failed_for_good(self, error: KafkaError) -> None:
        """The producer failed for good (`is_fatal(error)`, as `produce()` or a delivery report
        may tell first). The error that says why (`fatal()` set, raised once by `poll`) wins
        over the `_FATAL` that `produce()` answers from then on."""
        if self._fatal is None or (error.fatal() and not self._fatal.fatal()):
            self._fatal = error


def fatal_cause(exc: BaseException) -> KafkaError | None:
    """The librdkafka fatal error `exc` is, or was raised from; None when it is none. confluent-
    kafka sets the fatal error as its error callback's exception, and a delivery report that the
    same `poll()` or `flush()` serves after it runs with that exception still set: the first
    built-in the report calls fails with a SystemError raised from it, which the call raises."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, KafkaException) and cause.args and is_fatal(cause.args[0]):
            error: KafkaError = cause.args[0]
            return error
        cause = cause.__cause__
    return None
