"""A local OpenAI-compatible chat-completions server for tests and benchmarks.

It answers like the offline engine (so DSPy programs get well-formed answers), after a fixed
latency, and injects faults at the rates you give it: 429 with Retry-After, 500, a hang past
the client's timeout, truncated output (finish_reason "length"), malformed field markers,
empty content, and 200s that carry no answer (an HTML page, `choices: []`, `content: null`). It runs an asyncio loop in a background thread and binds 127.0.0.1 only.

    with FakeOpenAIServer(latency=0.2, faults=Faults(rate_limit=0.1)) as server:
        lm = dspy.LM("openai/fake", api_base=server.base_url, api_key="test")
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace

import attrs

from ..runtime.offline import OfflineEngine

FAULT_KINDS = ("rate_limit", "server_error", "timeout", "truncated", "malformed", "empty",
               "html_200", "empty_choices", "null_content")


@attrs.frozen
class Faults:
    """Probability of each fault per request (at most one fault per request)."""

    rate_limit: float = 0.0
    server_error: float = 0.0
    timeout: float = 0.0
    truncated: float = 0.0
    malformed: float = 0.0
    empty: float = 0.0
    html_200: float = 0.0  # a 200 whose body is an HTML page (a proxy's error page)
    empty_choices: float = 0.0  # a 200 with `choices: []`
    null_content: float = 0.0  # a 200 whose message content is null
    retry_after: float = 0.05  # seconds, sent with every 429
    hang: float = 30.0  # how long a `timeout` fault holds the request

    def draw(self, rng: random.Random) -> str | None:
        x = rng.random()
        for kind in FAULT_KINDS:
            x -= getattr(self, kind)
            if x < 0:
                return kind
        return None


class FakeOpenAIServer:
    def __init__(self, latency: float = 0.0, faults: Faults = Faults(), seed: int = 0, port: int = 0,
                 transform: Callable[[dict, str], tuple[str, str]] | None = None):
        """`transform(request, answer) -> (text, finish_reason)` rewrites each fault-free answer
        (see testing/deviations.py: what real models write instead of the exact format)."""
        self.latency, self.faults, self.port, self.transform = latency, faults, port, transform
        self.engine = OfflineEngine(seed)
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()  # "ok" and each fault kind
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> int:
        return sum(self.counts.values())

    # -- lifecycle
    def start(self) -> "FakeOpenAIServer":
        self._thread = threading.Thread(target=self._run, name="fake-openai", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the fake OpenAI server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def __enter__(self) -> "FakeOpenAIServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        self._server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port, backlog=1024))
        self.port = self._server.sockets[0].getsockname()[1]
        self._started.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    # -- HTTP/1.1 with keep-alive, just enough for JSON POSTs
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                status, extra, payload = await self._handle(method, path, body)
                raw = isinstance(payload, bytes)
                data = payload if raw else json.dumps(payload).encode("utf-8")
                head_out = [f"HTTP/1.1 {status}", f"Content-Type: {'text/html' if raw else 'application/json'}",
                            f"Content-Length: {len(data)}", "Connection: keep-alive", *extra]
                writer.write(("\r\n".join(head_out) + "\r\n\r\n").encode("latin-1") + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass  # the client went away, or the server is stopping
        finally:
            writer.close()

    async def _handle(self, method: str, path: str, body: bytes) -> tuple[str, list[str], dict | bytes]:
        if method != "POST" or not path.endswith("/chat/completions"):
            return "404 Not Found", [], {"error": {"message": f"no route {method} {path}", "type": "not_found"}}
        request = json.loads(body)
        fault = self.faults.draw(self.rng)
        self.counts[fault or "ok"] += 1
        if fault == "timeout":
            await asyncio.sleep(self.faults.hang)
        elif self.latency:
            await asyncio.sleep(self.latency)
        if fault == "rate_limit":
            return ("429 Too Many Requests", [f"Retry-After: {self.faults.retry_after:g}"],
                    {"error": {"message": "rate limited, slow down", "type": "rate_limit_error", "code": "rate_limit_exceeded"}})
        if fault == "server_error":
            return "500 Internal Server Error", [], {"error": {"message": "the server had an error", "type": "server_error"}}
        if fault == "html_200":
            return "200 OK", [], b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        text = self._answer(request)
        finish = "stop"
        if fault is None and self.transform is not None:
            text, finish = self.transform(request, text)
        if fault == "truncated":
            text, finish = text[: len(text) // 2], "length"
        elif fault == "malformed":
            text = text.replace("[[ ## ", "[[ #").replace(" ## ]]", " # ]]")
        elif fault == "empty":
            text = ""
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in request.get("messages", [])) // 4
        completion_tokens = len(text) // 4
        choices = [{"index": 0, "message": {"role": "assistant", "content": None if fault == "null_content" else text},
                    "finish_reason": finish}]
        return "200 OK", [], {
            "id": f"chatcmpl-{self.requests}", "object": "chat.completion", "created": 0,
            "model": request.get("model", "fake"),
            "choices": [] if fault == "empty_choices" else choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}

    def _answer(self, request: dict) -> str:
        def text(content) -> str:
            if isinstance(content, list):
                return "".join(part.get("text", "") for part in content if isinstance(part, dict))
            return content or ""

        messages = request.get("messages", [])
        system = "\n".join(text(m["content"]) for m in messages if m.get("role") in ("system", "developer"))
        turns = [SimpleNamespace(role=m["role"], text=text(m.get("content")), parts=[])
                 for m in messages if m.get("role") not in ("system", "developer")]
        response = self.engine.complete(SimpleNamespace(system=system, messages=turns))
        return "".join(part.text for part in response.message.parts)


def main(argv=None) -> None:
    """`python -m humanllm_dsl.testing --port 8000 --latency 0.2`: serve until killed."""
    import argparse

    from .serve import serve_until_killed

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--seed", type=int, default=0)
    for kind in FAULT_KINDS:
        parser.add_argument(f"--{kind.replace('_', '-')}", type=float, default=0.0, metavar="P",
                            help=f"probability of a `{kind}` fault per request")
    args = parser.parse_args(argv)
    faults = Faults(**{kind: getattr(args, kind) for kind in FAULT_KINDS})
    serve_until_killed(FakeOpenAIServer(latency=args.latency, faults=faults, seed=args.seed, port=args.port))


if __name__ == "__main__":
    main()
