"""The admin API's request and response bodies; the OpenAPI document is generated from these.

A hook definition is described by the hooks JSON Schema itself (`dispatcher.api.openapi`), so the
API and hooks files cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# fields that records of more than one kind have (results, dead letters, attempts), described once
TraceId = Annotated[str | None, Field(description="The delivery's trace, when traced")]
HookTenant = Annotated[
    str | None,
    Field(
        description="The hook's tenant when the record was written (null: a hook of every"
        " tenant, or a record of a version before it was written); `tenant` is the event's."
    ),
]


class Error(BaseModel):
    error: str = Field(description="What went wrong, in a sentence.")


class HookProblem(BaseModel):
    path: str
    message: str
    line: int | None = None


class Refusal(BaseModel):
    """An error with every problem behind it, each at its place: a key of a hook definition
    (with its line in the editor), or a value of the request (`query.limit`, `event`)."""

    error: str
    problems: list[HookProblem] = []


class Pending(BaseModel):
    """A hook written to the store that this service has not read back within 10 s: the
    workers take it once they read it."""

    id: str
    status: Literal["stored, not yet in force here"]


class HookShown(BaseModel):
    """A hook as `hooks show` shows it (secrets masked), where it is defined, and whether the
    workers can deliver it."""

    model_config = ConfigDict(extra="allow")
    id: str
    source: Literal["store", "hooks file"]
    unusable: str | None = Field(
        default=None,
        description="Why the stored hook cannot be delivered, read as a worker reads the hook"
        " store (its secret references resolved where this service runs): a definition that"
        " does not load (a reference that cannot be resolved, say) or, in queue mode, one"
        " ordered by key. It names the problem, never a secret's value. The workers"
        " dead-letter its events with error kind config, no request made, until a definition"
        " that loads is stored; one that does not load is shown as far as it loaded: id,"
        " events, tenant, filter, enabled. Null: the hook is usable.",
    )


class HookList(BaseModel):
    hooks: list[HookShown]


class Deleted(BaseModel):
    deleted: str
    in_force: Literal["hooks file"] | None = Field(
        description=(
            "Where the hook is still defined after the store's tombstone, if anywhere (for a"
            " tenant's token: a hook of its tenant)."
        )
    )


class TrialRequest(BaseModel):
    event: dict[str, Any] = Field(
        description="A CloudEvent (structured mode) as JSON: its extension attributes (a"
        " `region`, which paths name `extensions.region`) as top-level members."
    )
    send: bool = False


class ShownRequest(BaseModel):
    method: str
    url: str
    headers: dict[str, str]
    body: str | None = None
    body_base64: str | None = None
    auth: str
    note: str


class Verdict(BaseModel):
    ok: bool
    status: int | None = None
    error_kind: str | None = None
    error: str | None = None
    retryable: bool = False
    captured: dict[str, Any] = {}
    seconds: float = 0.0


class TrialResult(BaseModel):
    request: ShownRequest | None = None
    verdict: Verdict | None = None
    excluded: list[str] | None = Field(
        default=None,
        description="Why the event is not for the hook (its type, its tenant, each failed"
        " filter condition), when it is not: the dispatcher would not send it there.",
    )
    not_sent: str | None = Field(
        default=None,
        description="With `send`, when nothing was sent: why (the event is not for the hook).",
    )


class Outcome(BaseModel):
    event_id: str
    event_type: str
    hook_id: str
    outcome: str
    attempts: int
    http_status: int | None
    latency_ms: float | None
    error_kind: str | None
    error: str | None
    idempotency_key: str
    completed_at: str
    tenant: str | None = None
    trace_id: TraceId = None
    hook_tenant: HookTenant = None


class Outcomes(BaseModel):
    hook_id: str
    outcomes: list[Outcome]


class DeadLetter(BaseModel):
    where: str = Field(description="topic/partition/offset of the dead letter")
    hook_id: str
    error_kind: str
    error: str
    http_status: int | None
    attempts: int
    idempotency_key: str
    event_id: str
    event_type: str
    failed_at: str
    replayed_from: str
    tenant: str | None = None
    trace_id: TraceId = None
    hook_tenant: HookTenant = None


class Attempt(BaseModel):
    """One HTTP attempt, as the attempts topic records it."""

    event_id: str
    hook_id: str
    attempt: int = Field(description="1 for the first attempt of the pair, retry tiers included")
    idempotency_key: str
    http_status: int | None
    latency_ms: float
    error_kind: str | None
    error: str | None
    response_excerpt: str | None = Field(
        description="At most 1 KiB of the response body, text only, secrets masked; null when"
        " there was no response or its body is not text."
    )
    at: str = Field(description="When the attempt was sent.")
    tenant: str | None = None
    hook_tenant: HookTenant = None


class EventLookup(BaseModel):
    event_id: str
    outcomes: list[Outcome]
    dead_letters: list[DeadLetter]
    attempts: list[Attempt] = Field(
        description="Every attempt of every hook for the event, by hook, in the order made."
    )


class HookAttempts(BaseModel):
    hook_id: str
    status_classes: dict[str, int] = Field(
        description="The hook's attempts in the index (since `since`, when given) counted by"
        " class: 2xx, 3xx, 4xx, 5xx, timeout, network, and cut (a request the worker cut short"
        " at a stop or a rebalance: no failure of the hook)."
    )
    attempts: list[Attempt] = Field(description="The newest attempts, newest first.")


class DeadLetterCounts(BaseModel):
    total: int
    by_hook: dict[str, dict[str, int]] = Field(description="hook id -> error kind -> count")


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hook: str | None = None
    since: str | None = Field(
        default=None, description="ISO 8601, or an age such as 2h (within the years 1 to 9999)."
    )
    until: str | None = Field(
        default=None, description="ISO 8601, or an age such as 30m (within the years 1 to 9999)."
    )
    error_kind: str | list[str] | None = None
    limit: int | None = Field(default=None, ge=0)
    rate: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Letters per second: a finite number above 0.",
    )
    dry_run: bool = False


class ReplaySummary(BaseModel):
    selected: int
    delivered: int
    failed: int
    skipped: int
    dry_run: bool
    skipped_reasons: dict[str, int]


class Replay(BaseModel):
    id: str
    status: Literal["running", "done", "failed"]
    selection: dict[str, Any]
    rate: float | None
    dry_run: bool
    started_at: str
    finished_at: str | None
    summary: ReplaySummary | None
    error: str | None
    plan: list[dict[str, Any]] | None
    plan_left_off: int | None = Field(
        default=None,
        description="A dry run: how many selected letters its plan does not list (it lists the"
        " first 1000; `dispatcher replay --dry-run` lists every one).",
    )


class Replays(BaseModel):
    replays: list[Replay]


class HookHealth(BaseModel):
    """A hook's health as the cluster decided it (contract section 9)."""

    hook: str
    state: Literal["healthy", "failing", "paused", "resumed"]
    since: str | None = Field(
        description="Failing or paused: since when (the failures began, or the pause by hand)."
    )
    at: str | None = Field(description="When this was decided.")
    reason: Literal["auto", "manual"] | None = None
    last_error: str | None = Field(description="The last failed attempt's error, masked.")
    changed: bool | None = Field(
        default=None, description="A pause or resume: whether this request changed the state."
    )


class ResumeRequest(BaseModel):
    replay: bool = Field(
        default=False,
        description="Also re-deliver every dead letter of the hook since the pause began.",
    )


class Resumed(HookHealth):
    replay: Replay | None = Field(description="The replay started (see /api/replays/{id}).")
