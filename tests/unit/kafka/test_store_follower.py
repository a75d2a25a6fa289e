"""A worker's view of the hook store: what it cannot run is in force as unusable, never dropped
and never run other than as written."""

from __future__ import annotations

import json
from typing import Any

from dispatcher.config.settings import Settings
from dispatcher.kafka.follower import StoreFollower
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
