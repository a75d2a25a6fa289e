"""`dispatcher_dead_letters_total{hook, error_kind}` is exported at 0 from a worker's start for
every hook in force and every kind it can get, so an alert's increase() sees the first dead
letter; the series follow the hooks, and stay bounded by them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from dispatcher.config.settings import Settings
from dispatcher.engine.worker import Worker
from dispatcher.errors import PAIR_ERROR_KINDS
from dispatcher.metrics import Metrics
from dispatcher.model.hook import Hook
from dispatcher.pipeline.match import HookIndex


def hook(hook_id: str) -> Hook:
    return Hook.from_dict({"id": hook_id, "events": ["order.*"], "url": "https://x.example.com"})


def series(metrics: Metrics) -> dict[tuple[str, str], float]:
    return {
        (s.labels["hook"], s.labels["error_kind"]): s.value
        for family in metrics.dead_letters.collect()
        for s in family.samples
        if s.name == "dispatcher_dead_letters_total"
    }


def worker(hooks: list[Hook], consume: str = "group") -> Worker:
    metrics = Metrics(CollectorRegistry())
    return Worker(Settings(consume=consume), HookIndex(hooks), metrics=metrics)


def test_every_hook_and_kind_is_exported_at_0_before_the_first_dead_letter() -> None:
    found = series(worker([hook("sms-ke"), hook("tax")]).metrics)
    group_kinds = [k for k in PAIR_ERROR_KINDS if k != "redelivered"]
    expected = {(h, k): 0.0 for h in ("sms-ke", "tax") for k in group_kinds}
    expected |= {("", "decode"): 0.0, ("", "internal"): 0.0}
    assert found == expected
    assert "redelivered" in PAIR_ERROR_KINDS  # a pair's kind in queue mode only


def test_in_queue_mode_a_hook_may_also_get_redelivered() -> None:
    found = series(worker([hook("sms-ke")], consume="share").metrics)
    assert found[("sms-ke", "redelivered")] == 0.0


def test_the_series_follow_the_hooks_and_keep_what_was_counted() -> None:
    w = worker([hook("sms-ke"), hook("tax")])
    w.metrics.dead_letters.labels("tax", "timeout").inc()
    w.set_hooks(HookIndex([hook("sms-ke"), hook("crm")]))
    found = series(w.metrics)
    assert {h for h, _ in found} == {"", "sms-ke", "crm", "tax"}
    assert [k for (h, k) in found if h == "tax"] == ["timeout"]  # its zeros are gone
    assert found[("tax", "timeout")] == 1.0
    assert found[("crm", "http_status")] == 0.0
