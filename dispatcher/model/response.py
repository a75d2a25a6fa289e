"""What a hook expects of a response (contract section 4, `response:`), as frozen values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_RESPONSE = 64 * 1024


@dataclass(frozen=True, slots=True)
class Expectation:
    """One check on the parsed response body; all must hold for success."""

    path: str = ""  # "" or ".": the whole body
    equals: Any = None
    exists: bool | None = None
    matches: str | None = None
    one_of: tuple[Any, ...] | None = None  # `in`

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Expectation:
        one_of = raw.get("in")
        return cls(
            path=raw.get("path", ""),
            equals=raw.get("equals"),
            exists=raw.get("exists"),
            matches=raw.get("matches"),
            one_of=tuple(one_of) if one_of is not None else None,
        )


@dataclass(frozen=True, slots=True)
class ResponseSpec:
    """How to tell from a response that the third party accepted the data."""

    success_status: tuple[int, ...] = ()  # empty: any 2xx
    format: str = "json"
    expect: tuple[Expectation, ...] = ()
    capture: tuple[tuple[str, str], ...] = ()
    max_bytes: int = DEFAULT_MAX_RESPONSE

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> ResponseSpec:
        raw = raw or {}
        return cls(
            success_status=tuple(raw.get("success_status", ())),
            format=raw.get("format", "json"),
            expect=tuple(Expectation.from_dict(e) for e in raw.get("expect", ())),
            capture=tuple((str(k), str(v)) for k, v in (raw.get("capture") or {}).items()),
            max_bytes=int(raw.get("max_bytes", DEFAULT_MAX_RESPONSE)),
        )

    def is_success_status(self, status: int) -> bool:
        if self.success_status:
            return status in self.success_status
        return 200 <= status < 300
