"""The delivery loop: the context its pairs' tasks start from."""

from __future__ import annotations

import asyncio
import contextvars
import decimal
import threading

from dispatcher.engine.loop import new_event_loop, task_context


def contexts_of_tasks(context: object | None) -> list[decimal.Context]:
    """The decimal contexts seen by three tasks started by a callback that another thread (a
    consumer's) scheduled on the loop, with `context` or without one."""
    loop = new_event_loop()
    seen: list[decimal.Context] = []
    done = asyncio.Event()

    async def pair() -> None:
        seen.append(decimal.getcontext())
        if len(seen) == 3:
            done.set()

    def start() -> None:
        for _ in range(3):
            loop.create_task(pair())

    def consumer() -> None:
        if context is None:
            loop.call_soon_threadsafe(start)
        else:
            loop.call_soon_threadsafe(start, context=context)  # type: ignore[arg-type]

    async def main() -> None:
        thread = threading.Thread(target=consumer)
        thread.start()
        await asyncio.wait_for(done.wait(), 10)
        thread.join()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    return seen


def made_on_a_new_thread() -> contextvars.Context:
    """`task_context()` made where no decimal context exists yet (a new thread's context is
    empty), so the test does not lean on one an earlier test left in this thread's."""
    made: list[contextvars.Context] = []
    thread = threading.Thread(target=lambda: made.append(task_context()))
    thread.start()
    thread.join()
    return made[0]


def test_tasks_started_in_the_task_context_share_one_decimal_context() -> None:
    seen = contexts_of_tasks(made_on_a_new_thread())
    assert len({id(c) for c in seen}) == 1


def test_without_it_each_task_would_make_a_decimal_context_of_its_own() -> None:
    """What `task_context` is for: a thread's callback carries the thread's empty context."""
    seen = contexts_of_tasks(None)
    assert len({id(c) for c in seen}) == 3
