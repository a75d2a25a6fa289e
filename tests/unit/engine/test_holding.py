"""Which hooks' fresh pairs a consumer thread hands to their first retry tier itself
(`assembly.held_at_intake`): those whose circuit is open, as the delivery loop would hand them
off."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from dispatcher.config.settings import Settings
from dispatcher.engine.assembly import held_at_intake
from dispatcher.engine.deliver import Deliverer
from dispatcher.engine.worker import Worker
from dispatcher.http.pool import ClientPool
from dispatcher.metrics import Metrics
from dispatcher.model.hook import Hook
from dispatcher.pipeline.match import HookIndex


def hook(hook_id: str, **extra: object) -> Hook:
    return Hook.from_dict(
        {"id": hook_id, "events": ["order.*"], "url": "https://x.example.com", **extra}
    )


def trip(pool: ClientPool, tripped: Hook) -> None:
    breaker = pool.client_for(tripped).breaker
    for _ in range(breaker.settings.minimum_calls):
        breaker.record(False)


def holding_of(settings: Settings, hooks: list[Hook], tripped: list[Hook]) -> frozenset[str]:
    metrics = Metrics(CollectorRegistry())
    worker = Worker(settings, HookIndex(hooks), metrics=metrics)
    pool = ClientPool(settings)
    for each in hooks:
        pool.client_for(each)
    for each in tripped:
        trip(pool, each)
    deliverer = Deliverer(metrics, settings.topics.retry, settings.local_retries)
    return held_at_intake(settings, lambda: worker.hooks, pool, deliverer)()


def test_the_hooks_held_at_intake_are_those_whose_circuit_is_open() -> None:
    dead, alive = hook("dead"), hook("alive")

    assert holding_of(Settings(), [dead, alive], []) == frozenset()
    assert holding_of(Settings(), [dead, alive], [dead]) == {"dead"}


def test_an_ordered_hook_or_bundles_off_leave_every_pair_to_the_delivery_loop() -> None:
    ordered = hook("ordered", ordering="key")

    assert holding_of(Settings(), [ordered], [ordered]) == frozenset()
    dead = hook("dead")
    assert holding_of(Settings(retry_bundles=False), [dead], [dead]) == frozenset()


def test_a_hook_gone_from_the_definitions_is_not_held() -> None:
    settings = Settings()
    metrics = Metrics(CollectorRegistry())
    dead = hook("dead")
    worker = Worker(settings, HookIndex([dead]), metrics=metrics)
    pool = ClientPool(settings)
    trip(pool, dead)
    deliverer = Deliverer(metrics, settings.topics.retry, 0)
    holding = held_at_intake(settings, lambda: worker.hooks, pool, deliverer)
    assert holding() == {"dead"}

    worker.set_hooks(HookIndex([]))  # deleted while its circuit was open

    assert holding() == frozenset()


def test_the_open_circuit_of_a_superseded_definition_holds_no_fresh_pair() -> None:
    settings = Settings()
    metrics = Metrics(CollectorRegistry())
    old, new = hook("crm"), hook("crm", headers={"X-Version": "2"})
    worker = Worker(settings, HookIndex([new]), metrics=metrics)
    pool = ClientPool(settings)
    trip(pool, old)  # the old URL was dead; the edit moved the hook
    pool.client_for(new)
    deliverer = Deliverer(metrics, settings.topics.retry, settings.local_retries)

    assert held_at_intake(settings, lambda: worker.hooks, pool, deliverer)() == frozenset()
