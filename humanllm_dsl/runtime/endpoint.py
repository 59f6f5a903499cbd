"""A self-hosted OpenAI-compatible server (`--lm openai/NAME --api-base URL`: vLLM, SGLang, a
local gateway) spoken to through a custom dspy engine.

The request building, answer parsing and error mapping are lm15's own (`OpenAIChatLM`, the
Chat Completions dialect DSPy routes such a model to), so the wire is unchanged. What is left
out is the work DSPy's default route does per call for hosted providers: model resolution and
capability lookups in worker threads, and a price lookup that finds nothing for a self-hosted
model yet costs more CPU than the call itself. A run against a fast local server is CPU-bound
on exactly that (bench/bench_lm_call.py; docs/benchmarks.md). Hosted providers (no api_base)
keep DSPy's route and its pricing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading

#: Model prefixes whose `api_base` speaks the OpenAI Chat Completions API -> the lm15 dialect
#: preset DSPy's own route uses for them (vLLM takes `max_tokens`, OpenAI `max_completion_tokens`).
DIALECTS = {"openai/": None, "hosted_vllm/": "vllm"}


def speaks_chat_completions(model: str, api_base: str | None) -> bool:
    """Whether `model` at `api_base` is a self-hosted Chat Completions server."""
    return bool(api_base) and model.startswith(tuple(DIALECTS))


def dialect(model: str) -> str | None:
    return DIALECTS[model.split("/", 1)[0] + "/"]


def wire_model(model: str) -> str:
    """The model name the server knows: `openai/NAME` -> `NAME`."""
    return model.split("/", 1)[1]


def endpoint_key(key_env: str | None) -> str:
    """The key from `key_env` (default OPENAI_API_KEY). A vLLM or SGLang server started without
    --api-key takes any key (their docs use EMPTY); one that wants a key answers 401, reported
    as such."""
    return os.environ.get(key_env or "OPENAI_API_KEY") or "EMPTY"


#: Connections a client keeps open; the call policy bounds the calls in flight (lm15's default, 100,
#: would make calls past it wait for a connection at a higher `--concurrency`).
MAX_CONNECTIONS = 4096


#: Seconds one async request may take in all (the call policy's `--timeout` is usually shorter).
REQUEST_TIMEOUT = 600.0


def _transport(api_base: str, asynchronous: bool):
    """An lm15 transport for `api_base`. Whether the environment routes it through a proxy is
    decided once here: left to lm15, it would read the whole environment on every request.
    The async transport has no per-read timeouts: lm15 runs each as a task of its own, four or
    more a request; one deadline around the whole request (`REQUEST_TIMEOUT`) replaces them.
    The sync one keeps them: a thread blocked on a socket cannot be cancelled."""
    from dspy._vendor.lm15.transports import StdlibAsyncTransport, StdlibTransport
    from dspy._vendor.lm15.transports._proxy import proxy_route_for
    from dspy._vendor.lm15.transports._url import parse_url

    proxied = proxy_route_for(parse_url(api_base), proxy=None, trust_env=True) is not None
    if not asynchronous:
        return StdlibTransport(max_connections=MAX_CONNECTIONS, trust_env=proxied)
    return StdlibAsyncTransport(max_connections=MAX_CONNECTIONS, trust_env=proxied, pool_timeout=None,
                                read_timeout=None, write_timeout=None)


def _timed_out():
    """lm15's timeout error, which DSPy reports as a timeout (resent), not as an engine fault."""
    from dspy._vendor.lm15.errors import RequestTimeoutError

    return RequestTimeoutError(f"no answer within {REQUEST_TIMEOUT:g} s", provider="openai-chat")


class _Saved:
    """dspy saves a custom engine by class path and `dump_state`: the URL and the name of the
    key's variable, never the key."""

    api_base: str
    key_env: str | None
    compat: str | None

    def dump_state(self) -> dict:
        return {"api_base": self.api_base, "key_env": self.key_env, "compat": self.compat}

    @classmethod
    def load_state(cls, state: dict):
        return cls(state["api_base"], state.get("key_env"), state.get("compat"))


class EndpointEngine(_Saved):
    """dspy engine: `complete(Request)` on one lm15 `OpenAIChatLM` (one pooled connection set)."""

    def __init__(self, api_base: str, key_env: str | None = None, compat: str | None = None):
        from dspy.lm15 import OpenAIChatLM

        self.api_base, self.key_env, self.compat = api_base, key_env, compat
        self._lm = OpenAIChatLM(api_key=endpoint_key(key_env), base_url=api_base, compat=compat,
                                transport=_transport(api_base, asynchronous=False))

    def complete(self, request):
        return self._lm.complete(dataclasses.replace(request, model=wire_model(request.model)))

    def stream(self, request):
        return self._lm.stream(dataclasses.replace(request, model=wire_model(request.model)))

    def close(self) -> None:
        self._lm.close()


class AsyncEndpointEngine(_Saved):
    """The async twin. An lm15 async client's connections belong to one event loop, so each
    loop gets its own client (compile runs one loop; eval's calls run on a background one)."""

    def __init__(self, api_base: str, key_env: str | None = None, compat: str | None = None):
        self.api_base, self.key_env, self.compat = api_base, key_env, compat
        self._key = endpoint_key(key_env)
        self._clients: dict[asyncio.AbstractEventLoop, object] = {}
        self._lock = threading.Lock()

    def _client(self):
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            from dspy.lm15 import AsyncOpenAIChatLM

            with self._lock:
                for old in [old for old in self._clients if old.is_closed()]:
                    del self._clients[old]
                client = self._clients.setdefault(loop, AsyncOpenAIChatLM(
                    api_key=self._key, base_url=self.api_base, compat=self.compat,
                    transport=_transport(self.api_base, asynchronous=True)))
        return client

    async def complete(self, request):
        deadline = asyncio.timeout(REQUEST_TIMEOUT)
        try:
            async with deadline:
                return await self._client().complete(dataclasses.replace(request, model=wire_model(request.model)))
        except TimeoutError as exc:
            raise _timed_out() if deadline.expired() else exc

    async def stream(self, request):
        events = aiter(self._client().stream(dataclasses.replace(request, model=wire_model(request.model))))
        while True:
            deadline = asyncio.timeout(REQUEST_TIMEOUT)  # between two events
            try:
                async with deadline:
                    event = await anext(events)
            except StopAsyncIteration:
                return
            except TimeoutError as exc:
                raise _timed_out() if deadline.expired() else exc
            yield event

    async def aclose(self) -> None:
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
