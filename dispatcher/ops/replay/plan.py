"""Dead-letter replay (contract section 6): which dead letters to re-deliver, and which not. Pure.

A selection (`dispatcher.ops.replay.selection`) filters the dead-letter topic; its limit caps
the letters the plan sends (not those it skips). The plan reads the event in each letter, as a
worker reads one, and leaves out what must not be sent: a pair the results topic already shows
as delivered (so a second replay of the same selection sends nothing the first delivered), a
pair already planned (the same webhook-id dead-lettered twice), letters whose hook is gone,
letters of a paused hook (its resume replays those since the pause; the others wait for a
replay after it), letters holding no event to send (written without the event's value: they
say where the original is), and events the hook, as it is defined now, no longer takes (its
events, tenant or filter were changed since: a worker would not send them to it either).
`dispatcher.ops.replay.run` does the sending.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from dispatcher.errors import DecodeError
from dispatcher.model.deadletter import DeadLetter
from dispatcher.model.event import Event, Record
from dispatcher.model.hook import Hook
from dispatcher.ops.replay.selection import Selection
from dispatcher.pipeline.decode import decode
from dispatcher.pipeline.filter import admit
from dispatcher.pipeline.match import HookIndex

Decode = Callable[[Record], Event]  # raises DecodeError; a worker's (Avro too) in `run.prepare`


@dataclass(frozen=True, slots=True)
class Candidates:
    """The letters a selection admits, oldest failure first, and its `limit`: how many of them,
    at most, the plan sends (letters it skips do not count)."""

    letters: tuple[DeadLetter, ...] = ()
    limit: int | None = None

    def __iter__(self) -> Iterator[DeadLetter]:
        return iter(self.letters)

    def __len__(self) -> int:
        return len(self.letters)


def select(letters: Iterable[DeadLetter], selection: Selection) -> Candidates:
    """The letters `selection` admits, oldest failure first, with its limit."""
    chosen = [letter for letter in letters if selection.admits(letter)]
    chosen.sort(key=lambda d: (d.failed_at or 0.0, d.record.partition, d.record.offset))
    return Candidates(tuple(chosen), selection.limit)


@dataclass(frozen=True, slots=True)
class Plan:
    """The selected letters split into those to send and those skipped, with the reason, and
    the event each of them holds (by `DeadLetter.where`; none for a letter holding no event)."""

    send: tuple[DeadLetter, ...] = ()
    skip: tuple[tuple[DeadLetter, str], ...] = ()
    events: Mapping[str, Event] = field(default_factory=dict)

    @property
    def selected(self) -> int:
        return len(self.send) + len(self.skip)

    def sending(self) -> Iterator[tuple[DeadLetter, Event]]:
        """The letters to send, each with its event."""
        return ((letter, self.events[letter.where]) for letter in self.send)

    def event_of(self, letter: DeadLetter) -> tuple[str, str]:
        """The id and type of the event `letter` holds; empty when it holds none."""
        event = self.events.get(letter.where)
        return ("", "") if event is None else (event.id, event.type)


def plan(
    selected: Candidates | Iterable[DeadLetter],
    delivered: set[str],
    hooks: HookIndex,
    paused: Mapping[str, float] | None = None,
    decode: Decode = decode,
) -> Plan:
    """What to send of `selected`, given the webhook-ids already delivered, the hooks in force
    and the hooks paused, each with its pause's `since` (a paused hook's letters wait for its
    resume); `decode` reads the event
    in a letter. A limit counts the letters sent: the plan takes the oldest letters until it has
    that many to send, with those it skips on the way, so the same limited selection run again
    goes on with the next ones."""
    limit = selected.limit if isinstance(selected, Candidates) else None
    send: list[DeadLetter] = []
    skip: list[tuple[DeadLetter, str]] = []
    events: dict[str, Event] = {}
    planned: set[str] = set()
    for letter in selected:
        if limit is not None and len(send) >= limit:
            break
        read = _read(letter, decode)
        if isinstance(read, Event):
            events[letter.where] = read
        reason = _skip_reason(letter, delivered, planned, hooks, paused or {}) or _unsendable(
            letter, read, hooks
        )
        if reason is None:
            send.append(letter)
            planned.add(letter.idempotency_key)
        else:
            skip.append((letter, reason))
    return Plan(tuple(send), tuple(skip), events)


def _read(letter: DeadLetter, decode: Decode) -> Event | DecodeError:
    """The event in `letter`, or why there is none."""
    try:
        return decode(letter.record)
    except DecodeError as exc:
        return exc


def _skip_reason(
    letter: DeadLetter,
    delivered: set[str],
    planned: set[str],
    hooks: HookIndex,
    paused: Mapping[str, float],
) -> str | None:
    if not letter.hook_id:
        return "no hook (the record was never a valid event)"
    hook = hooks.get(letter.hook_id)
    if hook is None:
        return f"hook {letter.hook_id} is not defined"
    if not hook.enabled:
        return f"hook {letter.hook_id} is disabled"
    if hook.unusable is not None:  # sent, it would only be dead-lettered as config again
        return f"hook {letter.hook_id} is unusable: {hook.unusable}"
    if letter.hook_id in paused:
        return _paused(letter, paused[letter.hook_id])
    if not letter.idempotency_key:
        return "no dispatcher.idempotency.key header"
    if letter.idempotency_key in delivered:
        return "already delivered"
    if letter.idempotency_key in planned:
        return "the same webhook-id is replayed from an earlier letter"
    return None


def _paused(letter: DeadLetter, since: float) -> str:
    """Why a letter of a paused hook waits, and what sends it: `resume --replay` replays the
    letters since the pause began, not one that failed before it."""
    hook_id = letter.hook_id
    if letter.failed_at is not None and letter.failed_at >= since:
        return f"hook {hook_id} is paused (hooks resume {hook_id} --replay)"
    return (
        f"hook {hook_id} is paused (failed before the pause: hooks resume {hook_id}, then replay)"
    )


def _unsendable(letter: DeadLetter, read: Event | DecodeError, hooks: HookIndex) -> str | None:
    """Why the event in a letter `_skip_reason` lets through cannot go to its hook: there is
    none (a letter written without the event's value names where the original is), or the hook
    no longer takes it."""
    if isinstance(read, DecodeError):
        return f"no event to send: {read}"
    hook = hooks.get(letter.hook_id)
    assert hook is not None  # `_skip_reason` skips a letter whose hook is not defined
    return _not_taken(hook, read, hooks)


def _not_taken(hook: Hook, event: Event, hooks: HookIndex) -> str | None:
    """Why `hook`, as it is defined now, would not take `event`, as a worker decides (the hook
    was edited since the letter failed), in words that hold no value of the event; None when
    it would take it."""
    if not any(found.id == hook.id for found in hooks.match(event.type, event.tenant)):
        if hook.tenant is not None and event.tenant != hook.tenant:
            return f"hook {hook.id} now takes only the events of tenant {hook.tenant}"
        return f"hook {hook.id} no longer takes events of type {event.type}"
    if admit([hook], event)[1]:
        return f"hook {hook.id} no longer takes this event: its filter does not admit it"
    return None


@dataclass(frozen=True, slots=True)
class Summary:
    """A replay's counts: selected = delivered + failed + skipped (+ not sent, when cut short);
    `stopped`: asked to stop, it left the letters not sent for the next run."""

    selected: int
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    dry_run: bool = False
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    stopped: bool = False

    @property
    def not_sent(self) -> int:
        """The letters to send that were not (yet) sent."""
        return self.selected - self.delivered - self.failed - self.skipped

    def as_dict(self) -> dict[str, object]:
        return {
            "selected": self.selected,
            "delivered": self.delivered,
            "failed": self.failed,
            "skipped": self.skipped,
            "dry_run": self.dry_run,
            "skipped_reasons": dict(self.skipped_reasons),
        }


def reasons(plan: Plan) -> dict[str, int]:
    """How many letters were skipped for each reason."""
    counts: dict[str, int] = {}
    for _letter, reason in plan.skip:
        counts[reason] = counts.get(reason, 0) + 1
    return counts
