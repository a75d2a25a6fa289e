"""The client pool across a hook's edit: one client per definition in use, the old one closed
once nothing runs on it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dispatcher.config.settings import Settings
from dispatcher.http.pool import ClientPool
from dispatcher.http.sender import HookClient
from dispatcher.model.hook import Hook


def _hook(**extra: Any) -> Hook:
    raw = {"id": "crm", "events": ["order.*"], "url": "https://crm.example.com/h", **extra}
    return Hook.from_dict(raw)


OLD = _hook(concurrency=1)
NEW = _hook(concurrency=1, headers={"X-Version": "2"})  # the hook, edited


@pytest.fixture
def closed(monkeypatch: pytest.MonkeyPatch) -> list[HookClient]:
    """The clients closed, in order."""
    clients: list[HookClient] = []
    aclose = HookClient.aclose

    async def recorded(self: HookClient) -> None:
        clients.append(self)
        await aclose(self)

    monkeypatch.setattr(HookClient, "aclose", recorded)
    return clients


def test_pairs_of_the_old_and_the_new_definition_keep_one_client_each() -> None:
    pool = ClientPool(Settings())
    old = pool.client_for(OLD)
    old.slots._free -= 1  # an old pair sending holds the hook's only slot

    asked = [pool.client_for(d) for _ in range(20) for d in (NEW, OLD)]
    new = pool.client_for(NEW)

    assert old is not new
    assert new.hook is NEW
    assert {id(c) for c in asked} == {id(old), id(new)}  # no client built on alternation
    assert pool.client_for(OLD).slots.locked()  # its concurrency still holds for old pairs
    asyncio.run(pool.aclose())


def test_the_old_definitions_client_is_closed_when_its_last_pair_ends(
    closed: list[HookClient],
) -> None:
    async def scenario() -> None:
        pool = ClientPool(Settings())
        old = pool.client_for(OLD)
        old.taken()  # an old pair's delivery runs (between two attempts: no slot held)
        new = pool.client_for(NEW)
        await asyncio.sleep(0.01)
        assert closed == []
        assert pool.client_for(OLD) is old

        old.ended()
        await asyncio.sleep(0.01)
        assert closed == [old]
        new.taken()
        new.ended()  # the current client stays open
        await asyncio.sleep(0.01)
        assert closed == [old]
        await pool.aclose()
        assert closed == [old, new]

    asyncio.run(scenario())


def test_an_idle_old_client_is_closed_after_the_turn_that_retired_it(
    closed: list[HookClient],
) -> None:
    async def scenario() -> None:
        pool = ClientPool(Settings())
        old = pool.client_for(OLD)
        pool.client_for(NEW)
        assert pool.client_for(OLD) is old  # the same turn: still there for the batch's pairs
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert closed == [old]
        assert pool.client_for(OLD) is not old  # gone: an old pair now gets a new one
        await pool.aclose()

    asyncio.run(scenario())
