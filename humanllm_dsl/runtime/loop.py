"""The event loop LM calls run on: uvloop where it is installed (the `compile` extra installs it
on Linux and macOS), else asyncio's own. Against a fast server a run is CPU-bound on its loop,
and uvloop's sockets and scheduling cost about a sixth less client CPU per LM call
(docs/benchmarks.md); the behaviour is asyncio's either way."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(main: Awaitable[T]) -> T:
    """`asyncio.run(main)` on the loop above (Ctrl-C cancels `main`, as with asyncio.run)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
