"""Turn consumed records into pairs (decode, match, filter), or read a retry tier's state. Pure."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, replace

from dispatcher.errors import DecodeError, ErrorKind, RegistryUnavailable
from dispatcher.model.bundle import is_bundle, unbundle
from dispatcher.model.deferral import Deferral, is_deferred
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.model.outcome import RetryState, Source, idempotency_key
from dispatcher.model.pair import Pair
from dispatcher.model.values import quick_init
from dispatcher.pipeline.filter import admit
from dispatcher.pipeline.match import HookIndex

Decoder = Callable[[Record], Event]


@quick_init
@dataclass(frozen=True, slots=True)
class Pairs:
    """A record's pairs to deliver (possibly none: no hook matched), the ids of the hooks
    whose filter the event failed (no pairs of theirs: only counted), the events of a
    retry-tier record that no longer decode (each a `decode` dead letter, with why), and the
    pairs held back at intake (`take_event`'s `holding`), each as its hook's id and the pair's
    idempotency key: they go to their first retry tier without a `Pair` of their own."""

    pairs: tuple[Pair, ...]
    filtered: tuple[str, ...] = ()
    undecodable: tuple[tuple[Record, Undecodable], ...] = ()
    held: tuple[tuple[str, str], ...] = ()

    @property
    def ends(self) -> int:
        """How many ends the record waits for: one per pair, held pair and undecodable event."""
        return len(self.pairs) + len(self.held) + len(self.undecodable)


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A record that is not a valid event: it becomes a dead letter of `kind` (`decode`; or
    `internal`, when taking it in failed on a defect of the dispatcher). `state`: the pair a
    retry-tier record carried, whose event no longer decodes (its schema id gone, say):
    its dead letter keeps the pair's hook, webhook-id and source, so a replay can send it, and
    names the tenant of that hook as it is now (`hook_tenant`); of a deferred event, one with
    no hook, naming only where the event entered."""

    error: str
    kind: ErrorKind = "decode"
    state: RetryState | None = None
    hook_tenant: str | None = None


@dataclass(frozen=True, slots=True)
class NotYetDue:
    """A retry-tier record whose due time has not come: its partition waits until `due_at`."""

    due_at: float


@dataclass(frozen=True, slots=True)
class Outage:
    """A record whose event cannot be read just now: the schema registry is away (`error`
    says how). It is no dead letter: its partition waits, and the record is taken in again."""

    error: str


Intake = Pairs | Undecodable | NotYetDue | Outage


def take_event(
    record: Record,
    hooks: HookIndex,
    decode: Decoder,
    holding: Collection[str] = (),
    source: Source | None = None,
) -> Intake:
    """The pairs of an input-topic record. Those of the hooks in `holding` (circuit open) are
    held back: no `Pair` is made for them, only their idempotency keys (`Pairs.held`).
    `source`: where the event entered, when that is not `record` (a deferred event's)."""
    try:
        event = decode(record)
    except RegistryUnavailable as exc:
        return Outage(str(exc))
    except DecodeError as exc:
        return Undecodable(str(exc))
    source = source or Source.of(record)
    admitted, filtered = admit(hooks.match(event.type, event.tenant), event)
    if holding and any(hook.id in holding for hook in admitted):
        return Pairs(
            tuple(
                Pair(record, event, hook, source, idempotency_key(event, hook.id))
                for hook in admitted
                if hook.id not in holding
            ),
            tuple(filtered),
            held=tuple(
                (hook.id, idempotency_key(event, hook.id))
                for hook in admitted
                if hook.id in holding
            ),
        )
    return Pairs(
        tuple(
            Pair(record, event, hook, source, idempotency_key(event, hook.id)) for hook in admitted
        ),
        tuple(filtered),
    )


def take_retry(record: Record, tier: int, hooks: HookIndex, decode: Decoder, now: float) -> Intake:
    """The pairs a retry-tier record carries, each to its own hook only: one, or a bundle's
    (model/bundle.py), which share their hook and due time. A hook deleted or disabled
    meanwhile gets them as an unusable stand-in (`gone`): each is dead-lettered, never dropped.
    With the schema registry away for any of its events, the whole record waits (`Outage`).
    A deferred event's record (model/deferral.py) carries no pair yet: `take_deferred`."""
    carried: list[tuple[Record, RetryState]]
    if is_deferred(record):
        return take_deferred(record, hooks, decode, now)
    if is_bundle(record):
        bundled = unbundle(record)
        if bundled is None:
            return Undecodable("retry-tier bundle that is not valid")
        carried = bundled
    else:
        state = RetryState.from_record(record)
        if state is None:
            return Undecodable("retry-tier record without valid dispatcher.* headers")
        carried = [(record, state)]
    if not carried:
        return Pairs(())
    shared = carried[0][1]
    if shared.due_at > now:
        return NotYetDue(shared.due_at)
    hook = hooks.get(shared.hook_id)
    if hook is None or not hook.enabled:
        hook = gone(shared.hook_id, hook, shared.hook_tenant)
    pairs: list[Pair] = []
    undecodable: list[tuple[Record, Undecodable]] = []
    for carried_record, state in carried:
        try:
            event = decode(carried_record)
        except RegistryUnavailable as exc:
            return Outage(str(exc))
        except DecodeError as exc:
            why = Undecodable(str(exc), state=state, hook_tenant=hook.tenant)
            undecodable.append((carried_record, why))
            continue
        pairs.append(
            Pair(
                carried_record,
                event,
                hook,
                state.source,
                state.idempotency_key,
                attempts=state.attempts,
                first_attempt_at=state.first_attempt_at,
                tier=tier,
                traceparent=state.traceparent,
                tracestate=state.tracestate,
                bundle=None if carried_record is record else record,
            )
        )
    return Pairs(tuple(pairs), undecodable=tuple(undecodable))


def take_deferred(record: Record, hooks: HookIndex, decode: Decoder, now: float) -> Intake:
    """The pairs of a deferred event's tier record: taken in as the input record would have
    been, each hook's pair fresh (no attempt yet, `tier` -1) with the `webhook-id` it would
    have had and the source where the event entered; with the registry still away, it waits
    again (`Outage`). One that does not decode is a `decode` dead letter naming that source."""
    deferral = Deferral.from_record(record)
    if deferral is None:
        return Undecodable("deferred event's retry-tier record without valid dispatcher.* headers")
    if deferral.due_at > now:
        return NotYetDue(deferral.due_at)
    intake = take_event(record, hooks, decode, source=deferral.source)
    if isinstance(intake, Undecodable):
        entered = RetryState("", 0, now, now, deferral.source, idempotency_key="")
        return replace(intake, state=entered)
    return intake


def gone(hook_id: str, hook: Hook | None, tenant: str | None = None) -> Hook:
    """The hook of a retry-tier record, deleted (None) or disabled while its pairs waited
    there, as an unusable stand-in: its pairs end as `config` dead letters, with no request,
    rather than vanish with neither a result nor a dead letter (contract section 5), and
    `dispatcher replay` re-delivers them once the hook is back. A deleted hook's stand-in has
    the `tenant` the tier record names (the hook's at the hand-off), so that its letters stay
    its tenant's to see and replay."""
    what = "deleted" if hook is None else "disabled"
    why = f"hook {hook_id} was {what} while the pair waited in a retry tier"
    if hook is None:
        return Hook(id=hook_id, events=(), url="", unusable=why, tenant=tenant)
    return replace(hook, unusable=why)
