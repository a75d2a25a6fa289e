"""The hook store: hook definitions in a compacted Kafka topic (contract `topics.hooks`).

Key = hook id, value = the definition as JSON, tombstone = deleted. Definitions are checked
with the same validation as hooks files before anything is written, and the records of one
apply go in one Kafka transaction, so an apply is taken whole or not at all. The store holds
secret *references* only (`${env:NAME}`, `${file:/path}`): a literal secret is refused, as the
contract keeps secrets out of every topic. `StoreFollower` keeps a worker's hooks current.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from ruamel.yaml import YAML

from dispatcher.config.secrets import is_reference
from dispatcher.config.settings import Settings
from dispatcher.errors import ConfigError, KafkaUnavailable
from dispatcher.hooks.loader import (
    Problem,
    definition_problems,
    hook_from_definition,
    plain,
    validate_hooks_text,
)
from dispatcher.kafka.scan import scan
from dispatcher.logs import KAFKA
from dispatcher.model.event import Record
from dispatcher.model.hook import SECRET_AUTH_KEYS, Hook
from dispatcher.pipeline.match import HookIndex

Offsets = dict[int, int]
TIMEOUT = 30.0


def refusals(raw: Any, where: str) -> list[Problem]:
    """Why the store would refuse definition `raw` (none: it takes it)."""
    problems = definition_problems(raw, where) + literal_secrets(raw, where)
    errors = [p for p in problems if not p.warning]
    if errors:
        return errors
    try:
        hook_from_definition(raw, where)
    except ConfigError as exc:
        return [Problem(where, None, "", str(exc))]
    return []


def check_definition(raw: Any, where: str) -> Hook:
    """The hook `raw` defines, if the store may hold it; else `ConfigError` listing every problem."""
    errors = refusals(raw, where)
    if errors:
        raise ConfigError("\n".join(str(p) for p in errors))
    return hook_from_definition(raw, where)


def literal_secrets(raw: Any, where: str) -> list[Problem]:
    """Secrets written as values rather than references: the store refuses to hold them."""
    if not isinstance(raw, dict):
        return []
    places: list[tuple[str, Any]] = []
    auth = raw.get("auth")
    if isinstance(auth, dict):
        for name in SECRET_AUTH_KEYS.get(str(auth.get("type")), ()):
            values = auth.get(name)
            for i, value in enumerate(values if isinstance(values, list) else [values]):
                suffix = f"[{i}]" if isinstance(values, list) else ""
                places.append((f"auth.{name}{suffix}", value))
    encryption = raw.get("encryption")
    if isinstance(encryption, dict):
        places.append(("encryption.key", encryption.get("key")))
        keys = encryption.get("keys")
        for i, entry in enumerate(keys if isinstance(keys, list) else []):
            if isinstance(entry, dict):
                places.append((f"encryption.keys[{i}].key", entry.get("key")))
    message = "the hook store holds secret references only: write ${env:NAME} or ${file:/path}"
    return [
        Problem(where, None, path, message)
        for path, value in places
        if isinstance(value, str) and not is_reference(value)
    ]


def definitions_in_file(path: str | Path) -> list[dict[str, Any]]:
    """The definitions of a hooks file, each one fit for the store; else every problem at once."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read hooks file: {exc}") from None
    problems = [p for p in validate_hooks_text(text, str(path)) if not p.warning]
    if problems:
        raise ConfigError("\n".join(str(p) for p in problems))
    raws: list[dict[str, Any]] = plain(YAML(typ="rt", pure=True).load(text))["hooks"]
    errors: list[str] = []
    for i, raw in enumerate(raws):
        try:
            check_definition(raw, f"{path}: hooks[{i}]")
        except ConfigError as exc:
            errors.append(str(exc))
    if errors:
        raise ConfigError("\n".join(errors))
    return raws


def fold(stored: dict[str, Hook], record: Record) -> str | None:
    """Apply one store record to `stored`; the reason it was ignored, or None when applied."""
    if record.key is None:
        return "record without a key"
    hook_id = record.key.decode("utf-8", "replace")
    if record.value is None:
        stored.pop(hook_id, None)
        return None
    where = f"{record.topic}[{record.partition}]@{record.offset}"
    try:
        raw = json.loads(record.value)
        if not isinstance(raw, dict) or raw.get("id") != hook_id:
            return f"{where}: the definition's id is not its key {hook_id!r}"
        stored[hook_id] = check_definition(raw, where)
    except ValueError:
        return f"{where}: not JSON"
    except ConfigError as exc:
        return str(exc)
    return None


def merged(base: Iterable[Hook], stored: Mapping[str, Hook]) -> HookIndex:
    """The hooks in force: the file's, each replaced by the store's definition of the same id,
    then the store's own (by id)."""
    file_hooks = list(base)
    ids = {hook.id for hook in file_hooks}
    extra = [stored[i] for i in sorted(stored) if i not in ids]
    return HookIndex([stored.get(h.id, h) for h in file_hooks] + extra)


def hooks_in_force(settings: Settings) -> HookIndex:
    """The hooks a worker started now would use: the hooks file's, then the store's."""
    from dispatcher.hooks.loader import load_hooks_file

    base = load_hooks_file(settings.hooks_file) if settings.hooks_file else []
    if not settings.topics.hooks:
        return HookIndex(base)
    return merged(base, HookStore(settings).read())


def ensure_store_topic(settings: Settings) -> None:
    """Create the store topic (one partition, compacted) when it does not exist yet."""
    admin = AdminClient(settings.kafka_config())
    topic = settings.topics.hooks
    try:
        if topic in admin.list_topics(timeout=TIMEOUT).topics:
            return
        config = {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
        future = admin.create_topics([NewTopic(topic, num_partitions=1, config=config)])[topic]
        future.result(TIMEOUT)
    except KafkaException as exc:
        if "TOPIC_ALREADY_EXISTS" not in str(exc):
            raise KafkaUnavailable(f"cannot create the hook store topic {topic}: {exc}") from None


class HookStore:
    """Writes to and reads the store topic; one transactional producer, made on first write."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topics.hooks
        self._producer: Producer | None = None
        self._lock = threading.Lock()  # one transaction at a time (admin API threads)

    def read(self) -> dict[str, Hook]:
        """The store's hooks as they stand (invalid records ignored, as a worker would)."""
        stored: dict[str, Hook] = {}
        for record in scan(self.settings, self.topic):
            fold(stored, record)
        return stored

    def apply(self, definitions: list[dict[str, Any]]) -> Offsets:
        """Check every definition, then write them all in one transaction; the offsets written.

        Nothing is written when any definition is refused (`ConfigError` lists every problem).
        """
        errors: list[str] = []
        ids: set[str] = set()
        for i, raw in enumerate(definitions):
            try:
                hook = check_definition(raw, f"hooks[{i}]")
            except ConfigError as exc:
                errors.append(str(exc))
                continue
            if hook.id in ids:
                errors.append(f"hooks[{i}]: id: duplicate id {hook.id!r}")
            ids.add(hook.id)
        if errors:
            raise ConfigError("\n".join(errors))
        records = [(str(raw["id"]), json.dumps(raw, separators=(",", ":"))) for raw in definitions]
        return self._write([(key, value.encode()) for key, value in records])

    def delete(self, hook_id: str) -> Offsets:
        """Write the tombstone of `hook_id`."""
        return self._write([(hook_id, None)])

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(TIMEOUT)
            self._producer = None

    def _write(self, records: list[tuple[str, bytes | None]]) -> Offsets:
        with self._lock:
            return self._write_one_transaction(records)

    def _write_one_transaction(self, records: list[tuple[str, bytes | None]]) -> Offsets:
        producer = self._transactional()
        written: Offsets = {}
        failures: list[str] = []

        def on_delivery(err: Any, message: Any) -> None:
            if err is not None:
                failures.append(str(err))
            else:
                written[message.partition()] = max(
                    written.get(message.partition(), 0), message.offset() + 1
                )

        try:
            producer.begin_transaction()
            for key, value in records:
                producer.produce(self.topic, key=key.encode(), value=value, on_delivery=on_delivery)
            producer.commit_transaction(TIMEOUT)
        except KafkaException as exc:
            self._abort(producer)
            raise KafkaUnavailable(f"the hook store did not take the change: {exc}") from None
        if failures:
            raise KafkaUnavailable(f"the hook store did not take the change: {failures[0]}")
        return written

    def _transactional(self) -> Producer:
        if self._producer is None:
            ensure_store_topic(self.settings)
            producer = Producer(
                {
                    **self.settings.kafka_config(),
                    "transactional.id": f"dugaa-hooks-{uuid.uuid4().hex}",
                    "enable.idempotence": True,
                    "acks": "all",
                    "logger": KAFKA,
                }
            )
            try:
                producer.init_transactions(TIMEOUT)
            except KafkaException as exc:
                raise KafkaUnavailable(
                    f"the hook store cannot start a transaction: {exc}"
                ) from None
            self._producer = producer
        return self._producer

    def _abort(self, producer: Producer) -> None:
        try:
            producer.abort_transaction(TIMEOUT)
        except KafkaException:
            self._producer = None  # a fatal state: the next write starts a fresh producer
