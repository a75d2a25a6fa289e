"""The contract's fields as CONTRACT.md states them, for the tests to hold the product to
(never the product's own lists, which a test would then only repeat)."""

from __future__ import annotations

RESULT_FIELDS = [  # section 5, in order; `tenant` and `trace_id` follow when there is one
    "event_id",
    "event_type",
    "hook_id",
    "outcome",
    "attempts",
    "http_status",
    "latency_ms",
    "error_kind",
    "error",
    "captured",
    "idempotency_key",
    "source_topic",
    "source_partition",
    "source_offset",
    "first_attempt_at",
    "completed_at",
]
