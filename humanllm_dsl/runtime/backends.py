"""Which LM answers a program: `offline`, `hf:PATH` (a local transformers model), or any model
string `dspy.LM` accepts (OpenAI-compatible servers, vLLM, Ollama, hosted providers).

Keys come only from the environment (or from the variable an `api_key_env` names); they are
never written anywhere. Every LM made here treats a truncated answer (finish_reason "length")
as a failure, so an incomplete text never passes as a finished one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import attrs
import dspy

from .calls import TruncatedOutput

OFFLINE = "offline"

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
    """

    model: str = OFFLINE
    api_base: str | None = None
    api_key_env: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    batch_size: int = 8

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


class GuardedLM(dspy.LM):
    """A dspy.LM that raises TruncatedOutput when a program's answer stopped at the token limit.

    Calls made with an explicit `dspy.lm15.Request` get the Response, whose `finish_reason`
    the caller reads itself; those are not checked here. `keep_history = False` stops DSPy's
    history of calls (up to 10,000 prompts and answers held in memory) for long runs.
    """

    keep_history = True

    def update_history(self, entry):
        if entry.get("request") is not None:
            return super().update_history(entry)
        responses = entry.get("response")
        for response in responses if isinstance(responses, (list, tuple)) else [responses]:
            if getattr(response, "finish_reason", None) == "length":
                raise TruncatedOutput("the answer was cut off at the token limit (finish_reason=length)")
        cost, tracker = entry.get("cost"), dspy.settings.usage_tracker
        if cost and tracker is not None:  # DSPy tracks tokens per call, not the price: add it
            tracker.add_usage(self.model, {"cost": float(cost)})
        if self.keep_history:
            super().update_history(entry)


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
    else:
        dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
