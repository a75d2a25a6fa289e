"""What a hook expects of a response (contract section 4, `response:`), as frozen values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dispatcher.model.condition import Condition

DEFAULT_MAX_RESPONSE = 64 * 1024


@dataclass(frozen=True, slots=True)
class ResponseSpec:
    """How to tell from a response that the third party accepted the data."""

    success_status: tuple[int, ...] = ()  # empty: any 2xx
    format: str = "json"
    expect: tuple[Condition, ...] = ()
    capture: tuple[tuple[str, str], ...] = ()
    max_bytes: int = DEFAULT_MAX_RESPONSE

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> ResponseSpec:
        raw = raw or {}
        return cls(
            success_status=tuple(raw.get("success_status", ())),
            format=raw.get("format", "json"),
            expect=tuple(Condition.from_dict(e) for e in raw.get("expect", ())),
            capture=tuple((str(k), str(v)) for k, v in (raw.get("capture") or {}).items()),
            max_bytes=int(raw.get("max_bytes", DEFAULT_MAX_RESPONSE)),
        )

    def is_success_status(self, status: int) -> bool:
        if self.success_status:
            return status in self.success_status
        return 200 <= status < 300
