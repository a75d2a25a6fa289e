"""The dispatcher's exception tree.

    DispatcherError
    +-- ConfigError            invalid service configuration or hooks file (exit 1)
    |   +-- SecretError        a ${env:..} / ${file:..} reference that cannot be resolved
    +-- KafkaUnavailable       Kafka not reached in time, or a client failed for good (exit 3)
    +-- DecryptionError        a payload not of its form, or no key opens it (`dispatcher decrypt`)
    +-- ReplaysBusy            the admin service runs as many replays as it allows
    +-- Withdrawn              a pair's partition left this worker: its new owner delivers it
    +-- DeliveryError          one (event, hook) pair failed; carries an error kind
        +-- RetryableError     worth another attempt: network, timeout, 408/425/429/5xx
        +-- PermanentError     never worth another attempt: render, blocked, most 4xx
            +-- DecodeError    an input record that is not a valid event
            |   +-- RegistryUnavailable  the schema registry is away: not read *yet*
            +-- RenderError    the hook's body cannot be rendered for this event
            +-- PayloadTooLarge  the rendered body exceeds max_payload_bytes
            +-- BlockedDestination  the destination guard refused the address
            +-- AuthError      credentials cannot be had, or are refused after a fresh token
            +-- UnreadableResponse  a response body is not in the format the hook declares

Expected outcomes of an HTTP exchange (a 503, a failed `expect`) are values (`Verdict`),
not exceptions; these classes are for conditions that stop a stage.
"""

from __future__ import annotations

import errno
from typing import Literal, get_args

ErrorKind = Literal[
    "http_status",
    "timeout",
    "network",
    "response_invalid",
    "render",
    "auth",
    "blocked",
    "payload_too_large",
    "decode",
    "expired",
    "config",  # the hook's definition cannot be delivered on this worker: no request was made
    "paused",  # the hook is paused (contract section 9): no request was made
    "redelivered",  # queue mode: a record on its last allowed delivery (contract section 11)
    "internal",  # a defect of the dispatcher itself: the pair is dead-lettered, never stuck
    # an attempt cut short under way (a stop, a revoke, a lock hand-off): the kind of its
    # attempt record only, never of an outcome (the pair has no end from that worker)
    "cut",
]
# The kinds an outcome or a dead letter may have: every kind but an attempt's `cut`.
OUTCOME_ERROR_KINDS: tuple[ErrorKind, ...] = tuple(k for k in get_args(ErrorKind) if k != "cut")
# A record that is no event is dead-lettered with no hook, as `decode` (or `internal`, when
# taking it in failed); every other kind belongs to an (event, hook) pair.
RECORD_ERROR_KINDS: tuple[ErrorKind, ...] = ("decode", "internal")
PAIR_ERROR_KINDS: tuple[ErrorKind, ...] = tuple(k for k in OUTCOME_ERROR_KINDS if k != "decode")


class DispatcherError(Exception):
    """Raised for any failure the dispatcher itself reports."""


class ConfigError(DispatcherError):
    """Raised when configuration or a hooks file is invalid; the message names file, line and key."""

    @classmethod
    def cannot_listen(cls, setting: str, host: str, port: int, error: OSError) -> ConfigError:
        """The one error a server of the dispatcher (a worker's /metrics, the admin service)
        ends with when it cannot listen where its settings say: which setting, and what to do."""
        reason = error.strerror or str(error)
        if error.errno == errno.EADDRINUSE:
            reason += "; another process listens there: stop it, or choose another port"
        return cls(f"cannot listen on {host}:{port} ({setting}): {reason}")


class SecretError(ConfigError):
    """Raised when a secret reference cannot be resolved; never carries the secret's value."""


class KafkaUnavailable(DispatcherError):
    """Raised when Kafka cannot be reached within the start-up deadline, or a Kafka client of a
    worker or a command failed for good (a librdkafka fatal error, or a call that never
    returned)."""

    @classmethod
    def failed_for_good(cls, error: str) -> KafkaUnavailable:
        """The one error a run ends with when a Kafka client of it failed for good of `error`
        (a worker's, a replay's: each exits 3 saying so in the same words)."""
        return cls(f"the Kafka client failed for good: {error}")


class DecryptionError(DispatcherError):
    """Raised when no given key decrypts a payload, or the payload is not of the named form."""


class ReplaysBusy(DispatcherError):
    """Raised when the admin service already runs as many replays and dry runs as it allows."""


class Withdrawn(DispatcherError):
    """Raised when a pair's partition left this worker before its next attempt started: its new
    owner delivers it, so it ends here without an outcome."""


class DeliveryError(DispatcherError):
    """Raised when a stage of one (event, hook) pair fails."""

    kind: ErrorKind = "network"

    def __init__(self, message: str, *, kind: ErrorKind | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class RetryableError(DeliveryError):
    """Raised when a failure is transient and the pair may be attempted again."""


class PermanentError(DeliveryError):
    """Raised when a failure will not heal by retrying; the pair is dead-lettered at once."""


class DecodeError(PermanentError):
    """Raised when an input record cannot be decoded into an event."""

    kind: ErrorKind = "decode"


class RegistryUnavailable(DecodeError):
    """Raised when an Avro event's schema cannot be had because the schema registry is away
    (refused, timed out, 5xx, 408, 429): an outage, not bad input.

    Intake holds the record's partition and reads it again (`pipeline.intake.Outage`); it is
    a `DecodeError` so that a reader that only shows or skips an event it cannot read (a
    replay's plan, the admin index) goes on treating it as unreadable for now."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"schema registry unavailable for {where}: {reason}")
        self.reason = reason


class RenderError(PermanentError):
    """Raised when a hook's request body cannot be rendered from an event."""

    kind: ErrorKind = "render"


class PayloadTooLarge(PermanentError):
    """Raised when a rendered body is larger than the configured limit."""

    kind: ErrorKind = "payload_too_large"


class BlockedDestination(PermanentError):
    """Raised when the destination guard refuses the address a hook resolves to."""

    kind: ErrorKind = "blocked"


class AuthError(PermanentError):
    """Raised when credentials cannot be obtained, or are refused even after a fresh token."""

    kind: ErrorKind = "auth"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UnreadableResponse(PermanentError):
    """Raised when a response body cannot be read in the format the hook declares."""

    kind: ErrorKind = "response_invalid"
