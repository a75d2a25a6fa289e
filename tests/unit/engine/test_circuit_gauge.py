"""`dispatcher_circuit_open{hook}` leaves with a hook that sends no more (deleted or disabled):
no pair of it reaches its breaker again to report it, so a breaker last seen open would read
open for good, and DispatcherCircuitOpen would page for a hook that is gone."""

from __future__ import annotations

import dataclasses

from prometheus_client import CollectorRegistry

from dispatcher.config.settings import Settings
from dispatcher.engine.worker import Worker
from dispatcher.metrics import Metrics
from dispatcher.model.hook import Hook
from dispatcher.pipeline.match import HookIndex


def hook(hook_id: str, *, enabled: bool = True) -> Hook:
    raw = {"id": hook_id, "events": ["order.*"], "url": "https://x.example.com"}
    return dataclasses.replace(Hook.from_dict(raw), enabled=enabled)


def circuits(metrics: Metrics) -> dict[str, float]:
    return {
        s.labels["hook"]: s.value
        for family in metrics.circuit_open.collect()
        for s in family.samples
        if s.name == "dispatcher_circuit_open"
    }


def worker_with_open_breakers(*hook_ids: str) -> Worker:
    """A worker whose deliveries reported each hook's breaker open (as `Deliverer` does)."""
    metrics = Metrics(CollectorRegistry())
    worker = Worker(Settings(), HookIndex([hook(h) for h in hook_ids]), metrics=metrics)
    for hook_id in hook_ids:
        metrics.hook(hook_id).circuit(True)
    return worker


def test_a_deleted_hooks_open_breaker_is_no_longer_exported() -> None:
    worker = worker_with_open_breakers("bank", "sms")
    assert circuits(worker.metrics) == {"bank": 1.0, "sms": 1.0}
    worker.set_hooks(HookIndex([hook("sms")]))  # `dispatcher hooks delete bank`
    assert circuits(worker.metrics) == {"sms": 1.0}


def test_a_disabled_hooks_open_breaker_is_no_longer_exported() -> None:
    worker = worker_with_open_breakers("bank", "sms")
    worker.set_hooks(HookIndex([hook("bank", enabled=False), hook("sms")]))
    assert circuits(worker.metrics) == {"sms": 1.0}


def test_a_hook_that_sends_again_reports_its_breaker_at_its_next_delivery() -> None:
    worker = worker_with_open_breakers("bank")
    worker.set_hooks(HookIndex([hook("bank", enabled=False)]))
    worker.set_hooks(HookIndex([hook("bank")]))
    assert circuits(worker.metrics) == {}
    worker.metrics.hook("bank").circuit(True)  # still open where it was left
    assert circuits(worker.metrics) == {"bank": 1.0}
    worker.metrics.hook("bank").circuit(False)
    assert circuits(worker.metrics) == {"bank": 0.0}


def test_the_other_delivery_series_of_a_hook_that_left_keep_their_counts() -> None:
    worker = worker_with_open_breakers("bank")
    worker.metrics.hook("bank").outcomes["delivered"].inc()
    worker.set_hooks(HookIndex([]))
    worker.metrics.hook("bank").outcomes["delivered"].inc()  # a pair taken in before it left
    sample = {"hook": "bank", "outcome": "delivered"}
    assert worker.metrics.registry.get_sample_value("dispatcher_deliveries_total", sample) == 2.0
