"""What the project's own dspy engines (offline, `hf:`) share: reading lm15 request text,
building an lm15 Response, and the parts of the engine protocol that only delegate.

A dspy custom engine implements `complete(request) -> Response` (and `stream`); its async twin
awaits the same. Subclasses keep their own names, because dspy saves an engine by class path.
"""

from __future__ import annotations

from dspy.lm15 import Message, Response, TextPart, Usage


def text_of(content) -> str:
    """The text of a message's content: a string, or a sequence of parts with `.text`."""
    if content is None:
        return ""
    return content if isinstance(content, str) else "".join(getattr(p, "text", "") or "" for p in content)


def message_text(message) -> str:
    text = getattr(message, "text", None)
    return text if isinstance(text, str) else text_of(message.parts)


def response(model: str, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int) -> Response:
    return Response(id=None, model=model, message=Message.assistant([TextPart(text)]), finish_reason=finish_reason,
                    usage=Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens,
                                total_tokens=prompt_tokens + completion_tokens))


class Engine:
    """`stream` as one event burst of `complete`, and nothing to close."""

    def complete(self, request) -> Response:
        raise NotImplementedError

    def stream(self, request):
        from dspy.lm15 import response_to_events
        return response_to_events(self.complete(request))

    def close(self) -> None:
        pass


class AsyncEngine:
    """The async twin of an Engine: by default it runs the sync `complete` (fast, in-process)."""

    def __init__(self, sync: Engine):
        self.sync = sync

    async def complete(self, request) -> Response:
        return self.sync.complete(request)

    async def stream(self, request):
        for event in self.sync.stream(request):
            yield event

    async def aclose(self) -> None:
        pass
