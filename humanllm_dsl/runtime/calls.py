"""How LM calls are made at scale, for every command that calls an LM: a concurrency limit,
optional requests- and tokens-per-minute limits, a per-call timeout, and retries of transient
failures (rate limits, server errors, timeouts, dropped connections, and 200s that carry no
answer: an HTML page, `choices: []`, `content: null`) with exponential backoff and full jitter
that honours a server's Retry-After.

Output problems (unparseable or invalid answers, truncated output) are not retried here: the
caller retries those with the problems as feedback, so a bad answer is never silently resent,
and a transport retry never reaches the caller as a bad answer.

compile awaits `CallPolicy.run` around each program call; eval and optimize call LMs from
threads, so their LMs carry the policy (`backends.GuardedLM.policy`) and each request goes
through `CallPolicy.run_sync`, on the policy's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import attrs

from .loop import new_event_loop

T = TypeVar("T")


@attrs.frozen
class Limits:
    """Args:
        concurrency: LM calls in flight at once.
        rpm: requests per minute (None: no limit).
        tpm: tokens per minute, prompt and completion estimated before the call (None: no limit).
        timeout: seconds one call may take before it is abandoned and retried.
        max_retries: retries of a transient failure before the call fails.
        backoff: first backoff in seconds; doubles per retry, with full jitter, up to `backoff_max`.
    """

    concurrency: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    rpm: float | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.gt(0)))
    tpm: float | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.gt(0)))
    timeout: float = attrs.field(default=120.0, validator=attrs.validators.gt(0))
    max_retries: int = attrs.field(default=6, validator=attrs.validators.ge(0))
    backoff: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    backoff_max: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))

    def share(self, workers: int) -> Limits:
        """One of `workers` workers' part: calls in flight (at least one each), requests and
        tokens per minute divided among them."""
        return attrs.evolve(self, concurrency=max(1, math.ceil(self.concurrency / workers)),
                            rpm=self.rpm / workers if self.rpm else None,
                            tpm=self.tpm / workers if self.tpm else None)


class TruncatedOutput(RuntimeError):
    """The LM stopped at its token limit (finish_reason "length"): the answer is incomplete."""


class TokenBucket:
    """`rate` units per minute, bursting up to one minute's worth."""

    def __init__(self, per_minute: float):
        self.capacity = per_minute
        self.tokens = per_minute
        self.rate = per_minute / 60.0
        self.stamp = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self, amount: float) -> None:
        amount = min(amount, self.capacity)  # one oversized call must still be able to go
        async with self.lock:  # first come, first served
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= amount:
                    self.tokens -= amount
                    return
                await asyncio.sleep((amount - self.tokens) / self.rate)


def is_transient(exc: BaseException) -> bool:
    """Failures worth sending the same request again for."""
    from dspy.utils.exceptions import (LMProviderError, LMRateLimitError, LMServerError, LMTimeoutError,
                                       LMTransportError)

    if isinstance(exc, (LMRateLimitError, LMServerError, LMTimeoutError, LMTransportError,
                        asyncio.TimeoutError, TimeoutError)):
        return True
    # A reply that is not an answer: a gateway's HTML page behind a 200 (or a 5xx) is a transport
    # fault; a 4xx (auth, bad request, unknown model) is not.
    status = getattr(exc, "status", None)
    return type(exc) is LMProviderError and isinstance(status, int) and (200 <= status < 300 or status >= 500)


def retry_after(exc: BaseException) -> float | None:
    value = getattr(exc, "retry_after", None)
    try:
        return None if value is None else max(0.0, float(value))
    except (TypeError, ValueError):
        return None


class CallPolicy:
    """Runs LM calls under `Limits`. One policy is shared by every program of a run."""

    def __init__(self, limits: Limits = Limits(), rng: random.Random | None = None):
        self.limits = limits
        self.rng = rng or random.Random()
        self.slots = asyncio.Semaphore(limits.concurrency)
        self.requests = TokenBucket(limits.rpm) if limits.rpm else None
        self.tokens = TokenBucket(limits.tpm) if limits.tpm else None
        self.transient_retries = 0
        self.in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._start = threading.Lock()

    def __deepcopy__(self, memo) -> "CallPolicy":
        return self  # one policy per run: an LM copied by an optimiser shares it

    def __copy__(self) -> "CallPolicy":
        return self

    def delay(self, attempt: int, exc: BaseException) -> float:
        hinted = retry_after(exc)
        if hinted is not None:
            return min(hinted, self.limits.backoff_max) + self.rng.uniform(0, 0.1 * max(hinted, 0.1))
        return self.rng.uniform(0, min(self.limits.backoff_max, self.limits.backoff * 2 ** attempt))

    async def run(self, call: Callable[[], Awaitable[T]], tokens: int = 0,
                  on_retry: Callable[[], None] | None = None) -> T:
        """Await `call()` within the limits; retry transient failures (calling `on_retry` each
        time); re-raise the last one."""
        for attempt in range(self.limits.max_retries + 1):
            if self.requests:
                await self.requests.take(1)
            if self.tokens and tokens:
                await self.tokens.take(tokens)
            async with self.slots:
                self.in_flight += 1
                try:
                    async with asyncio.timeout(self.limits.timeout):  # no extra task, unlike wait_for
                        return await call()
                except Exception as exc:  # noqa: BLE001 - sorted right below
                    if not is_transient(exc) or attempt == self.limits.max_retries:
                        raise
                    wait = self.delay(attempt, exc)
                finally:
                    self.in_flight -= 1
            self.transient_retries += 1
            if on_retry is not None:
                on_retry()
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    # -- blocking callers (eval and optimize call LMs from threads)
    def _background(self) -> asyncio.AbstractEventLoop:
        with self._start:
            if self._loop is None:
                loop = new_event_loop()
                threading.Thread(target=loop.run_forever, name="lm-call-policy", daemon=True).start()
                # abandoned (timed-out) calls keep a thread until their reply comes: leave room for them
                self._pool = ThreadPoolExecutor(max_workers=2 * self.limits.concurrency + 4,
                                                thread_name_prefix="lm-call")
                self._loop = loop
            return self._loop

    def run_sync(self, fn: Callable[[], T], tokens: int = 0, on_retry: Callable[[], None] | None = None) -> T:
        """Call the blocking `fn()` within the limits, from any thread; retried like `run`.
        Each try runs in the caller's context (dspy settings, usage tracking)."""
        context = contextvars.copy_context()
        loop = self._background()

        async def once():
            return await loop.run_in_executor(self._pool, context.copy().run, fn)

        return asyncio.run_coroutine_threadsafe(self.run(once, tokens, on_retry), loop).result()

    async def run_elsewhere(self, make: Callable[[], Awaitable[T]], tokens: int = 0) -> T:
        """Await `make()` within the limits from an event loop other than the policy's own."""
        context = contextvars.copy_context()
        loop = self._background()

        async def once():
            return await loop.create_task(make(), context=context.copy())

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.run(once, tokens), loop))

    def close(self) -> None:
        """Stop the background loop of `run_sync` (if it was started)."""
        with self._start:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._loop = self._pool = None


@attrs.frozen
class Gate:
    """The limits an LM call made in this context goes through (see `gated`)."""

    policy: CallPolicy
    tokens: int = 0
    on_retry: Callable[[], None] | None = None


_GATE: contextvars.ContextVar[Gate | None] = contextvars.ContextVar("humanllm_call_gate", default=None)


@contextlib.contextmanager
def gated(policy: CallPolicy, tokens: int = 0, on_retry: Callable[[], None] | None = None) -> Iterator[None]:
    """Within the block, each call a GuardedLM makes on this event loop goes through `policy`:
    the limits (calls in flight, requests and tokens per minute, timeout, transient retries)
    cover the request alone, not the prompt formatting and answer parsing around it, so a
    program's CPU work never holds a place meant for a call in flight."""
    token = _GATE.set(Gate(policy, tokens, on_retry))
    try:
        yield
    finally:
        _GATE.reset(token)


def current_gate() -> Gate | None:
    return _GATE.get()


def estimate_tokens(inputs: dict) -> int:
    """A rough token estimate of a program call (prompt plus a typical answer) for `--tpm`."""
    return sum(len(str(v)) for v in inputs.values()) // 4 + 1500


class UsageMeter:
    """Thread-safe totals of the LM calls of a run: calls, tokens, cost (USD, where known), and
    answers read back from the cache (their original tokens count too: they are what the answer
    cost to make)."""

    def __init__(self):
        self.calls = self.prompt_tokens = self.completion_tokens = self.cached = 0
        self.cost = 0.0
        self._lock = threading.Lock()

    def __deepcopy__(self, memo) -> "UsageMeter":
        return self

    def add(self, usage: dict, cost: float | None = None, cached: bool = False) -> None:
        with self._lock:
            self.calls += 1
            self.cached += cached
            self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.completion_tokens += int(usage.get("completion_tokens") or 0)
            self.cost += float(cost or 0.0)

    def as_dict(self) -> dict:
        return {"calls": self.calls, "cached": self.cached, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost": round(self.cost, 6)}
