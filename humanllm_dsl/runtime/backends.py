"""Which LM answers a program: `offline`, `hf:PATH` (a local transformers model), or any model
string `dspy.LM` accepts (OpenAI-compatible servers, vLLM, Ollama, hosted providers).

Keys come only from the environment (or from the variable an `api_key_env` names); they are
never written anywhere. Every LM made here treats a truncated answer (finish_reason "length")
as a failure, so an incomplete text never passes as a finished one.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import attrs
import dspy

from dspy.clients.cache import Cache
from dspy.clients.execution import aexecute, finalize, prepare
from dspy.utils.callback import with_callbacks
from dspy.utils.exceptions import LMTransportError

from .calls import CallPolicy, TruncatedOutput, UsageMeter, current_gate, estimate_tokens, gated
from .endpoint import AsyncEndpointEngine, EndpointEngine, dialect, speaks_chat_completions
from .stages import OFFLINE

# DSPy logs a warning for every truncated answer; here truncation is handled instead (a program's
# answer is refused and retried, a role-play turn is flagged), so the warning would only be noise.
logging.getLogger("dspy.clients.lm").setLevel(logging.ERROR)
HF_PREFIX = "hf:"


@attrs.frozen
class LMSpec:
    """Args:
        model: `offline`, `hf:PATH`, or a dspy.LM model string such as `openai/gpt-4o-mini`.
        api_base: base URL of an OpenAI-compatible server.
        api_key_env: the environment variable holding the key (default: the provider's own).
        temperature, max_tokens: generation settings (None: the provider's default).
        batch_size: for `hf:` models, requests generated together.
        api_bases: several endpoints of the same model (one vLLM server per node, say): calls
            spread over them through LiteLLM's Router (router.py); instead of `api_base`.
        cooldown: with `api_bases`, seconds an endpoint is left out after it keeps failing.
        allowed_fails: with `api_bases`, failures of one endpoint in a minute before its cool-down.
    """

    model: str = OFFLINE
    api_base: str | None = None
    api_key_env: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    batch_size: int = 8
    api_bases: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    cooldown: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    allowed_fails: int = attrs.field(default=1, validator=attrs.validators.ge(0))

    def __attrs_post_init__(self):
        if self.api_bases and self.api_base:
            raise ValueError(f"`{self.model}`: give `api_base` (one endpoint) or `api_bases` (several), not both")

    @property
    def label(self) -> str:
        """What the manifest records: the model, never a key."""
        return self.model

    def key(self) -> str | None:
        """The API key `api_key_env` names (None: the provider's own variable applies)."""
        if not self.api_key_env:
            return None
        value = os.environ.get(self.api_key_env)
        if not value:
            raise ValueError(f"the environment variable {self.api_key_env} (api_key_env of `{self.model}`) is not set")
        return value


class NoAnswer(LMTransportError):
    """A reply that arrived but carries no answer (`choices: []`, `content: null`): a transport
    fault, resent like a 502, never shown to the model as a bad answer."""


def no_answer(response) -> str | None:
    """Why a reply that arrived is not an answer (None: it is one). A 200 with `choices: []` or
    `content: null` is a transport fault, resent like a 502; an empty string is the model's own
    (empty) answer, a content problem."""
    data = getattr(response, "provider_data", None)
    if not isinstance(data, dict) or "choices" not in data:
        return None
    choices = data["choices"]
    if not choices:
        return "the reply had no choices (`choices: []`)"
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    if isinstance(message, dict) and message.get("content") is None and not message.get("tool_calls"):
        return "the reply's message had no content (`content: null`)"
    return None


class GuardedLM(dspy.LM):
    """A dspy.LM that raises TruncatedOutput when a program's answer stopped at the token limit,
    and NoAnswer (a transient fault) for a reply that carries no answer.

    Calls made with an explicit `dspy.lm15.Request` get the Response, whose `finish_reason`
    the caller reads itself; those are not checked for truncation here. `keep_history = False`
    stops DSPy's history of calls (up to 10,000 prompts and answers held in memory) for long runs.

    `policy`: when set (eval, optimize), every call goes through it (limits, transport retries).
    Inside `calls.gated(policy)` (compile), an async call goes through that policy instead.
    `meter`: when set, every answer's usage is added to it. An answer read back from the cache
    counts with the tokens it took to make (DSPy counts it as 0), so a record's usage does not
    depend on whether a crash made it come from the cache.
    """

    keep_history = True
    policy: CallPolicy | None = None
    meter: UsageMeter | None = None

    def __call__(self, *args, **kwargs):
        if self.policy is None:
            return dspy.LM.__call__(self, *args, **kwargs)
        return self.policy.run_sync(lambda: dspy.LM.__call__(self, *args, **kwargs))

    async def acall(self, *args, **kwargs):
        gate = current_gate()
        if gate is not None:  # compile: the caller's limits, on the caller's loop
            return await gate.policy.run(lambda: self._acall(*args, **kwargs), gate.tokens, gate.on_retry)
        if self.policy is None:
            return await self._acall(*args, **kwargs)
        return await self.policy.run_elsewhere(lambda: self._acall(*args, **kwargs))

    @with_callbacks
    async def _acall(self, prompt=None, *, messages=None, **kwargs):
        """dspy's `BaseLM.acall` without its worker-thread hop around preparing the request: the
        hop is there for reading local media files, which no program here sends, and costs the
        event loop more than the preparation itself."""
        call = prepare(self, prompt, messages, kwargs, asynchronous=True)
        return finalize(self, call, await aexecute(self, call))

    def update_history(self, entry):
        responses = entry.get("response")
        responses = responses if isinstance(responses, (list, tuple)) else [responses]
        for response in responses:
            reason = no_answer(response)
            if reason:
                raise NoAnswer(reason)
        if entry.get("request") is not None:
            self._count(entry, responses)
            return super().update_history(entry)
        for response in responses:
            if getattr(response, "finish_reason", None) == "length":
                raise TruncatedOutput("the answer was cut off at the token limit (finish_reason=length)")
        cost, tracker = entry.get("cost"), dspy.settings.usage_tracker
        if cost and tracker is not None:  # DSPy tracks tokens per call, not the price: add it
            tracker.add_usage(self.model, {"cost": float(cost)})
        self._count(entry, responses)
        if self.keep_history:
            super().update_history(entry)

    def _count(self, entry: dict, responses) -> None:
        usage, cached = entry.get("usage") or {}, False
        if not usage:  # a cache hit: DSPy drops the usage, the stored response still has it
            from dspy.clients.call_result import usage_dict
            from dspy.lm15 import Response

            found = [usage_dict(r) for r in responses if isinstance(r, Response)]
            usage = {k: sum(int(u.get(k) or 0) for u in found) for k in ("prompt_tokens", "completion_tokens")}
            cached = any(usage.values())
            tracker = dspy.settings.usage_tracker
            if cached and tracker is not None:
                tracker.add_usage(self.model, usage)
        if self.meter is not None:
            self.meter.add(usage, entry.get("cost"), cached)


_GUARDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # program -> _guarded(program)


def _guarded(program: dspy.Module) -> bool:
    """Whether every LM the program calls is a GuardedLM (which honours `calls.gated`); an
    object that only quacks like a program (no predictors) cannot say, so it is not."""
    found = _GUARDED.get(program)
    if found is None:
        predictors = getattr(program, "predictors", None)
        lms = [p.lm or dspy.settings.lm for p in predictors()] if predictors else []
        found = _GUARDED[program] = bool(lms) and all(isinstance(lm, GuardedLM) for lm in lms)
    return found


async def run_program(program: dspy.Module, inputs: dict, policy: CallPolicy | None,
                      on_retry: Callable[[], None] | None = None):
    """`program.acall(**inputs)` within `policy`'s limits (None: none). When every LM of the
    program is a GuardedLM the limits cover each LM request alone (`calls.gated`), not the prompt
    formatting and answer parsing around it; otherwise they cover the whole program call."""
    if policy is None:
        return await program.acall(**inputs)
    tokens = estimate_tokens(inputs)
    if _guarded(program):
        with gated(policy, tokens, on_retry):
            return await program.acall(**inputs)
    return await policy.run(lambda: program.acall(**inputs), tokens=tokens, on_retry=on_retry)


class GuardedCache(Cache):
    """DSPy's response cache, refusing replies that carry no answer: a resend must reach the
    server, not read back the fault (and an old cache holding one is ignored for that entry)."""

    def get(self, request, ignored_args_for_cache_key=None):
        value = super().get(request, ignored_args_for_cache_key)
        return None if _holds_no_answer(value) else value

    def put(self, request, value, ignored_args_for_cache_key=None, enable_memory_cache=True) -> None:
        if not _holds_no_answer(value):
            super().put(request, value, ignored_args_for_cache_key, enable_memory_cache)


def _holds_no_answer(value) -> bool:
    if not isinstance(value, dict):
        return False
    return any(no_answer(SimpleNamespace(provider_data=r.get("provider_data")))
               for r in value.get("responses") or () if isinstance(r, dict))


def make_lm(spec: LMSpec | str, seed: int = 0, api_base: str | None = None, *, cache: bool = True) -> dspy.LM:
    """Build the dspy.LM for `spec` (an LMSpec or a model string)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    if isinstance(spec, str):
        spec = LMSpec(model=spec, api_base=api_base)
    settings = {k: v for k, v in (("temperature", spec.temperature), ("max_tokens", spec.max_tokens)) if v is not None}
    if spec.model == OFFLINE:
        from .offline import AsyncOfflineEngine, OfflineEngine, MODEL
        engine = OfflineEngine(seed)
        return GuardedLM(MODEL, engine=engine, async_engine=AsyncOfflineEngine(engine), cache=False)
    if spec.model.startswith(HF_PREFIX):
        from .hf_engine import AsyncHFEngine, HFEngine
        path = spec.model[len(HF_PREFIX):]
        if not Path(path).is_dir() and (Path(path).is_absolute() or path.startswith(".") or path.count("/") != 1):
            raise ValueError(f"no model folder at {path} (hf:PATH takes a folder written by save_pretrained, "
                             "or a hub name where the hub can be reached)")
        engine = HFEngine(path, batch_size=spec.batch_size,
                          max_new_tokens=spec.max_tokens or 1024, temperature=spec.temperature, seed=seed)
        return GuardedLM(f"humanllm/{spec.model}", engine=engine, async_engine=AsyncHFEngine(engine), cache=cache)
    if spec.api_bases:
        from .router import AsyncRouterEngine, RouterEngine, make_router
        router = make_router(spec.model, spec.api_bases, spec.key(), spec.cooldown, spec.allowed_fails)
        return GuardedLM(spec.model, engine=RouterEngine(router), async_engine=AsyncRouterEngine(router),
                         cache=cache, num_retries=0, **settings)
    if speaks_chat_completions(spec.model, spec.api_base):
        if spec.api_key_env:
            spec.key()  # a named variable that is not set is an error here, not a 401 later
        where = (spec.api_base, spec.api_key_env, dialect(spec.model))
        return GuardedLM(spec.model, engine=EndpointEngine(*where), async_engine=AsyncEndpointEngine(*where),
                         cache=cache, num_retries=0, **settings)
    client = {}
    if spec.api_base:
        client["api_base"] = spec.api_base
    if spec.api_key_env:
        client["api_key"] = spec.key()
    # Retries are CallPolicy's (with jitter and limits shared across programs), not dspy's.
    return GuardedLM(spec.model, cache=cache, num_retries=0, **client, **settings)


def configure_cache(folder, enabled: bool) -> None:
    """Put DSPy's response cache in `folder` (or turn it off)."""
    if enabled:
        dspy.configure_cache(enable_disk_cache=True, enable_memory_cache=True, disk_cache_dir=str(folder))
        dspy.cache.__class__ = GuardedCache  # DSPy builds its own Cache; this only adds the answer check
    else:
        dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
