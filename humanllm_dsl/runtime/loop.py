"""How a run's LM calls are driven: on uvloop where it is installed (the `compile` extra installs
it on Linux and macOS), else asyncio's own loop, with the garbage collector tuned for a long run.

Against a fast server a run is CPU-bound on its one loop. uvloop's sockets and scheduling cost
about a sixth less client CPU per LM call, and the collector, left at its defaults, spent about
12% of a run re-scanning the hundreds of thousands of objects DSPy and its dependencies create
at import (docs/benchmarks.md). Behaviour is unchanged either way."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Awaitable, Iterator
from typing import TypeVar

T = TypeVar("T")

#: Allocations between young collections (default 700), and the older generations' ratios.
GC_THRESHOLD = (20_000, 20, 20)


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


@contextlib.contextmanager
def long_run_gc() -> Iterator[None]:
    """Everything alive now (modules, programs, the library) is left out of later collections,
    and young objects are collected less often; both as before once the block ends."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def run(main: Awaitable[T]) -> T:
    """`asyncio.run(main)` on the loop above (Ctrl-C cancels `main`, as with asyncio.run)."""
    with long_run_gc(), asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
