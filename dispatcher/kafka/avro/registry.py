"""Avro schemas from a Confluent-compatible Schema Registry, fetched by id once and kept.

An id the registry does not know is remembered for `MISS_SECONDS`, so a stream of records
naming it costs one look-up, not one each. A registry that is away (refused, timed out, 5xx)
raises `RegistryUnavailable`, never `DecodeError` itself: the record is fine, the look-up is
made again later. Once it failed so, look-ups of ids not held fail at once for `AWAY_SECONDS`:
a consumer thread meeting many partitions of such events waits on one look-up, not one each.
Look-ups of different ids never wait on each other (one slow id must not hold up the rest);
concurrent look-ups of one id make one request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dispatcher.config.secrets import Secret
from dispatcher.errors import ConfigError, DecodeError, RegistryUnavailable
from dispatcher.kafka.avro.schemas import AvroSchema, NamedSchemas

if TYPE_CHECKING:  # imported where used: the registry client brings its own HTTP stack (~9 MB),
    # which a worker without a `schema_registry` section never needs
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

NOT_FOUND = 404
OUTAGE_STATUSES = frozenset({408, 429})  # and every 5xx: the registry's trouble, not the id's
AWAY_SECONDS = 1.0
# An event decoder's client retries nothing itself and waits at most TIMEOUT_SECONDS: its caller
# (a consumer thread) holds the record and asks again later, and must not sleep through its
# other partitions or a stop in the client's own retries (3, backing off up to 7 s, by default)
EVENT_CLIENT_DEFAULTS: Mapping[str, Any] = {"max.retries": 0, "timeout": 5.0}
MAX_REFERENCE_DEPTH = 16
MISS_SECONDS = 30.0
MISSES_KEPT = 1024
LOCK_STRIPES = 64  # bounded: the ids in hostile records are any number


def registry_client(
    config: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
) -> SchemaRegistryClient | None:
    """A client for the `schema_registry` configuration section, or None when it names no `url`.

    The section is passed to `SchemaRegistryClient` as-is (`url`, `basic.auth.user.info`,
    `ssl.ca.location`, ...), secrets revealed, over `defaults` for the keys it does not set;
    `mock://NAME` gives confluent-kafka's in-memory one.
    """
    if not config.get("url"):
        return None
    from confluent_kafka.schema_registry import SchemaRegistryClient

    conf = dict(defaults or {})
    conf.update({str(k): v.reveal() if isinstance(v, Secret) else v for k, v in config.items()})
    return SchemaRegistryClient.new_client(conf)


class RegistrySchemas:
    """Parsed Avro schemas by registry id: each is fetched once, then served from memory."""

    __slots__ = (
        "_away",
        "_by_id",
        "_client",
        "_clock",
        "_locks",
        "_missing",
        "_missing_lock",
    )

    def __init__(
        self, client: SchemaRegistryClient, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._clock = clock
        self._by_id: dict[int, AvroSchema] = {}
        self._missing: dict[int, float] = {}  # id -> until when it counts as missing
        self._missing_lock = threading.Lock()
        self._locks = tuple(threading.Lock() for _ in range(LOCK_STRIPES))
        self._away: tuple[float, str] | None = None  # until when, and why, the registry is away

    def by_id(self, schema_id: int) -> AvroSchema:
        """The schema registered under `schema_id`; `DecodeError` saying why when there is none,
        `RegistryUnavailable` when the registry cannot say."""
        found = self._by_id.get(schema_id)
        if found is not None:
            return found
        self._raise_if_missing(schema_id)
        self._raise_if_away(schema_id)
        with self._locks[schema_id % LOCK_STRIPES]:
            found = self._by_id.get(schema_id)
            if found is None:
                self._raise_if_missing(schema_id)
                self._raise_if_away(schema_id)
                found = self._fetched(schema_id)
                self._by_id[schema_id] = found
        return found

    def _raise_if_missing(self, schema_id: int) -> None:
        until = self._missing.get(schema_id)
        if until is not None and self._clock() < until:
            raise DecodeError(f"schema id {schema_id} is not in the schema registry")

    def _raise_if_away(self, schema_id: int) -> None:
        away = self._away
        if away is not None and self._clock() < away[0]:
            raise RegistryUnavailable(f"schema id {schema_id}", away[1])

    def _fetched(self, schema_id: int) -> AvroSchema:
        """`_fetch`, noting an outage (for `AWAY_SECONDS`), and its end."""
        try:
            found = self._fetch(schema_id)
        except RegistryUnavailable as exc:
            self._away = (self._clock() + AWAY_SECONDS, exc.reason)
            raise
        self._away = None
        return found

    def _remember_missing(self, schema_id: int) -> None:
        now = self._clock()
        with self._missing_lock:
            if len(self._missing) >= MISSES_KEPT:
                self._missing = {k: t for k, t in self._missing.items() if t > now}
            if len(self._missing) < MISSES_KEPT:
                self._missing[schema_id] = now + MISS_SECONDS

    def register(self, subject: str, schema: AvroSchema) -> int:
        """Register `schema` under `subject` (a no-op when it is already there); its id.

        Raises `ConfigError` when the registry refuses it or cannot be reached.
        """
        from confluent_kafka.schema_registry import Schema

        try:
            schema_id = self._client.register_schema(subject, Schema(schema.text, "AVRO"))
        except Exception as exc:  # SchemaRegistryError or the HTTP client's transport errors
            raise ConfigError(f"schema registry did not register {subject}: {exc!r}") from None
        self._by_id.setdefault(schema_id, schema)
        with self._missing_lock:
            self._missing.pop(schema_id, None)
        return int(schema_id)

    def _fetch(self, schema_id: int) -> AvroSchema:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        where = f"schema id {schema_id}"
        try:
            schema = self._client.get_schema(schema_id)
            named: NamedSchemas = {}
            recursive = self._resolve_references(schema, named, depth=0)
        except SchemaRegistryError as exc:
            status = exc.http_status_code
            if status == NOT_FOUND:
                self._remember_missing(schema_id)
                raise DecodeError(f"{where} is not in the schema registry") from None
            if status in OUTAGE_STATUSES or status >= 500:
                raise RegistryUnavailable(where, f"HTTP {status}: {exc.error_message}") from None
            raise DecodeError(f"schema registry refused {where}: {exc}") from None
        except DecodeError:
            raise
        except Exception as exc:  # transport errors of the registry's HTTP client
            raise RegistryUnavailable(where, f"{type(exc).__name__}: {exc}") from None
        if (schema.schema_type or "AVRO").upper() != "AVRO":
            raise DecodeError(f"{where} is a {schema.schema_type} schema, not Avro")
        try:
            return AvroSchema.from_text(schema.schema_str or "", named=named, recursive=recursive)
        except ValueError as exc:
            raise DecodeError(f"{where}: {exc}") from None

    def _resolve_references(self, schema: Schema, named: NamedSchemas, *, depth: int) -> bool:
        """Parse the schemas `schema` references into `named`; whether any of them is recursive."""
        if depth > MAX_REFERENCE_DEPTH:
            raise DecodeError("schema references nest deeper than 16 levels")
        recursive = False
        for reference in schema.references or ():
            if reference.subject is None or reference.version is None:
                raise DecodeError(f"schema reference {reference.name} lacks a subject or version")
            registered = self._client.get_version(reference.subject, reference.version)
            child = registered.schema
            recursive |= self._resolve_references(child, named, depth=depth + 1)
            try:
                parsed = AvroSchema.from_text(child.schema_str or "", named=named)
            except ValueError as exc:
                raise DecodeError(f"referenced schema {reference.name}: {exc}") from None
            recursive |= parsed.recursive
        return recursive
