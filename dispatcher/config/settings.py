"""The service configuration (contract section 2): loaded once, typed, env-overridable.

Every key has a default; `DISPATCHER_<SECTION>_<KEY>` environment variables override the file
(`DISPATCHER_KAFKA_BOOTSTRAP_SERVERS` -> `kafka: {bootstrap.servers: ...}`). Secret references
(`${env:NAME}`, `${file:/path}`) are resolved into `Secret` values and never printed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from dispatcher.config.admin import Admin, read_admin
from dispatcher.config.cpus import CpuAffinity, parse_cpu_affinity
from dispatcher.config.keys import KeyProblem, cidrs, coerce, duration, mapping, port
from dispatcher.config.secrets import (
    Secret,
    SecretScope,
    references_in,
    resolve_tree,
)
from dispatcher.config.topics import Topics, read_topics
from dispatcher.errors import ConfigError

DEFAULT_PATH = "dispatcher.yaml"
DEFAULT_KAFKA = {"bootstrap.servers": "127.0.0.1:9092"}
ENV_PREFIX = "DISPATCHER_"
CONSUME_MODES = ("group", "share")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")  # as --log-level takes them
SECTIONS = ("kafka", "topics", "admin", "schema_registry", "secrets")
SCALARS = {
    "group_id": str,
    "consume": str,
    "hooks_file": str,
    "http_port": int,
    "allow_private_networks": bool,
    "allow_loopback": bool,
    "drain_timeout": str,
    "liveness_timeout": str,
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
    "liveness_timeout",
)


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
    liveness_timeout: float = 120.0  # a part of a worker not turning this long fails /healthz
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
    overridden = _apply_env(raw, environ, _texts(path, raw, environ))
    try:
        return _build(raw, name)
    except KeyProblem as problem:
        variable = _variable_of(problem.key, overridden)
        if variable is not None:  # its value is the variable's: the file's line is not at fault
            raise ConfigError(
                f"environment variable {variable}: {problem.key}: {problem.message}"
            ) from None
        line = lines.get(problem.key) or lines.get(problem.key.split(".")[0], 1)
        raise ConfigError(f"{name}:{line}: {problem.key}: {problem.message}") from None


def _variable_of(key: str, overridden: Mapping[str, str]) -> str | None:
    """The environment variable that set `key` (or the key it is part of), if one did."""
    for each, variable in overridden.items():
        if key == each or key.startswith((f"{each}.", f"{each}[")):
            return variable
    return None


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


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str], texts: list[str]) -> dict[str, str]:
    """Apply `DISPATCHER_<KEY>` / `DISPATCHER_<SECTION>_<KEY>`; refuse any other `DISPATCHER_`
    name, as the file refuses an unknown key, unless it is a secret's: one starting with
    `secrets.env_prefix`, or one that `texts` (the files read) name as `${env:NAME}`. Returns
    the keys set (`http_port`, `topics.retry`), each with its variable, so that a bad value is
    said to be the variable's."""
    overridden: dict[str, str] = {}
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
        if rest in SCALARS or rest == "allow_cidrs":  # allow_cidrs: a comma-separated list
            raw[rest] = value
            overridden[rest] = name
            continue
        section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if section is not None:
            key = rest[len(section) + 1 :]
            if section == "kafka":
                key = key.replace("_", ".")
            if (section, key) == ("admin", "tokens"):
                raise ConfigError(
                    f"environment variable {name}: admin.tokens is set in the configuration"
                    " file only (each token there may be a ${env:NAME} reference)"
                )
            if not isinstance(raw.get(section), dict):
                raw[section] = {}
            raw[section][key] = value
            overridden[f"{section}.{key}"] = name
        elif not name.startswith(prefix) and name not in named:
            known = ", ".join(f"{ENV_PREFIX}{k.upper()}" for k in sorted([*SCALARS, "allow_cidrs"]))
            raise ConfigError(
                f"environment variable {name}: unknown key {rest} (known: {known}, and"
                f" {ENV_PREFIX}<SECTION>_<KEY> for the sections {', '.join(SECTIONS)})"
            )
    return overridden


def _build(raw: dict[str, Any], source: str) -> Settings:
    known = set(SCALARS) | set(SECTIONS) | {"allow_cidrs"}
    for key in raw:
        if key not in known:
            raise KeyProblem(key, f"unknown key (known: {', '.join(sorted(known))})")
    kafka = {**DEFAULT_KAFKA, **mapping(raw, "kafka")}  # a property set keeps the others'
    kafka = {str(k): v for k, v in resolve_tree(kafka, where="kafka").items()}
    registry = mapping(raw, "schema_registry")
    values: dict[str, Any] = {}
    for key, kind in SCALARS.items():
        if key in raw and raw[key] is not None:
            values[key] = coerce(key, raw[key], kind)
    for key in DURATIONS:
        if key in values:
            values[key] = duration(key, values[key], least=0.0)
    if "http_port" in values:
        values["http_port"] = port("http_port", values["http_port"])
    for key, least in AT_LEAST.items():
        if values.get(key, least) < least:
            raise KeyProblem(key, f"must be {least} or more, not {values[key]}")
    if values.get("hook_health_interval", 1.0) <= 0:
        raise KeyProblem("hook_health_interval", "must be a duration above 0 (e.g. 5s)")
    if values.get("kafka_wait", 1.0) <= 0:  # no wait at all: given up before Kafka is asked
        raise KeyProblem("kafka_wait", "must be a duration above 0 (e.g. 15s)")
    if values.get("liveness_timeout", 1.0) <= 0:
        raise KeyProblem("liveness_timeout", "must be a duration above 0 (e.g. 120s)")
    if values.get("consume", "group") not in CONSUME_MODES:
        raise KeyProblem("consume", f"must be one of {', '.join(CONSUME_MODES)}")
    if values.get("result_format", "json") not in ("json", "avro"):
        raise KeyProblem("result_format", "must be json or avro")
    if "log_level" in values:
        values["log_level"] = _log_level(values["log_level"])
    if "cpu_affinity" in values:
        try:
            values["cpu_affinity"] = parse_cpu_affinity(values["cpu_affinity"])
        except ValueError as exc:
            raise KeyProblem("cpu_affinity", str(exc)) from None
    return Settings(
        kafka=kafka,
        topics=read_topics(mapping(raw, "topics")),
        allow_cidrs=cidrs(raw.get("allow_cidrs") or [], "allow_cidrs"),
        admin=read_admin(mapping(raw, "admin")),
        schema_registry=resolve_tree(registry, where="schema_registry"),
        secrets=_secret_scope(mapping(raw, "secrets")),
        source=source,
        **values,
    )


def _log_level(value: str) -> str:
    """`log_level` as logging names it (any case is taken): one of `LOG_LEVELS`."""
    if value.upper() not in LOG_LEVELS:
        raise KeyProblem("log_level", f"must be one of {', '.join(LOG_LEVELS)}, not {value!r}")
    return value.upper()


def _secret_scope(raw: dict[str, Any]) -> SecretScope:
    for key, value in raw.items():
        if key not in ("env_prefix", "dir"):
            raise KeyProblem(f"secrets.{key}", "unknown key (known: dir, env_prefix)")
        if not isinstance(value, str) or not value:
            raise KeyProblem(f"secrets.{key}", "must be a non-empty string")
    return SecretScope(**raw)
