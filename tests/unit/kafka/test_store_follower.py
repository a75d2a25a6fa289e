"""A worker's view of the hook store: what it cannot run is in force as unusable, never dropped
and never run other than as written; a one-off read of the store sees the same."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from dispatcher.config.settings import Settings
from dispatcher.kafka import store
from dispatcher.kafka.follower import StoreFollower
from dispatcher.kafka.store import HookStore
from dispatcher.model.event import Record
from dispatcher.pipeline.match import HookIndex

LEDGER = {
    "id": "ledger",
    "events": ["order.paid"],
    "url": "https://ledger.example.com/",
    "ordering": "key",
}


def stored(settings: Settings, offset: int, definition: dict[str, Any] | None) -> Record:
    value = None if definition is None else json.dumps(definition).encode()
    key = b"ledger" if definition is None else str(definition["id"]).encode()
    return Record(settings.topics.hooks, 0, offset, key, value, ())


def follower(settings: Settings) -> StoreFollower:
    return StoreFollower(settings, HookIndex(), lambda _index: None)


def test_in_queue_mode_a_stored_hook_ordered_by_key_is_in_force_as_unusable() -> None:
    settings = Settings(consume="share")
    following = follower(settings)
    following._apply([stored(settings, 0, LEDGER)])

    hook = following.stored["ledger"]
    assert hook.unusable is not None
    assert "consume: share gives no order" in hook.unusable
    assert HookIndex([hook]).match("order.paid") == (hook,)  # its pairs are still pairs

    following._apply([stored(settings, 1, {**LEDGER, "ordering": "none"})])
    assert following.stored["ledger"].unusable is None  # runnable again once changed


def test_in_group_mode_a_stored_hook_ordered_by_key_runs_as_written() -> None:
    settings = Settings()
    following = follower(settings)
    following._apply([stored(settings, 0, LEDGER)])

    assert following.stored["ledger"].unusable is None
    assert following.stored["ledger"].ordering == "key"


V1 = {"id": "erp", "events": ["order.paid"], "url": "https://old-erp.example.com/"}
V2 = {
    **V1,
    "url": "https://new-erp.example.com/",
    "tenant": "acme",
    "auth": {"type": "bearer", "token": "${env:DISPATCHER_SECRET_ERP_TOKEN}"},
}


def test_a_stored_hook_that_does_not_load_is_in_force_as_unusable_on_old_and_new_workers(
    monkeypatch: Any, caplog: Any
) -> None:
    monkeypatch.delenv("DISPATCHER_SECRET_ERP_TOKEN", raising=False)
    settings = Settings()
    running, fresh = follower(settings), follower(settings)
    running._apply([stored(settings, 0, V1)])
    running._apply([stored(settings, 1, V2)])  # its token cannot be resolved here
    fresh._apply([stored(settings, 1, V2)])  # started once compaction dropped V1

    for following in (running, fresh):
        hook = following.stored["erp"]
        assert hook.unusable is not None
        assert "does not load on this worker" in hook.unusable
        assert "DISPATCHER_SECRET_ERP_TOKEN" in hook.unusable  # the reference, not a value
        assert (hook.url, hook.tenant) == ("", "acme")
        assert HookIndex([hook]).match("order.paid", "acme") == (hook,)
        assert HookIndex([hook]).match("order.paid", "other") == ()
    assert "hook store: hook erp does not load here" in caplog.text

    monkeypatch.setenv("DISPATCHER_SECRET_ERP_TOKEN", "t0ken")
    fresh._apply([stored(settings, 2, V2)])
    assert fresh.stored["erp"].unusable is None  # a definition that loads: in force again
    assert fresh.stored["erp"].url == "https://new-erp.example.com/"


def test_a_stored_record_that_is_not_json_is_an_unusable_hook_matching_nothing() -> None:
    settings = Settings()
    following = follower(settings)
    following._apply([Record(settings.topics.hooks, 0, 0, b"erp", b"{not json", ())])

    hook = following.stored["erp"]
    assert hook.unusable is not None
    assert "not JSON" in hook.unusable
    assert following.definition("erp") is None


def test_a_stored_definition_naming_no_events_keeps_the_events_of_the_one_it_replaces() -> None:
    settings = Settings()
    following = follower(settings)
    following._apply([stored(settings, 0, V1), stored(settings, 1, {"id": "erp", "events": []})])

    hook = following.stored["erp"]
    assert hook.unusable is not None
    assert hook.events == ("order.paid",)  # dead-lettered as config, not dropped


def test_a_one_off_read_of_the_store_holds_what_a_worker_holds_unusable_hooks_too(
    monkeypatch: Any,
) -> None:
    """`hooks list`, `hooks show` and `hooks delete` read the store once: a stored hook the
    workers cannot use is there, unusable, not skipped as if it were not stored."""
    monkeypatch.delenv("DISPATCHER_SECRET_ERP_TOKEN", raising=False)
    settings = Settings(consume="share")
    records = [stored(settings, 0, V2), stored(settings, 1, LEDGER)]
    monkeypatch.setattr(store, "scan", lambda _settings, _topic: iter(records))
    worker = follower(settings)
    worker._apply(records)

    read = HookStore(settings).read()

    assert read == worker.stored
    assert sorted(read) == ["erp", "ledger"]
    assert "DISPATCHER_SECRET_ERP_TOKEN" in (read["erp"].unusable or "")
    assert "consume: share gives no order" in (read["ledger"].unusable or "")


def test_at_start_only_what_is_wrong_with_a_hooks_latest_record_is_logged(
    monkeypatch: Any, caplog: Any
) -> None:
    """A stored hook that did not load, then was deleted or fixed: every start logged the old
    record's error ("its pairs are dead-lettered as config until ..."), until compaction took
    it, of a hook that was gone or loading fine."""
    monkeypatch.delenv("DISPATCHER_SECRET_ERP_TOKEN", raising=False)
    settings = Settings()
    broken_crm = {**V2, "id": "crm"}
    records = [
        stored(settings, 0, V2),  # erp does not load here ...
        Record(settings.topics.hooks, 0, 1, b"erp", None, ()),  # ... and was deleted
        stored(settings, 2, broken_crm),  # crm did not load ...
        stored(settings, 3, {**broken_crm, "auth": {"type": "none"}}),  # ... and was fixed
        stored(settings, 4, {**V2, "id": "sms"}),  # sms does not load here, now
    ]
    following = follower(settings)
    monkeypatch.setattr(following, "_read_to_end", lambda _timeout: following._apply(records))
    monkeypatch.setattr(following, "_follow_in_thread", lambda: None)
    following.start()

    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1, errors
    assert errors[0].startswith("hook store: hook sms does not load here")
    assert sorted(following.stored) == ["crm", "sms"]

    following._apply([stored(settings, 5, broken_crm)])  # followed: said at once
    assert "hook store: hook crm does not load here" in caplog.text


class _ClosingSlowly:
    """A consumer with nothing to read whose close waits on the broker (gone) until released."""

    def __init__(self) -> None:
        self.closing = threading.Event()
        self.release = threading.Event()

    def consume(self, _count: int, _timeout: float) -> list[Any]:
        return []

    def close(self) -> None:
        self.closing.set()
        self.release.wait(timeout=30)


def test_a_stop_waits_for_the_following_thread_no_later_than_the_deadline_it_is_given() -> None:
    """A worker's stop gives the follower what is left of its one stop deadline; it waited 10 s
    whatever was left."""
    made = follower(Settings())
    consumer = made._consumer = _ClosingSlowly()
    made._follow_in_thread()
    stopping = threading.Thread(target=made.stop, kwargs={"by": time.monotonic()})
    try:
        stopping.start()
        stopping.join(timeout=5)  # half its own wait: the deadline given is now
        assert not stopping.is_alive()
        assert consumer.closing.wait(timeout=30)
        assert made._thread.is_alive()  # left behind in its close, which goes on
    finally:
        consumer.release.set()
        made._thread.join(timeout=30)
        stopping.join(timeout=30)
    assert not made._thread.is_alive()
