"""LMs for evaluation: construction from a spec string and plain chat calls."""

from __future__ import annotations

import attrs

from ..runtime.stages import OFFLINE


class LMSpecError(Exception):
    """A model spec that cannot be turned into an LM (a malformed string, a missing folder)."""


def make_lm(spec: str, seed: int = 0, api_base: str | None = None, max_tokens: int | None = None):
    """A `dspy.LM` for a spec: `offline`, a dspy/litellm model string, or `hf:PATH`.

    Args:
        spec: the model spec.
        seed: the seed of the offline engine (and of local sampling).
        api_base: base URL of an OpenAI-compatible server, if any.
        max_tokens: the LM's default cap on an answer's tokens (None: the backend's default).
    """
    from ..runtime.backends import LMSpec, make_lm as build

    try:
        return build(LMSpec(model=spec, api_base=api_base, max_tokens=max_tokens), seed)
    except (ValueError, ImportError) as exc:
        raise LMSpecError(f"`{spec}`: {exc}") from None


THINK_TOKENS = 2048  # extra room per turn for a model that thinks before it answers


@attrs.frozen
class Reply:
    text: str  # as the model wrote it (a <think> block or a name prefix included)
    truncated: bool  # cut off at the token limit
    thinking: bool  # the model thought before answering (a <think> block or reasoning content)


def chat(lm, system: str, messages: list[dict], *, max_tokens: int | None = None,
         rollout_id: str | None = None, think_tokens: int = THINK_TOKENS) -> Reply:
    """One chat completion for `system` plus alternating user/assistant messages.

    A reply cut off at the token limit is kept and flagged (a role-play turn that runs long is
    still a turn): an explicit Request gets the Response, finish_reason included, and the
    project's LMs refuse truncated answers only for DSPy programs. `max_tokens` caps the visible
    turn: a thinking model cut off at it is asked again with `think_tokens` more, so its
    thinking does not eat the turn (pass `max_tokens + think_tokens` from the start once a model
    is known to think).

    Args:
        lm: a `dspy.LM`.
        system: the system prompt.
        messages: `{"role": "user"|"assistant", "content": str}` dicts, ending with a user message.
        max_tokens: a cap on the reply's tokens.
        rollout_id: distinct ids give distinct (uncached) samples of the same request.
        think_tokens: the extra room for a thinking model.
    """
    response = _send(lm, system, messages, max_tokens, rollout_id)
    thinking = _thinks(response)
    if thinking and response.finish_reason == "length" and max_tokens is not None and think_tokens:
        response = _send(lm, system, messages, max_tokens + think_tokens,
                         None if rollout_id is None else f"{rollout_id}/think")
    return Reply((response.text or "").strip(), response.finish_reason == "length", thinking)


def _send(lm, system: str, messages: list[dict], max_tokens: int | None, rollout_id: str | None):
    from dspy.lm15 import Config, Message, Request

    parts = tuple(Message.user(m["content"]) if m["role"] == "user" else Message.assistant(m["content"])
                  for m in messages)
    request = Request(model=lm.model, messages=parts, system=system, config=Config(max_tokens=max_tokens))
    kwargs = {"rollout_id": rollout_id} if rollout_id is not None else {}
    return lm(request, **kwargs)


def _thinks(response) -> bool:
    text = (response.text or "").lower()
    parts = getattr(getattr(response, "message", None), "parts", ()) or ()
    return "<think>" in text or "</think>" in text or any(type(p).__name__ == "ThinkingPart" for p in parts)
