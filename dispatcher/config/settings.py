"""The service configuration (contract section 2): loaded once, typed, env-overridable.

Every key has a default; `DISPATCHER_<SECTION>_<KEY>` environment variables override the file
(`DISPATCHER_KAFKA_BOOTSTRAP_SERVERS` -> `kafka: {bootstrap.servers: ...}`). Secret references
(`${env:NAME}`, `${file:/path}`) are resolved into `Secret` values and never printed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from dispatcher.config.cpus import CpuAffinity, parse_cpu_affinity
from dispatcher.config.durations import format_duration, parse_duration
from dispatcher.config.secrets import (
    Secret,
    SecretScope,
    is_reference,
    references_in,
    resolve_tree,
    tenant_key,
)
from dispatcher.errors import ConfigError

DEFAULT_PATH = "dispatcher.yaml"
DEFAULT_KAFKA = {"bootstrap.servers": "127.0.0.1:9092"}
ENV_PREFIX = "DISPATCHER_"
CONSUME_MODES = ("group", "share")
SECTIONS = ("kafka", "topics", "admin", "schema_registry", "secrets")
SCALARS = {
    "group_id": str,
    "consume": str,
    "hooks_file": str,
    "http_port": int,
    "allow_private_networks": bool,
    "allow_loopback": bool,
    "drain_timeout": str,
    "kafka_wait": str,  # a scalar, not the librdkafka property `wait` of `kafka:`
    "max_inflight": int,
    "max_inflight_per_partition": int,
    "local_retries": int,
    "result_format": str,
    "log_level": str,
    "hook_pause_after": str,
    "hook_failing_after": str,
    "hook_health_interval": str,
    "cpu_affinity": str,
    "retry_bundles": bool,
}
AT_LEAST = {"max_inflight": 1, "max_inflight_per_partition": 1, "local_retries": 0}
DURATIONS = (
    "drain_timeout",
    "hook_pause_after",
    "hook_failing_after",
    "hook_health_interval",
    "kafka_wait",
)


@dataclass(frozen=True, slots=True)
class Topics:
    events: tuple[str, ...] = ("dugaa.events",)
    results: str = "dugaa.dispatch.results"
    dead_letter: str = "dugaa.dispatch.dlq"
    retry: tuple[float, ...] = (30.0, 300.0, 3600.0)
    retry_prefix: str = "dugaa.dispatch.retry"
    hooks: str = "dugaa.dispatch.hooks"
    health: str = "dugaa.dispatch.health"  # workers' hook health reports and pause decisions
    operations: str = "dugaa.dispatch.operations"  # operational events; empty: none
    attempts: str = "dugaa.dispatch.attempts"  # "": no attempt records
    attempts_retention: float = 7 * 86400.0  # retention.ms of the attempts topic a worker creates

    def retry_topic(self, tier: int) -> str:
        return f"{self.retry_prefix}.{format_duration(self.retry[tier])}"

    @property
    def retry_topics(self) -> tuple[str, ...]:
        return tuple(self.retry_topic(i) for i in range(len(self.retry)))


Role = Literal["viewer", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "admin")
TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")  # what Kafka accepts as a topic's name
TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # as a hook's `tenant` (hooks.schema.json)


@dataclass(frozen=True, slots=True)
class AdminToken:
    """One entry of `admin.tokens`: the token as written (a `${env:}` / `${file:}` reference,
    or the value itself, kept as a `Secret`), its role, and the tenant it is limited to (None:
    every tenant and the hooks without one). Resolved only by `dispatcher admin`, so a worker
    needs none of the admin's secrets."""

    token: str | Secret
    role: Role
    tenant: str | None = None


@dataclass(frozen=True, slots=True)
class Admin:
    """`admin:`: the admin service's bind address, tokens, index and request bounds."""

    host: str = "127.0.0.1"
    port: int = 9401
    tokens: tuple[AdminToken, ...] = ()
    data_dir: str = "admin-data"
    retention: float = 7 * 86400.0  # index rows older than this are dropped
    max_records: int = 1_000_000  # and past this many per table, the oldest
    max_body_bytes: int = 1 << 20
    request_timeout: float = 30.0
    session_ttl: float = 8 * 3600.0
    # Reverse proxies (addresses or networks) whose X-Forwarded-Proto / -For are believed: behind
    # a TLS-terminating ingress the session cookie is then Secure. Empty: no header is believed.
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    # Signs the console's session cookies (a `${env:}`/`${file:}` reference, 32+ characters):
    # sessions then outlive a restart. None: a key made at each start (a restart signs out).
    session_key: str | Secret | None = None


ADMIN_KEYS: dict[str, Any] = {
    "host": str,
    "port": int,
    "data_dir": str,
    "retention": "duration",
    "max_records": int,
    "max_body_bytes": int,
    "request_timeout": "duration",
    "session_ttl": "duration",
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything `dispatcher run` needs to know, with defaults for every key."""

    kafka: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_KAFKA))
    group_id: str = "dugaa-dispatcher"
    consume: str = "group"  # group: a consumer group; share: a share group (queue mode)
    topics: Topics = field(default_factory=Topics)
    hooks_file: str | None = None
    http_port: int = 9400
    allow_private_networks: bool = False
    allow_loopback: bool = False
    allow_cidrs: tuple[IPv4Network | IPv6Network, ...] = ()
    drain_timeout: float = 30.0
    kafka_wait: float = 15.0  # how long a command or worker waits for Kafka to answer at start
    max_inflight: int = 10_000
    max_inflight_per_partition: int = 2_000
    local_retries: int = 3
    hook_pause_after: float = 24 * 3600.0  # a hook failing this long is paused; 0: never
    hook_failing_after: float = 300.0  # ... and `dispatcher.hook.failing` is told after this
    hook_health_interval: float = 5.0  # how often a worker reports health and decides
    result_format: str = "json"
    cpu_affinity: CpuAffinity = None  # a worker's Python threads on one CPU (config/cpus.py)
    retry_bundles: bool = True  # an open circuit's pairs share tier records (model/bundle.py)
    admin: Admin = field(default_factory=Admin)
    schema_registry: Mapping[str, Any] = field(default_factory=dict)
    log_level: str = "INFO"
    secrets: SecretScope = field(default_factory=SecretScope)
    source: str = "<defaults>"

    def kafka_config(self) -> dict[str, Any]:
        """The librdkafka configuration with secrets revealed: only for the Kafka clients."""
        return {k: v.reveal() if isinstance(v, Secret) else v for k, v in self.kafka.items()}

    @property
    def bootstrap_servers(self) -> str:
        return str(self.kafka.get("bootstrap.servers", ""))


def default_config_path(explicit: str | None) -> str | None:
    """`--config`, else `$DISPATCHER_CONFIG`, else ./dispatcher.yaml when present."""
    if explicit:
        return explicit
    if os.environ.get("DISPATCHER_CONFIG"):
        return os.environ["DISPATCHER_CONFIG"]
    return DEFAULT_PATH if Path(DEFAULT_PATH).exists() else None


def load_settings(path: str | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read `path` (or only defaults), apply environment overrides, check and type every key."""
    raw: dict[str, Any] = {}
    lines: dict[str, int] = {}
    name = path or "<defaults>"
    if path is not None:
        raw, lines = _read_yaml(Path(path))
    environ = os.environ if environ is None else environ
    _apply_env(raw, environ, _texts(path, raw, environ))
    try:
        return _build(raw, name)
    except _KeyProblem as problem:
        line = lines.get(problem.key) or lines.get(problem.key.split(".")[0], 1)
        raise ConfigError(f"{name}:{line}: {problem.key}: {problem.message}") from None


def _texts(path: str | None, raw: dict[str, Any], environ: Mapping[str, str]) -> list[str]:
    """The configuration file's text and its hooks file's (read as the loader reads it, from
    the working directory), for the variables they name. The hooks file is the one in force:
    `DISPATCHER_HOOKS_FILE` overrides the file's, as it does for the loader."""
    hooks_file = environ.get(f"{ENV_PREFIX}HOOKS_FILE") or raw.get("hooks_file")
    texts = []
    for each in (path, hooks_file if isinstance(hooks_file, str) else None):
        if each:
            with contextlib.suppress(OSError, UnicodeDecodeError):  # read (and said) later
                texts.append(Path(each).read_text(encoding="utf-8"))
    return texts


class _KeyProblem(ConfigError):
    """Raised inside `load_settings` for one bad key; re-raised with its file and line."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        document = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{path}:{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if document is None:
        return {}, {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path}:1: the configuration must be a mapping")
    lines = {str(k): _line_of(document, k) for k in document}
    for section in SECTIONS:
        inner = document.get(section)
        if isinstance(inner, dict):
            lines.update({f"{section}.{k}": _line_of(inner, k) for k in inner})
    return _plain(document), lines


def _line_of(mapping: Any, key: Any) -> int:
    try:
        return int(mapping.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError):
        return 1


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str], texts: list[str]) -> None:
    """Apply `DISPATCHER_<KEY>` / `DISPATCHER_<SECTION>_<KEY>`; refuse any other `DISPATCHER_`
    name, as the file refuses an unknown key, unless it is a secret's: one starting with
    `secrets.env_prefix`, or one that `texts` (the files read) name as `${env:NAME}`."""
    named = {name for text in texts for source, name in references_in(text) if source == "env"}
    secrets = raw.get("secrets")
    in_file = secrets.get("env_prefix") if isinstance(secrets, dict) else None
    prefix = str(
        environ.get("DISPATCHER_SECRETS_ENV_PREFIX") or in_file or SecretScope().env_prefix
    )
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "DISPATCHER_CONFIG":
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        if rest in SCALARS:
            raw[rest] = value
            continue
        if rest == "allow_cidrs":  # a comma-separated list, read by `_cidrs`
            raw[rest] = value
            continue
        section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if section is not None:
            key = rest[len(section) + 1 :]
            if section == "kafka":
                key = key.replace("_", ".")
            if not isinstance(raw.get(section), dict):
                raw[section] = {}
            raw[section][key] = value
        elif not name.startswith(prefix) and name not in named:
            known = ", ".join(f"{ENV_PREFIX}{k.upper()}" for k in sorted([*SCALARS, "allow_cidrs"]))
            raise ConfigError(
                f"environment variable {name}: unknown key {rest} (known: {known}, and"
                f" {ENV_PREFIX}<SECTION>_<KEY> for the sections {', '.join(SECTIONS)})"
            )


def _build(raw: dict[str, Any], source: str) -> Settings:
    known = set(SCALARS) | set(SECTIONS) | {"allow_cidrs"}
    for key in raw:
        if key not in known:
            raise _KeyProblem(key, f"unknown key (known: {', '.join(sorted(known))})")
    kafka = {**DEFAULT_KAFKA, **_mapping(raw, "kafka")}  # a property set keeps the others'
    kafka = {str(k): v for k, v in resolve_tree(kafka, where="kafka").items()}
    registry = _mapping(raw, "schema_registry")
    values: dict[str, Any] = {}
    for key, kind in SCALARS.items():
        if key in raw and raw[key] is not None:
            values[key] = _coerce(key, raw[key], kind)
    for key in DURATIONS:
        if key in values:
            values[key] = _duration(key, values[key], least=0.0)
    if "http_port" in values:
        values["http_port"] = _port("http_port", values["http_port"])
    for key, least in AT_LEAST.items():
        if values.get(key, least) < least:
            raise _KeyProblem(key, f"must be {least} or more, not {values[key]}")
    if values.get("hook_health_interval", 1.0) <= 0:
        raise _KeyProblem("hook_health_interval", "must be a duration above 0 (e.g. 5s)")
    if values.get("kafka_wait", 1.0) <= 0:  # no wait at all: given up before Kafka is asked
        raise _KeyProblem("kafka_wait", "must be a duration above 0 (e.g. 15s)")
    if values.get("consume", "group") not in CONSUME_MODES:
        raise _KeyProblem("consume", f"must be one of {', '.join(CONSUME_MODES)}")
    if values.get("result_format", "json") not in ("json", "avro"):
        raise _KeyProblem("result_format", "must be json or avro")
    if "cpu_affinity" in values:
        try:
            values["cpu_affinity"] = parse_cpu_affinity(values["cpu_affinity"])
        except ValueError as exc:
            raise _KeyProblem("cpu_affinity", str(exc)) from None
    return Settings(
        kafka=kafka,
        topics=_topics(_mapping(raw, "topics")),
        allow_cidrs=_cidrs(raw.get("allow_cidrs") or [], "allow_cidrs"),
        admin=_admin(_mapping(raw, "admin")),
        schema_registry=resolve_tree(registry, where="schema_registry"),
        secrets=_secret_scope(_mapping(raw, "secrets")),
        source=source,
        **values,
    )


def _secret_scope(raw: dict[str, Any]) -> SecretScope:
    for key, value in raw.items():
        if key not in ("env_prefix", "dir"):
            raise _KeyProblem(f"secrets.{key}", "unknown key (known: dir, env_prefix)")
        if not isinstance(value, str) or not value:
            raise _KeyProblem(f"secrets.{key}", "must be a non-empty string")
    return SecretScope(**raw)


def _mapping(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise _KeyProblem(key, "must be a mapping")
    return value


def _coerce(key: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes", "on"):
            return True
        if str(value).lower() in ("false", "0", "no", "off"):
            return False
        raise _KeyProblem(key, f"must be true or false, not {value!r}")
    if kind is int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise _KeyProblem(key, f"must be an integer, not {value!r}") from None
    return str(value)


def _duration(key: str, value: Any, *, least: float | None = None) -> float:
    """Seconds in a duration; at least `least` when given, else above 0."""
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise _KeyProblem(key, str(exc)) from None
    if least is None and seconds <= 0:
        raise _KeyProblem(key, f"must be a duration above 0 (e.g. 30s), not {value!r}")
    if least is not None and seconds < least:
        raise _KeyProblem(key, f"must be a duration of {least:g}s or more, not {value!r}")
    return seconds


def _port(key: str, value: int) -> int:
    """A TCP port, or 0 for any free one."""
    if not 0 <= value <= 65535:
        raise _KeyProblem(key, f"must be a port, 1 to 65535 (or 0: any free port), not {value}")
    return value


def _topics(raw: dict[str, Any]) -> Topics:
    default = Topics()
    known = {"events", "results", "dead_letter", "retry", "retry_prefix", "hooks", "attempts"}
    known |= {"attempts_retention"}
    unknown = set(raw) - known - {"health", "operations"}
    if unknown:
        raise _KeyProblem("topics." + sorted(unknown)[0], "unknown key")
    events = raw.get("events", default.events)
    if isinstance(events, str):
        events = [e.strip() for e in events.split(",") if e.strip()]
    retry = raw.get("retry", default.retry)
    if isinstance(retry, str):
        retry = [r.strip() for r in retry.split(",") if r.strip()]
    delays = tuple(_duration("topics.retry", r) for r in retry)
    if any(later <= earlier for earlier, later in itertools.pairwise(delays)):
        # a pair moves on to the first tier whose delay covers its wait (pipeline/retry.py)
        raise _KeyProblem("topics.retry", "the tiers' delays must grow, each longer than the last")
    return Topics(
        events=tuple(str(e) for e in events),
        results=str(raw.get("results", default.results)),
        dead_letter=str(raw.get("dead_letter", default.dead_letter)),
        retry=delays,
        retry_prefix=str(raw.get("retry_prefix", default.retry_prefix)),
        hooks=str(raw.get("hooks", default.hooks)),
        attempts=_attempts_topic(raw.get("attempts", default.attempts)),
        attempts_retention=_retention(raw.get("attempts_retention", default.attempts_retention)),
        health=_health_topic(raw.get("health", default.health)),
        operations=str(raw.get("operations", default.operations) or ""),
    )


def _health_topic(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _KeyProblem("topics.health", "must name a topic (hook health and pauses live there)")
    return value.strip()


def _retention(value: Any) -> float:
    """`topics.attempts_retention`: a duration, or 0 (written as a number, text or `0s`: an
    override's value is text) for the cluster's default retention."""
    return _duration("topics.attempts_retention", value, least=0.0)


def _attempts_topic(value: Any) -> str:
    """`topics.attempts`: a topic name, or empty (or null) to write no attempt records."""
    name = "" if value is None else str(value).strip()
    if name and not TOPIC_NAME.fullmatch(name):
        raise _KeyProblem(
            "topics.attempts",
            f"{name!r} is not a Kafka topic name (letters, digits, '.', '_', '-'; at most 249);"
            ' write "" to switch attempt records off',
        )
    return name


def _admin(raw: dict[str, Any]) -> Admin:
    values: dict[str, Any] = {}
    for key, value in raw.items():
        kind = ADMIN_KEYS.get(key)
        if key == "tokens":
            values["tokens"] = _tokens(value)
        elif key == "trusted_proxies":
            values[key] = _cidrs(value, f"admin.{key}")
        elif key == "session_key":
            if not isinstance(value, str) or not value.strip():
                raise _KeyProblem(
                    "admin.session_key", "must be text (best a ${env:} or ${file:} reference)"
                )
            values[key] = value if is_reference(value) else Secret(value)
        elif kind is None:
            known = ", ".join(sorted([*ADMIN_KEYS, "tokens", "trusted_proxies", "session_key"]))
            raise _KeyProblem(f"admin.{key}", f"unknown key (known: {known})")
        elif kind == "duration":
            values[key] = _duration(f"admin.{key}", value)
        else:
            values[key] = _coerce(f"admin.{key}", value, kind)
    if "port" in values:
        values["port"] = _port("admin.port", values["port"])
    for key in ("max_records", "max_body_bytes"):
        if values.get(key, 1) < 1:
            raise _KeyProblem(f"admin.{key}", f"must be 1 or more, not {values[key]}")
    return Admin(**values)


def _tokens(raw: Any) -> tuple[AdminToken, ...]:
    if not isinstance(raw, list):
        raise _KeyProblem("admin.tokens", "must be a list of {token, role}")
    tokens: list[AdminToken] = []
    for i, entry in enumerate(raw):
        where = f"admin.tokens[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"token", "role", "tenant"}:
            raise _KeyProblem("admin.tokens", f"{where}: must be {{token, role[, tenant]}}")
        token, role, tenant = entry.get("token"), entry.get("role"), entry.get("tenant")
        if not isinstance(token, str) or not token.strip():
            raise _KeyProblem("admin.tokens", f"{where}.token: missing or empty")
        if role not in ROLES:
            raise _KeyProblem("admin.tokens", f"{where}.role: must be viewer or admin")
        if tenant is not None and not (isinstance(tenant, str) and TENANT.fullmatch(tenant)):
            raise _KeyProblem(
                "admin.tokens",
                f"{where}.tenant: not a valid tenant (letters, digits, '.', '_', '-'; at most 128)",
            )
        secret = token if is_reference(token) else Secret(token)
        tokens.append(AdminToken(secret, role, tenant))
    _tenants_apart(tokens)
    return tuple(tokens)


def _tenants_apart(tokens: list[AdminToken]) -> None:
    """Refuse two tenants of the tokens that differ only in case or in the characters between
    their letters and digits (`acme-eu`, `Acme.EU`, `acme--eu`): they would share one secret
    prefix (`SecretScope.tenant_prefix`), so each tenant's token could name the other's
    secrets. Tenants whose keys differ have prefixes of which neither begins the other."""
    seen: dict[str, str] = {}
    for token in tokens:
        if token.tenant is None:
            continue
        other = seen.setdefault(tenant_key(token.tenant), token.tenant)
        if other != token.tenant:
            raise _KeyProblem(
                "admin.tokens",
                f"tenants {other!r} and {token.tenant!r} would share the secret prefix"
                f" <secrets.env_prefix>{tenant_key(other)}__: tenant names must differ in more"
                " than case and the characters '.', '_', '-'",
            )


def _cidrs(raw: Any, key: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """A list of addresses or networks; as text (an override's value), separated by commas."""
    if isinstance(raw, str):
        raw = [c.strip() for c in raw.split(",") if c.strip()]
    if not isinstance(raw, list):
        raise _KeyProblem(key, "must be a list of addresses or networks (CIDR)")
    try:
        return tuple(ip_network(str(c), strict=False) for c in raw)
    except ValueError as exc:
        raise _KeyProblem(key, str(exc)) from None
