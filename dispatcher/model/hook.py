"""The hook model (contract section 4) as frozen values, built once by `Hook.from_dict`.

`from_dict` assumes the structure was already validated against the JSON Schema
(`dispatcher.hooks.loader`); it converts durations, rates and secrets into typed values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from dispatcher.config.durations import parse_duration, parse_rate
from dispatcher.config.secrets import (
    Secret,
    SecretScope,
    holds_reference,
    is_reference,
    resolve,
    resolve_within,
)
from dispatcher.model.auth import AuthSpec
from dispatcher.model.condition import Condition
from dispatcher.model.encryption import EncryptionSpec
from dispatcher.model.response import ResponseSpec

Format = Literal["json", "csv", "xml", "form"]
Ordering = Literal["none", "key"]

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_MAX_AGE = 24 * 3600.0
DEFAULT_CONCURRENCY = 50
DEFAULT_MAX_PAYLOAD = 64 * 1024


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One output key of the body: its exact name and where its value comes from."""

    name: str
    source: str | None = None  # `from`: a dotted path into the event
    value: Any = None
    template: str | None = None
    type: str | None = None
    format: str | None = None  # for datetime
    default: Any = None
    required: bool = False

    @classmethod
    def from_dict(
        cls, raw: dict[str, Any], *, where: str = "field", scope: SecretScope | None = None
    ) -> FieldSpec:
        value = raw.get("value")
        if isinstance(value, str) and is_reference(value):  # sent as its value, shown masked
            value = resolve(value, where=f"{where}.value", scope=scope)
        return cls(
            name=raw["name"],
            source=raw.get("from"),
            value=value,
            template=raw.get("template"),
            type=raw.get("type"),
            format=raw.get("format"),
            default=raw.get("default"),
            required=bool(raw.get("required", False)),
        )


@dataclass(frozen=True, slots=True)
class RetrySpec:
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_age: float = DEFAULT_MAX_AGE

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> RetrySpec:
        raw = raw or {}
        return cls(
            max_attempts=int(raw.get("max_attempts", DEFAULT_MAX_ATTEMPTS)),
            max_age=parse_duration(raw.get("max_age", DEFAULT_MAX_AGE)),
        )


@dataclass(frozen=True, slots=True)
class CircuitSpec:
    """When the hook's circuit breaker opens and how it closes again
    (`dispatcher.http.limits.CircuitBreaker`): it opens once `minimum_calls` attempts within
    the last `window` seconds have failed at `failure_ratio` or more, refuses every call for
    `open_for` seconds, then lets `probes` calls out and closes when all of them succeed."""

    failure_ratio: float = 0.5
    minimum_calls: int = 20
    window: float = 30.0
    open_for: float = 15.0
    probes: int = 3

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> CircuitSpec:
        raw = raw or {}
        default = cls()
        return cls(
            failure_ratio=float(raw.get("failure_ratio", default.failure_ratio)),
            minimum_calls=int(raw.get("minimum_calls", default.minimum_calls)),
            window=parse_duration(raw.get("window", default.window)),
            open_for=parse_duration(raw.get("open_for", default.open_for)),
            probes=int(raw.get("probes", default.probes)),
        )


@dataclass(frozen=True, slots=True)
class TlsSpec:
    """Server verification: on by default, a per-hook CA bundle, off only explicitly."""

    verify: bool = True
    ca: str | None = None


@dataclass(frozen=True, slots=True)
class Hook:
    """A third party described as a POST-API: where, how, what and how to judge the answer."""

    id: str
    events: tuple[str, ...]
    url: str  # as written: a secret reference in it stays a reference
    tenant: str | None = None  # None: the events of every tenant
    filter: tuple[Condition, ...] = ()  # every condition must hold on the event
    method: str = "POST"
    headers: tuple[tuple[str, str | Secret], ...] = ()  # a reference's value is a Secret
    auth: AuthSpec = field(default_factory=AuthSpec)
    format: Format = "json"
    csv_delimiter: str = ","
    csv_header: bool = True
    csv_escape_formulas: bool = False
    xml_root: str = "message"
    xml_item: str = "item"  # the element of each entry of a list
    xml_namespace: str | None = None
    fields: tuple[FieldSpec, ...] = ()
    response: ResponseSpec = field(default_factory=ResponseSpec)
    encryption: EncryptionSpec | None = None
    timeout: float = DEFAULT_TIMEOUT
    retry: RetrySpec = field(default_factory=RetrySpec)
    circuit: CircuitSpec = field(default_factory=CircuitSpec)
    concurrency: int = DEFAULT_CONCURRENCY
    rate_limit: float | None = None
    ordering: Ordering = "none"
    pause_after: float | None = None  # None: the service's `hook_pause_after`; 0: never paused
    enabled: bool = True
    allow_private_networks: bool | None = None  # None: the service-wide setting decides
    allow_loopback: bool | None = None  # None: the service-wide setting decides
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD
    tls: TlsSpec = field(default_factory=TlsSpec)
    description: str = ""
    # the URL sent, when references in its path or query needed resolving; and their values
    url_resolved: Secret | None = None
    url_secrets: tuple[Secret, ...] = ()
    # why this worker cannot deliver the hook (a stored definition it cannot load, or one it
    # cannot run as written): its pairs are dead-lettered as `config`, with no request
    unusable: str | None = None

    @property
    def target(self) -> str:
        """The URL requests go to, references resolved: never to be shown."""
        return self.url if self.url_resolved is None else self.url_resolved.reveal()

    @property
    def stand_in(self) -> bool:
        """Whether this is only the stand-in of a stored definition that did not load here
        (`dispatcher.hooks.definitions.unloadable`): its events, tenant and filter, and no
        URL; every other field is a default, not the definition's."""
        return self.unusable is not None and not self.url

    @classmethod
    def from_dict(
        cls, raw: dict[str, Any], *, where: str = "hook", scope: SecretScope | None = None
    ) -> Hook:
        """The hook `raw` defines; with a `scope`, its secret references must stay inside it
        (a definition from the hook store)."""
        csv = raw.get("csv") or {}
        xml = raw.get("xml") or {}
        encryption = raw.get("encryption")
        rate = raw.get("rate_limit")
        tls = raw.get("tls") or {}
        port = raw.get("port")  # 8443.0 is an integer to JSON Schema
        url = _with_port(raw["url"], None if port is None else int(port))
        resolved, url_secrets = (
            resolve_within(url, _url_part, where=f"{where}.url", scope=scope)
            if holds_reference(url)
            else (None, ())
        )
        headers = tuple(
            (str(k), resolve(v, where=f"{where}.headers.{k}", scope=scope))
            if isinstance(v, str) and is_reference(v)
            else (str(k), header_text(v))
            for k, v in (raw.get("headers") or {}).items()
        )
        fields = raw.get("fields", ())
        return cls(
            id=raw["id"],
            events=tuple(raw.get("events", ())),
            url=url,
            url_resolved=resolved,
            url_secrets=url_secrets,
            tenant=raw.get("tenant"),
            filter=tuple(Condition.from_dict(c) for c in raw.get("filter", ())),
            method=str(raw.get("method", "POST")).upper(),
            headers=headers,
            auth=AuthSpec.from_dict(raw.get("auth"), where=f"{where}.auth", scope=scope),
            format=raw.get("format", "json"),
            csv_delimiter=csv.get("delimiter", ","),
            csv_header=bool(csv.get("header", True)),
            csv_escape_formulas=bool(csv.get("escape_formulas", False)),
            xml_root=xml.get("root", "message"),
            xml_item=xml.get("item", "item"),
            xml_namespace=xml.get("namespace"),
            fields=tuple(
                FieldSpec.from_dict(f, where=f"{where}.fields[{i}]", scope=scope)
                for i, f in enumerate(fields)
            ),
            response=ResponseSpec.from_dict(raw.get("response")),
            encryption=(
                EncryptionSpec.from_dict(encryption, where=f"{where}.encryption", scope=scope)
                if encryption
                else None
            ),
            timeout=parse_duration(raw.get("timeout", DEFAULT_TIMEOUT)),
            retry=RetrySpec.from_dict(raw.get("retry")),
            circuit=CircuitSpec.from_dict(raw.get("circuit")),
            concurrency=int(raw.get("concurrency", DEFAULT_CONCURRENCY)),
            rate_limit=parse_rate(rate) if rate is not None else None,
            ordering=raw.get("ordering", "none"),
            pause_after=(
                parse_duration(raw["pause_after"]) if raw.get("pause_after") is not None else None
            ),
            enabled=bool(raw.get("enabled", True)),
            allow_private_networks=raw.get("allow_private_networks"),
            allow_loopback=raw.get("allow_loopback"),
            max_payload_bytes=int(raw.get("max_payload_bytes", DEFAULT_MAX_PAYLOAD)),
            tls=TlsSpec(verify=bool(tls.get("verify", True)), ca=tls.get("ca")),
            description=str(raw.get("description", "")),
        )


def _url_part(value: str) -> str:
    """A secret's value as it stands in a URL: percent-encoded, so it never adds a path segment
    or a query parameter."""
    return quote(value, safe="")


def header_text(value: Any) -> str:
    """A hook's own header value (a string, number or boolean) as sent: a boolean as YAML and
    the bodies write it (`true`), not as Python does (`True`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _with_port(url: str, port: int | None) -> str:
    """The URL with `port` (when given) replacing the one the URL names or implies."""
    if port is None:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
