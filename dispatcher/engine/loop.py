"""The event loop a worker runs on: uvloop where it is installed, else asyncio's own; and the
context its pairs' tasks start from.

uvloop runs the same asyncio code on libuv; with thousands of sockets in flight its loop and
transports cost a fraction of the pure-Python selector loop's CPU per delivery.
"""

from __future__ import annotations

import asyncio
import contextvars
import decimal
from collections.abc import Coroutine
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
