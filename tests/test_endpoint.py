"""A self-hosted OpenAI-compatible server through the project's own engine (runtime/endpoint.py),
grouped fsyncs of the work files (runtime/store.py), and the slots-versus-calls bound."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dspy.utils.exceptions import LMAuthError, LMProviderError, LMRateLimitError, LMServerError, LMTimeoutError

from humanllm_dsl.runtime.backends import LMSpec, make_lm
from humanllm_dsl.runtime.calls import CallPolicy, Limits, is_transient, retry_after
from humanllm_dsl.runtime.endpoint import AsyncEndpointEngine, speaks_chat_completions
from humanllm_dsl.runtime.store import JsonlStore

MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Say hi."}]


class Recorder(ThreadingHTTPServer):
    """Answers every POST with `self.reply` (status, headers, body) and keeps what it was sent."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, dict, dict]] = []
        self.reply = (200, {}, _completion("hi there"))
        self.replies: list[tuple] = []  # answered first, one request each, before `reply`
        self.hang, self.release = 0.0, threading.Event()  # seconds each answer waits (unless released)
        self.drops, self.chunked = 0, False  # connections to close unanswered; answer in chunks
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.server.release.wait(self.server.hang)
        if self.server.drops > 0:  # hang up without a word
            self.server.drops -= 1
            self.close_connection = True
            return
        status, headers, payload = self.server.replies.pop(0) if self.server.replies else self.server.reply
        if self.server.chunked:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for k in range(0, len(data), 7):
                piece = data[k:k + 7]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html" if isinstance(payload, bytes) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _completion(text: str) -> dict:
    return {"id": "c1", "object": "chat.completion", "created": 0, "model": "served-name",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}


@pytest.fixture
def server():
    s = Recorder()
    yield s
    s.release.set()
    s.shutdown()
    s.server_close()


def test_only_a_self_hosted_chat_completions_server_takes_the_endpoint_engine():
    assert speaks_chat_completions("openai/qwen", "http://127.0.0.1:8000/v1")
    assert speaks_chat_completions("hosted_vllm/qwen", "http://gpu-node:8000/v1")
    assert not speaks_chat_completions("openai/gpt-4o-mini", None)  # a hosted provider keeps dspy's route (prices)
    assert not speaks_chat_completions("anthropic/claude-sonnet", "http://127.0.0.1:8000")
    assert not isinstance(make_lm(LMSpec("openai/gpt-4o-mini"))._async_engine_spec, AsyncEndpointEngine)


def test_the_server_gets_its_own_model_name_the_key_and_the_settings(server, monkeypatch):
    monkeypatch.setenv("MY_SERVER_KEY", "s3cret-value")
    lm = make_lm(LMSpec("openai/org/model-7b", api_base=server.url, api_key_env="MY_SERVER_KEY",
                        temperature=0.3, max_tokens=50), cache=False)
    assert isinstance(lm._async_engine_spec, AsyncEndpointEngine)
    assert lm(messages=MESSAGES) == ["hi there"]
    assert asyncio.run(lm.acall(messages=MESSAGES)) == ["hi there"]
    assert len(server.seen) == 2
    for path, headers, body in server.seen:
        assert path == "/v1/chat/completions"
        assert headers["authorization"] == "Bearer s3cret-value"
        assert body["model"] == "org/model-7b"  # the provider prefix is ours, not the server's
        assert body["temperature"] == 0.3, body
        assert 50 in (body.get("max_tokens"), body.get("max_completion_tokens")), body
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "s3cret-value" not in json.dumps(lm.dump_state(), default=str)


def test_a_server_without_a_key_gets_a_placeholder(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    lm = make_lm(LMSpec("openai/m", api_base=server.url), cache=False)
    assert lm(messages=MESSAGES) == ["hi there"]
    assert server.seen[0][1]["authorization"] == "Bearer EMPTY"


@pytest.mark.parametrize("status, headers, payload, error, transient", [
    (429, {"Retry-After": "0.25"}, {"error": {"message": "slow down", "type": "rate_limit_error"}},
     LMRateLimitError, True),
    (500, {}, {"error": {"message": "boom", "type": "server_error"}}, LMServerError, True),
    (200, {}, b"<html><body>502 Bad Gateway</body></html>", LMProviderError, True),  # a proxy's page
    (401, {}, {"error": {"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}},
     LMAuthError, False),
])
def test_server_errors_keep_their_meaning_for_the_call_policy(server, status, headers, payload, error, transient):
    server.reply = (status, headers, payload)
    lm = make_lm(LMSpec("openai/m", api_base=server.url), cache=False)
    with pytest.raises(error) as caught:
        asyncio.run(lm.acall(messages=MESSAGES))
    assert is_transient(caught.value) is transient, repr(caught.value)
    if status == 429:
        assert retry_after(caught.value) == pytest.approx(0.25)


def test_the_policy_resends_a_rate_limited_call_through_the_engine(server):
    server.replies = [(429, {"Retry-After": "0"}, {"error": {"message": "slow down", "type": "rate_limit_error"}})]
    server.reply = (200, {}, _completion("second time"))
    lm = make_lm(LMSpec("openai/m", api_base=server.url), cache=False)
    policy = CallPolicy(Limits(max_retries=3, backoff=0))
    assert asyncio.run(policy.run(lambda: lm.acall(messages=MESSAGES))) == ["second time"]
    assert policy.transient_retries == 1 and len(server.seen) == 2


# -- grouped fsyncs --------------------------------------------------------------------------
def test_commits_group_their_fsyncs_and_each_returns_once_its_line_is_synced(tmp_path, monkeypatch):
    store = JsonlStore(tmp_path / "rows.jsonl", durable=True)
    synced_lines: list[int] = []
    real = os.fsync

    def slow_fsync(fd):
        synced_lines.append((tmp_path / "rows.jsonl").read_text().count("\n"))  # what this fsync covers
        threading.Event().wait(0.02)
        real(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)

    async def one(k):
        await asyncio.sleep(k * 0.001)
        await store.commit({"id": f"r{k}", "k": k})
        # this line is on disk: an fsync that started after it was written has finished
        line = [json.loads(x)["k"] for x in (tmp_path / "rows.jsonl").read_text().splitlines()].index(k) + 1
        assert max(synced_lines) >= line

    async def run():
        await asyncio.gather(*(one(k) for k in range(40)))

    asyncio.run(run())
    assert sorted(store.items) == sorted(f"r{k}" for k in range(40))
    assert 1 <= len(synced_lines) < 40  # grouped: fewer fsyncs than lines
    assert synced_lines[-1] == 40


def test_a_failed_fsync_fails_every_commit_waiting_on_it_and_the_next_commit_syncs_again(tmp_path, monkeypatch):
    store = JsonlStore(tmp_path / "rows.jsonl", durable=True)
    calls = []

    def failing_once(fd):
        calls.append(fd)
        threading.Event().wait(0.02)
        if len(calls) == 1:
            raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", failing_once)

    async def run():
        results = await asyncio.gather(*(store.commit({"id": f"r{k}"}) for k in range(5)), return_exceptions=True)
        assert all(isinstance(r, OSError) and r.errno == errno.EIO for r in results)
        await store.commit({"id": "after"})

    asyncio.run(run())
    assert len(calls) == 2


def test_an_lm_on_the_endpoint_engine_saves_and_loads_without_its_key(server, monkeypatch):
    import dspy

    monkeypatch.setenv("MY_SERVER_KEY", "s3cret-value")
    lm = make_lm(LMSpec("openai/m", api_base=server.url, api_key_env="MY_SERVER_KEY"), cache=False)
    state = lm.dump_state()
    assert "s3cret-value" not in json.dumps(state, default=str)
    loaded = dspy.LM.load_state(json.loads(json.dumps(state, default=str)), allow_custom_lm_class=True)
    assert loaded(messages=MESSAGES) == ["hi there"]
    assert server.seen[-1][1]["authorization"] == "Bearer s3cret-value"  # read again from the variable


class _Counting:
    """Wraps a FakeOpenAIServer's handler to record the most requests it held at once."""

    def __init__(self, server):
        self.now = self.most = 0
        handle = server._handle

        async def counted(*args):
            self.now += 1
            self.most = max(self.most, self.now)
            try:
                return await handle(*args)
            finally:
                self.now -= 1

        server._handle = counted


def test_more_slots_than_calls_yet_never_more_calls_in_flight_than_the_concurrency(spec, tmp_path, monkeypatch):
    from humanllm_dsl.cli import main
    from humanllm_dsl.testing import FakeOpenAIServer

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeOpenAIServer(latency=0.05, seed=3) as server:
        counting = _Counting(server)
        out = tmp_path / "out"
        assert main(["compile", str(spec), "-o", str(out), "--no-progress", "--lm", "openai/fake", "--api-base",
                     server.base_url, "--scenarios", "12", "--concurrency", "3"]) == 0
    assert counting.most == 3  # reached, never passed
    assert len((out / "records.jsonl").read_text().splitlines()) == 12


def test_a_proxy_the_environment_names_is_still_used(server, monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{server.server_address[1]}")
    lm = make_lm(LMSpec("openai/m", api_base="http://llm-node.invalid:8000/v1"), cache=False)
    assert asyncio.run(lm.acall(messages=MESSAGES)) == ["hi there"]
    assert server.seen[-1][0] == "http://llm-node.invalid:8000/v1/chat/completions"  # sent to the proxy


@pytest.mark.parametrize("model", ["openai/org/m", "hosted_vllm/m"])
def test_the_engine_sends_what_dspys_own_route_sends(server, monkeypatch, model):
    from humanllm_dsl.runtime.backends import GuardedLM

    monkeypatch.setenv("OPENAI_API_KEY", "sk-same")
    ours = make_lm(LMSpec(model, api_base=server.url, temperature=0.4, max_tokens=64), cache=False)
    theirs = GuardedLM(model, api_base=server.url, api_key="sk-same", cache=False, num_retries=0,
                       temperature=0.4, max_tokens=64)
    assert ours(messages=MESSAGES) == theirs(messages=MESSAGES) == ["hi there"]
    (_, ours_headers, ours_body), (_, theirs_headers, theirs_body) = server.seen
    assert ours_body == theirs_body
    assert ours_headers["authorization"] == theirs_headers["authorization"]


def test_a_call_that_hangs_past_the_timeout_is_abandoned_and_sent_again():
    policy = CallPolicy(Limits(timeout=0.05, max_retries=2, backoff=0))
    tries = []

    async def call():
        tries.append(1)
        if len(tries) == 1:
            await asyncio.sleep(10)  # hangs: the policy gives up on it
        return "answer"

    async def run():
        start = asyncio.get_running_loop().time()
        out = await policy.run(call)
        return out, asyncio.get_running_loop().time() - start

    out, took = asyncio.run(run())
    assert out == "answer" and len(tries) == 2 and took < 5
    assert policy.transient_retries == 1 and policy.in_flight == 0


def test_inside_gated_an_lm_call_goes_through_the_callers_policy_and_counts_its_retries(server):
    from humanllm_dsl.runtime.calls import gated

    server.replies = [(503, {}, {"error": {"message": "busy", "type": "server_error"}})]
    server.reply = (200, {}, _completion("after a retry"))
    server.hang = 0.2  # each answer waits, so the call is seen in flight
    lm = make_lm(LMSpec("openai/m", api_base=server.url), cache=False)
    policy, retries = CallPolicy(Limits(concurrency=1, max_retries=3, backoff=0)), []
    seen_in_flight = []

    async def run():
        async def watch():
            while not server.seen:
                await asyncio.sleep(0.01)
            seen_in_flight.append(policy.in_flight)
        watching = asyncio.create_task(watch())
        with gated(policy, tokens=10, on_retry=lambda: retries.append(1)):
            out = await lm.acall(messages=MESSAGES)
        await watching
        return out

    assert asyncio.run(run()) == ["after a retry"]
    assert retries == [1] and policy.transient_retries == 1
    assert seen_in_flight == [1] and policy.in_flight == 0


def test_an_async_request_to_a_server_that_never_answers_ends_at_the_engines_deadline(server, monkeypatch):
    from humanllm_dsl.runtime import endpoint

    monkeypatch.setattr(endpoint, "REQUEST_TIMEOUT", 0.3)
    server.hang = 30
    lm = make_lm(LMSpec("openai/m", api_base=server.url), cache=False)

    async def run():
        start = asyncio.get_running_loop().time()
        with pytest.raises(LMTimeoutError) as caught:
            await lm.acall(messages=MESSAGES)
        return caught.value, asyncio.get_running_loop().time() - start

    exc, took = asyncio.run(run())
    assert took < 5 and is_transient(exc) and "no answer within 0.3 s" in str(exc), repr(exc)


def test_a_dropped_connection_is_resent_and_a_chunked_answer_is_read(server):
    server.drops, server.chunked = 2, True
    lm = make_lm(LMSpec("openai/m", api_base=server.url), cache=False)
    policy = CallPolicy(Limits(max_retries=3, backoff=0))
    assert asyncio.run(policy.run(lambda: lm.acall(messages=MESSAGES))) == ["hi there"]
    assert policy.transient_retries == 2 and len(server.seen) == 3
