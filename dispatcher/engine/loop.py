"""The event loop a worker runs on: uvloop where it is installed, else asyncio's own; and the
context its pairs' tasks start from.

uvloop runs the same asyncio code on libuv; with thousands of sockets in flight its loop and
transports cost a fraction of the pure-Python selector loop's CPU per delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import decimal
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's when it is importable."""
    try:
        import uvloop
    except ImportError:  # not on this platform (uvloop is a dependency on Linux and macOS)
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the loop of `new_event_loop`."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)


def task_context() -> contextvars.Context:
    """A context for the callbacks that start pairs' tasks (`call_soon_threadsafe(...,
    context=)`), each task starting from a copy of it.

    A thread starts with an empty context, and a task copies the context it is made in. So the
    tasks a consumer thread's callback made started with no decimal context, and the first
    `Decimal` of each (a field of type `decimal`) made one of its own: ~4 us and a dozen
    objects per pair. Here it is made once, and every task shares it, as asyncio code does
    on the loop's own thread."""
    context = contextvars.copy_context()
    context.run(decimal.getcontext)
    return context


class Abandoned(Exception):
    """Raised by `unless_stopped` when the stop came before the call returned."""


async def unless_stopped(stop: asyncio.Event, call: Callable[[], T], name: str) -> T:
    """`call()` run on a thread of its own while the loop stays free; `Abandoned` as soon as
    `stop` is set first. The thread is then left to end by itself (a daemon: it never holds
    the process), as a blocking Kafka client call cannot be cut short: waiting for an
    unreachable cluster would otherwise hold a stop back for the whole of its timeout."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        try:
            result = call()
        except BaseException as exc:  # handed to the waiting coroutine, or dropped with it
            outcome: tuple[T | None, BaseException | None] = (None, exc)
        else:
            outcome = (result, None)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=target, name=name, daemon=True).start()
    stopped = asyncio.ensure_future(stop.wait())
    waiting: set[asyncio.Future[Any]] = {done, stopped}
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if stop.is_set():
        if done.done():
            done.exception()  # retrieved, so an error of the abandoned call is not reported
        done.cancel()  # and one that comes later is dropped (`settle`)
        raise Abandoned
    return done.result()
