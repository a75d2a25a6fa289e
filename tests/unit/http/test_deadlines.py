"""Shared-tick deadlines: a passed deadline cancels its exchange as `asyncio.timeout` would,
and a cancellation from elsewhere is never taken for one."""

from __future__ import annotations

import asyncio

import httpx

from dispatcher.http.deadlines import Deadlines
from dispatcher.http.sender import HookClient
from dispatcher.model.hook import Hook
from dispatcher.model.request import Request


async def _wait_under(deadlines: Deadlines, seconds: float, forever: asyncio.Future[None]) -> bool:
    deadline = deadlines.start(seconds)
    try:
        try:
            await forever
        finally:
            passed = deadline.end()
    except asyncio.CancelledError:
        return passed
    return False


async def _a_passed_deadline_cancels_the_task_and_says_it_was_the_deadline() -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(_wait_under(Deadlines(loop), 0.0, loop.create_future()))
    assert await task is True
    assert task.cancelling() == 0  # the deadline's cancel taken back, as asyncio.timeout does


async def _a_cancellation_from_elsewhere_is_not_the_deadlines() -> None:
    loop = asyncio.get_running_loop()
    started = asyncio.Event()

    async def waiting() -> bool:
        started.set()
        return await _wait_under(Deadlines(loop), 3600.0, loop.create_future())

    task = asyncio.create_task(waiting())
    await started.wait()
    task.cancel()
    assert await task is False


async def _a_deadline_passing_after_another_cancel_leaves_the_cancel_standing() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    inside = asyncio.Event()
    ended: list[bool] = []

    async def waiting() -> None:
        deadline = deadlines.start(3600.0)
        inside.set()
        try:
            await loop.create_future()
        finally:
            ended.append(deadline.end())

    task = asyncio.create_task(waiting())
    await inside.wait()
    task.cancel()  # from elsewhere, then the deadline's tick passes: two cancels on the task
    (tick,) = deadlines._due
    deadlines._expire(tick)
    (result,) = await asyncio.gather(task, return_exceptions=True)
    assert isinstance(result, asyncio.CancelledError)
    assert ended == [False]


async def _a_hook_that_never_answers_gets_a_timeout_verdict() -> None:
    never: asyncio.Future[httpx.Response] = asyncio.get_running_loop().create_future()

    async def hang(_request: httpx.Request) -> httpx.Response:
        return await never

    hook = Hook.from_dict(
        {"id": "slow", "events": ["x"], "url": "https://slow.example.com/", "timeout": "10ms"}
    )
    client = HookClient(hook, httpx.MockTransport(hang))
    attempt = await client.send(Request("POST", hook.url, (), b"{}"))
    assert attempt.verdict.kind == "timeout"
    assert attempt.verdict.retryable


def test_a_passed_deadline_cancels_the_task_and_says_it_was_the_deadline() -> None:
    asyncio.run(_a_passed_deadline_cancels_the_task_and_says_it_was_the_deadline())


def test_a_cancellation_from_elsewhere_is_not_the_deadlines() -> None:
    asyncio.run(_a_cancellation_from_elsewhere_is_not_the_deadlines())


def test_a_deadline_passing_after_another_cancel_leaves_the_cancel_standing() -> None:
    asyncio.run(_a_deadline_passing_after_another_cancel_leaves_the_cancel_standing())


def test_a_hook_that_never_answers_gets_a_timeout_verdict() -> None:
    asyncio.run(_a_hook_that_never_answers_gets_a_timeout_verdict())
