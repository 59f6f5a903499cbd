"""Many endpoints of one model (`api_bases` in an LM config): calls spread over them through
LiteLLM's Router, which keeps failing endpoints out for a cool-down and sends the calls to the
others. The Router sits under dspy.LM as a custom engine, so DSPy's cache, adapters and usage
accounting are unchanged; a call that fails is resent by the CallPolicy and the Router picks
an endpoint again (a cooled-down one is skipped).
"""

from __future__ import annotations

from dspy.clients.engines.litellm_engine import _LiteLLMConfig
from dspy.clients.engines.litellm_errors import litellm_errors


def make_router(model: str, api_bases, api_key: str | None, cooldown: float, allowed_fails: int):
    """A Router with one deployment per endpoint, all answering to the LM's model string."""
    from litellm import Router

    params = {"api_key": api_key} if api_key else {}
    deployments = [{"model_name": model, "litellm_params": {"model": model, "api_base": base, **params},
                    "model_info": {"id": f"endpoint-{k}"}} for k, base in enumerate(api_bases)]
    return Router(model_list=deployments, routing_strategy="simple-shuffle", num_retries=0,
                  allowed_fails=allowed_fails, cooldown_time=cooldown, retry_after=0)


class _RouterConfig(_LiteLLMConfig):
    def __init__(self, router):
        super().__init__()
        self.router = router

    def _arguments(self, request, *, streaming=False):
        data = super()._arguments(request, streaming=streaming)
        data.pop("cache", None)  # the Router has no cache of its own to skip; DSPy's cache stays in front
        return data


class RouterEngine(_RouterConfig):
    """dspy engine: `complete(Request)` through `router.completion`."""

    def complete(self, request):
        data = self._arguments(request)
        with litellm_errors(model=request.model):
            raw = self.router.completion(**data)
        return self._response(raw, request)

    def stream(self, request):
        from dspy.lm15 import response_to_events
        return response_to_events(self.complete(request))

    def close(self) -> None:
        self._closed = True


class AsyncRouterEngine(_RouterConfig):
    """The async twin: `router.acompletion`."""

    async def complete(self, request):
        data = self._arguments(request)
        with litellm_errors(model=request.model):
            raw = await self.router.acompletion(**data)
        return self._response(raw, request)

    async def stream(self, request):
        from dspy.lm15 import response_to_events
        for event in response_to_events(await self.complete(request)):
            yield event

    async def aclose(self) -> None:
        self._closed = True
