"""How LM calls are made at scale: a concurrency limit, optional requests- and tokens-per-minute
limits, a per-call timeout, and retries of transient failures (rate limits, server errors,
timeouts, dropped connections) with exponential backoff and full jitter that honours a
server's Retry-After.

Output problems (unparseable or invalid answers, truncated output) are not retried here: the
pipeline retries those with the problems as feedback, so a bad answer is never silently resent.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs

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
    from dspy.utils.exceptions import LMRateLimitError, LMServerError, LMTimeoutError, LMTransportError

    return isinstance(exc, (LMRateLimitError, LMServerError, LMTimeoutError, LMTransportError, asyncio.TimeoutError))


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
                    return await asyncio.wait_for(call(), self.limits.timeout)
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
