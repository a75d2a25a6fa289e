"""One key of the configuration read and checked. A problem names the key (`KeyProblem`);
`load_settings` says it with the file and the line the key is on."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

from dispatcher.config.durations import parse_duration
from dispatcher.errors import ConfigError


class KeyProblem(ConfigError):
    """One bad key, raised inside `load_settings`, which re-raises it with its file and line."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def mapping(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise KeyProblem(key, "must be a mapping")
    return value


def coerce(key: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes", "on"):
            return True
        if str(value).lower() in ("false", "0", "no", "off"):
            return False
        raise KeyProblem(key, f"must be true or false, not {value!r}")
    if kind is int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise KeyProblem(key, f"must be an integer, not {value!r}") from None
    return str(value)


def duration(key: str, value: Any, *, least: float | None = None) -> float:
    """Seconds in a duration; at least `least` when given, else above 0."""
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise KeyProblem(key, str(exc)) from None
    if least is None and seconds <= 0:
        raise KeyProblem(key, f"must be a duration above 0 (e.g. 30s), not {value!r}")
    if least is not None and seconds < least:
        raise KeyProblem(key, f"must be a duration of {least:g}s or more, not {value!r}")
    return seconds


def port(key: str, value: int) -> int:
    """A TCP port, or 0 for any free one."""
    if not 0 <= value <= 65535:
        raise KeyProblem(key, f"must be a port, 1 to 65535 (or 0: any free port), not {value}")
    return value


def cidrs(raw: Any, key: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """A list of addresses or networks; as text (an override's value), separated by commas."""
    if isinstance(raw, str):
        raw = [c.strip() for c in raw.split(",") if c.strip()]
    if not isinstance(raw, list):
        raise KeyProblem(key, "must be a list of addresses or networks (CIDR)")
    try:
        return tuple(ip_network(str(c), strict=False) for c in raw)
    except ValueError as exc:
        raise KeyProblem(key, str(exc)) from None
