"""The records the dispatcher reads and the CloudEvents they carry, as frozen values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from dispatcher.errors import DecodeError
from dispatcher.model.values import quick_init

Headers = tuple[tuple[str, bytes | None], ...]
REQUIRED_ATTRIBUTES = ("id", "type", "source", "specversion")
TEXT_ATTRIBUTES = (*REQUIRED_ATTRIBUTES, "time", "subject", "datacontenttype", "tenant")
# the names that are no producer's extension: CloudEvents' context attributes, the data (as
# structured mode writes it), and the extensions with a place of their own on `Event`
NOT_EXTENSIONS = frozenset(
    {
        *TEXT_ATTRIBUTES,
        "dataschema",
        "data",
        "data_base64",
        "traceparent",
        "tracestate",
    }
)


class MessageLike(Protocol):
    """What the dispatcher reads of a `confluent_kafka.Message` (which tests cannot construct)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> Sequence[tuple[str, bytes | None]] | None: ...
    def timestamp(self) -> tuple[int, int]: ...


@quick_init
@dataclass(frozen=True, slots=True)
class Record:
    """One input record as it came from Kafka, kept unchanged for dead letters."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int | None = None

    @classmethod
    def from_message(cls, message: MessageLike) -> Record:
        raw = message.headers() or ()
        ts_type, ts = message.timestamp()
        return cls(
            topic=message.topic() or "",
            partition=message.partition() or 0,
            offset=message.offset() or 0,
            key=message.key(),
            value=message.value(),
            headers=tuple(raw),
            timestamp_ms=ts if ts_type else None,
        )

    @property
    def where(self) -> str:
        """`topic/partition/offset`: the record's place, as the index and a replay name it."""
        return f"{self.topic}/{self.partition}/{self.offset}"

    def header(self, name: str) -> bytes | None:
        """The last value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        found = None
        for key, value in self.headers:
            if key.lower() == wanted:
                found = value
        return found

    def text(self, name: str) -> str:
        """Header `name` as text ("" when absent); bytes that are not UTF-8 are replaced."""
        value = self.header(name)
        return value.decode("utf-8", "replace") if value is not None else ""


@quick_init
@dataclass(frozen=True, slots=True)
class Event:
    """A CloudEvent: the attributes hooks match and map, and its data."""

    id: str
    type: str
    source: str
    specversion: str = "1.0"
    time: str | None = None
    subject: str | None = None
    datacontenttype: str | None = None
    data: Any = None
    tenant: str | None = None  # the CloudEvents extension attribute `tenant` (binary: ce_tenant)
    # the Distributed Tracing extension (binary: ce_traceparent), else a plain `traceparent`
    # header; kept as sent: only a tracing worker reads them, and ignores a malformed one
    traceparent: str | None = None
    tracestate: str | None = None
    # every other extension attribute (`region: eu`), as `extensions.region` in a hook's paths
    extensions: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, attributes: dict[str, Any]) -> Event:
        get = attributes.get
        id_, type_, source, specversion = get("id"), get("type"), get("source"), get("specversion")
        time, subject, tenant = get("time"), get("subject"), get("tenant")
        content_type = get("datacontenttype")
        if not (
            id_
            and type_
            and source
            and specversion
            and isinstance(id_, str)
            and isinstance(type_, str)
            and isinstance(source, str)
            and isinstance(specversion, str)
            and (time is None or isinstance(time, str))
            and (subject is None or isinstance(subject, str))
            and (content_type is None or isinstance(content_type, str))
            and (tenant is None or isinstance(tenant, str))
        ):  # one test, no loop: every event passes here
            _refuse(attributes)
        extensions = {} if NOT_EXTENSIONS.issuperset(attributes) else extensions_in(attributes)
        return cls(  # in the order of the fields: a third of the time keyword arguments take
            id_,
            type_,
            source,
            specversion,
            time,
            subject,
            content_type,
            get("data"),
            tenant or None,
            _text_or_none(attributes, "traceparent"),
            _text_or_none(attributes, "tracestate"),
            extensions,
        )

    def attributes(self) -> dict[str, Any]:
        """The event as the mapping that `from` paths and templates address."""
        return {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "specversion": self.specversion,
            "time": self.time,
            "subject": self.subject,
            "datacontenttype": self.datacontenttype,
            "data": self.data,
            "tenant": self.tenant,
            "extensions": self.extensions,
        }


def extensions_in(attributes: dict[str, Any]) -> dict[str, Any]:
    """The extension attributes among an event's `attributes`: every name but `NOT_EXTENSIONS`,
    kept as written, its value as decoded (a null is no attribute).

    CloudEvents asks for names of a-z and 0-9 and values that are text, integers or booleans;
    an event that strays (`Region`, `my_ext`, a fraction, an object) is kept as it came rather
    than refused: until extensions reached hooks such an event was delivered, and a hook's path
    can still address it (`extensions["my.ext"]`)."""
    return {
        name: value
        for name, value in attributes.items()
        if name not in NOT_EXTENSIONS and value is not None
    }


def _refuse(attributes: dict[str, Any]) -> NoReturn:
    """Raise the `DecodeError` of attributes that are not a CloudEvent's: why not."""
    missing = [name for name in REQUIRED_ATTRIBUTES if not attributes.get(name)]
    if missing:
        raise DecodeError(f"CloudEvent lacks required attribute(s): {', '.join(missing)}")
    for name in TEXT_ATTRIBUTES:
        value = attributes.get(name)
        if value is not None and not isinstance(value, str):
            raise DecodeError(f"CloudEvent attribute {name!r} must be a string")
    raise AssertionError("refused attributes that are a CloudEvent's")


def _text_or_none(attributes: dict[str, Any], name: str) -> str | None:
    """An optional attribute that must not fail an event: text, or else nothing. W3C trace
    context is ASCII: other text (a lone surrogate, which no header can carry) is malformed."""
    if name not in attributes:  # the common case, and the cheapest test
        return None
    value = attributes[name]
    return value if isinstance(value, str) and value and value.isascii() else None
