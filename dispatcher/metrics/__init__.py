"""Every metric the dispatcher exports (contract section 7), registered on a registry passed in."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from contextlib import suppress

from prometheus_client import CollectorRegistry, Counter, Gauge

from dispatcher.metrics.tallies import (
    CounterFamily,
    GaugeFamily,
    HistogramFamily,
    Tallies,
    Tally,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ATTEMPT_DROPS = ("queue_full", "failed")
SHARE_RESULTS = ("acquired", "accepted", "released", "redelivered", "expired", "deferred")
EVENT_TO_DELIVERY_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600, 21600, 86400)


_CLASSES = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")
OUTCOMES: tuple[str, ...] = ("delivered", "dead_lettered")


def status_class(status: int) -> str:
    """The bounded `result` label for an HTTP status: 1xx, 2xx, 3xx, 4xx, 5xx."""
    return _CLASSES[min(max(status // 100, 1), 5)]


class Metrics:
    """The dispatcher's metrics on one registry (a fresh `CollectorRegistry()` in tests)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.events_consumed = Counter(
            "dispatcher_events_consumed",
            "Records consumed from input topics.",
            ["topic"],
            registry=r,
        )
        self.deliveries = Counter(
            "dispatcher_deliveries",
            "(event, hook) pairs that reached an end.",
            ["hook", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            "dispatcher_dead_letters",
            "Dead letters written, by hook and error kind.",
            ["hook", "error_kind"],
            registry=r,
        )
        # bumped on every attempt, by the delivery loop alone: tallies (see tallies.py)
        self.attempts = CounterFamily(
            "dispatcher_delivery_attempts",
            "HTTP delivery attempts by result class.",
            ("hook", "result"),
        )
        self.duration = HistogramFamily(
            "dispatcher_delivery_duration_seconds",
            "Duration of one HTTP attempt.",
            ("hook",),
            LATENCY_BUCKETS,
        )
        self.event_to_delivery = HistogramFamily(
            "dispatcher_event_to_delivery_seconds",
            "From the event's Kafka timestamp to its successful delivery.",
            ("hook",),
            EVENT_TO_DELIVERY_BUCKETS,
        )
        self.inflight = GaugeFamily(
            "dispatcher_inflight_deliveries", "HTTP requests in flight.", ("hook",)
        )
        Tallies(r, self.attempts, self.duration, self.event_to_delivery, self.inflight)
        self.circuit_open = Gauge(
            "dispatcher_circuit_open",
            "1 while a hook's circuit breaker is open.",
            ["hook"],
            registry=r,
        )
        self.retries_scheduled = Counter(
            "dispatcher_retries_scheduled",
            "Retries scheduled: in process (tier local) or handed to a delayed retry tier.",
            ["hook", "tier"],
            registry=r,
        )
        self.encryptions = Counter(
            "dispatcher_encryptions",
            "Bodies encrypted with the hook's active key: rotate it long before 2^32 of them.",
            ["hook"],
            registry=r,
        )
        self.events_filtered = Counter(
            "dispatcher_events_filtered",
            "Events of a hook's types (and tenant) that its filter kept from it: no pair.",
            ["hook"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "dispatcher_consumer_lag",
            "Records between the consumed position and the end of each partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.hooks = Gauge("dispatcher_hooks", "Hooks in force.", registry=r)
        self.hook_paused = Gauge(
            "dispatcher_hook_paused",
            "1 while a hook is paused for the whole cluster (its pairs are dead-lettered).",
            ["hook"],
            registry=r,
        )
        self.hook_failing = Gauge(
            "dispatcher_hook_failing",
            "1 while a hook has failed with no success anywhere for its failing threshold"
            " (dispatcher.hook.failing was told) and is not paused.",
            ["hook"],
            registry=r,
        )
        self.hook_unusable = Gauge(
            "dispatcher_hook_unusable",
            "1 while this worker holds a hook as unusable (a stored definition it cannot load,"
            " or cannot run as it consumes): its pairs are dead-lettered as config, no request.",
            ["hook"],
            registry=r,
        )
        self.ready = Gauge("dispatcher_ready", "1 when connected and assigned.", registry=r)
        self.decode_failures = Counter(
            "dispatcher_decode_failures",
            "Input records that could not be decoded.",
            ["topic"],
            registry=r,
        )
        self.registry_held_partitions = Gauge(
            "dispatcher_registry_held_partitions",
            "Partitions held, their head record uncommitted, because the schema registry is"
            " unavailable (refused, timed out, 5xx) for the Avro event at their head.",
            registry=r,
        )
        self.share_records = Counter(
            "dispatcher_share_records",
            "Queue mode: share-group records acquired, accepted, released, dead-lettered as"
            " redelivered, or whose acknowledgement came after their lock expired; deferred:"
            " handed to the first retry tier, then accepted, while the schema registry is away.",
            ["result"],
            registry=r,
        )
        self.attempt_records_dropped = Counter(
            "dispatcher_attempt_records_dropped",
            "Attempt records not written to the attempts topic (observability only: every"
            " delivery goes on): the producer's queue was full, or Kafka refused the record.",
            ["reason"],
            registry=r,
        )
        self.outcome_records_refused = Counter(
            "dispatcher_outcome_records_refused",
            "Outcome records (results, dead letters, retry-tier records) that Kafka did not take:"
            " each is produced again until it is, and its offset waits (the broker unreachable"
            " past message.timeout.ms, or refusing the topic: deleted, an ACL); one too large is"
            " written without the event's value (header dispatcher.value.omitted), a bundle as"
            " its pairs' tier records.",
            ["topic"],
            registry=r,
        )
        for reason in ATTEMPT_DROPS:
            self.attempt_records_dropped.labels(reason)
        # Exported from the start (0 outside queue mode), so the first redelivered record is
        # an increase that alerts see, not a series appearing at 1.
        for result in SHARE_RESULTS:
            self.share_records.labels(result)
        self._hooks: dict[str, HookMetrics] = {}
        self._dead_letter_kinds: dict[str, tuple[str, ...]] = {}
        self._delivering: dict[str, tuple[str, ...]] = {}
        self._unusable: dict[str, bool] = {}

    def expect_dead_letters(self, kinds_by_hook: dict[str, tuple[str, ...]]) -> None:
        """Export `dispatcher_dead_letters_total{hook, error_kind}` at 0 for every pair given
        (the hooks in force, and "" for records that are no event), so a first dead letter is
        an increase that alerts see, not a series appearing at 1. Zero series of hooks no
        longer given are dropped; one that counted something stays."""
        _expect_zeros(self.dead_letters, self._dead_letter_kinds, kinds_by_hook)
        self._dead_letter_kinds = dict(kinds_by_hook)

    def expect_deliveries(self, hook_ids: Collection[str]) -> None:
        """Export `dispatcher_deliveries_total{hook, outcome}` at 0 for both outcomes of every
        hook given (those in force), so the dashboard's rates and increases see a hook's first
        outcome after a worker's start. Zero series of hooks no longer given are dropped
        (`keep_circuits` drops their cached children: a late outcome is looked up afresh)."""
        now = dict.fromkeys(hook_ids, OUTCOMES)
        _expect_zeros(self.deliveries, self._delivering, now)
        self._delivering = now

    def show_unusable(self, unusable_by_hook: Mapping[str, bool]) -> None:
        """`dispatcher_hook_unusable{hook}` for every hook in force, 0 or 1 (0 from the start,
        so an alert sees a change, not a series appearing); the series of a hook no longer in
        force is removed. Set only on change."""
        for hook_id, unusable in unusable_by_hook.items():
            if self._unusable.get(hook_id) is not unusable:
                self.hook_unusable.labels(hook_id).set(unusable)
        for gone in self._unusable.keys() - unusable_by_hook.keys():
            self.hook_unusable.remove(gone)
        self._unusable = dict(unusable_by_hook)

    def keep_circuits(self, sending: Collection[str]) -> None:
        """Remove `dispatcher_circuit_open{hook}` of the hooks not in `sending` (deleted, or
        disabled): no pair of theirs reaches a breaker again to report it, so a breaker last
        seen open would read open for good, and DispatcherCircuitOpen page for a hook that is
        gone. Such a hook's children are looked up afresh should it send again: its next
        delivery exports its breaker anew."""
        for hook_id in [h for h in list(self._hooks) if h not in sending]:
            self._hooks.pop(hook_id, None)
            with suppress(KeyError):
                self.circuit_open.remove(hook_id)

    def hook(self, hook_id: str) -> HookMetrics:
        """One hook's delivery metrics, their labels looked up once (`labels()` costs a lock,
        a tuple and a dict look-up on every call; a delivery makes six)."""
        found = self._hooks.get(hook_id)
        if found is None:
            found = self._hooks[hook_id] = HookMetrics(self, hook_id)
        return found


def _expect_zeros(
    counter: Counter, was: Mapping[str, tuple[str, ...]], now: Mapping[str, tuple[str, ...]]
) -> None:
    """Children (hook, value) of a counter labelled by hook and one more label: each of `now`
    created at 0; each of `was` no longer in `now` removed unless it counted something."""
    counted = {
        tuple(sample.labels.values())
        for family in counter.collect()
        for sample in family.samples
        if sample.name.endswith("_total") and sample.value > 0
    }
    for hook_id, values in was.items():
        for value in set(values) - set(now.get(hook_id, ())):
            if (hook_id, value) not in counted:
                counter.remove(hook_id, value)
    for hook_id, values in now.items():
        for value in values:
            counter.labels(hook_id, value)


class HookMetrics:
    """The children of one hook's labelled delivery metrics."""

    __slots__ = (
        "_attempts",
        "_by_result",
        "_by_result_hook",
        "_circuit_was_open",
        "circuit_open",
        "duration",
        "event_to_delivery",
        "inflight",
        "outcomes",
    )

    def __init__(self, metrics: Metrics, hook_id: str) -> None:
        self.inflight = metrics.inflight.labels(hook_id)
        self.circuit_open = metrics.circuit_open.labels(hook_id)
        self.duration = metrics.duration.labels(hook_id)
        self.event_to_delivery = metrics.event_to_delivery.labels(hook_id)
        self.outcomes = {
            outcome: metrics.deliveries.labels(hook_id, outcome) for outcome in OUTCOMES
        }
        self._attempts = metrics.attempts.labels
        self._by_result: dict[str, Tally] = {}
        self._by_result_hook = hook_id
        self._circuit_was_open: bool | None = None

    def circuit(self, is_open: bool) -> None:
        """`dispatcher_circuit_open{hook}`, set when it changes (every delivery reports it)."""
        if is_open is not self._circuit_was_open:
            self._circuit_was_open = is_open
            self.circuit_open.set(is_open)

    def attempts(self, result: str) -> Tally:
        """`dispatcher_delivery_attempts_total{hook, result}`."""
        child = self._by_result.get(result)
        if child is None:
            child = self._by_result[result] = self._attempts(self._by_result_hook, result)
        return child
