"""The one LM-call layer: 200s without an answer are transport faults, resent like a 502 (never a
spent answer attempt, never cached); an answer read back from the cache keeps its tokens."""

import json

import pytest

from humanllm_dsl.cli import main
from humanllm_dsl.runtime.backends import NoAnswer
from humanllm_dsl.runtime.calls import CallPolicy, Limits, is_transient
from humanllm_dsl.testing import FakeOpenAIServer, Faults
from libgen import read_jsonl


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")


def compile_args(spec, out, server, *extra):
    return ["compile", str(spec), "-o", str(out), "--no-progress", "--lm", "openai/fake", "--api-base",
            server.base_url, *extra]


@pytest.mark.parametrize("kind", ["html_200", "empty_choices", "null_content"])
def test_a_200_without_an_answer_is_resent_like_a_502(spec, tmp_path, kind):
    out = tmp_path / kind
    with FakeOpenAIServer(faults=Faults(**{kind: 0.3}), seed=11) as server:
        assert main(compile_args(spec, out, server, "--scenarios", "6")) == 0
        faults = server.counts[kind]
    assert faults >= 3
    assert not read_jsonl(out / "failures.jsonl")  # no answer attempt was spent on them
    assert len(read_jsonl(out / "records.jsonl")) == 6
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["retries"] == 0 and manifest["transient_retries"] >= faults


def test_no_answer_errors_are_transient_and_client_errors_are_not():
    from dspy.utils.exceptions import LMInvalidRequestError, LMProviderError

    assert is_transient(NoAnswer("x"))
    assert is_transient(LMProviderError("the reply (HTTP 200, text/html) is not JSON", status=200))
    assert is_transient(LMProviderError("bad gateway", status=502))
    assert not is_transient(LMProviderError("forbidden", status=403))
    assert not is_transient(LMInvalidRequestError("bad request", status=400))
    assert not is_transient(ValueError("could not parse"))


def test_run_sync_retries_transport_faults_from_threads_and_keeps_the_limit():
    import threading
    import time

    policy = CallPolicy(Limits(concurrency=2, backoff=0.001, max_retries=3))
    lock, state = threading.Lock(), {"in": 0, "peak": 0, "calls": 0}

    def call():
        with lock:
            state["in"] += 1
            state["calls"] += 1
            state["peak"] = max(state["peak"], state["in"])
            fail = state["calls"] % 3 == 0
        time.sleep(0.01)
        with lock:
            state["in"] -= 1
        if fail:
            raise NoAnswer("choices: []")
        return "ok"

    from concurrent.futures import ThreadPoolExecutor
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: policy.run_sync(call), range(12)))
    finally:
        policy.close()
    assert results == ["ok"] * 12
    assert state["peak"] <= 2 and policy.transient_retries == state["calls"] - 12 > 0


def test_run_sync_gives_up_after_max_retries_with_the_last_error():
    policy = CallPolicy(Limits(backoff=0.001, max_retries=2))
    calls = []

    def call():
        calls.append(1)
        raise NoAnswer("content: null")

    try:
        with pytest.raises(NoAnswer):
            policy.run_sync(call)
    finally:
        policy.close()
    assert len(calls) == 3


def test_token_totals_survive_a_crash_whose_answers_come_back_from_the_cache(spec, tmp_path):
    """A crash after an answer was cached but before its stage was written: the resumed run reads
    the answer from the cache, and the manifest's totals equal an uninterrupted run's."""
    with FakeOpenAIServer(seed=2) as server:
        reference = tmp_path / "ref"
        assert main(compile_args(spec, reference, server, "--scenarios", "5")) == 0
        crashed = tmp_path / "crashed"
        assert main(compile_args(spec, crashed, server, "--scenarios", "5")) == 0
        for stage in ("conversations", "checklists"):  # the crash: finished work lost, the cache kept
            path = crashed / "work" / f"{stage}.jsonl"
            lines = path.read_text("utf-8").splitlines(keepends=True)
            path.write_text("".join(lines[:2]), encoding="utf-8")
        before = server.requests
        assert main(compile_args(spec, crashed, server, "--scenarios", "5")) == 0
        assert server.requests == before  # every answer came from the cache
    ref, got = (json.loads((f / "manifest.json").read_text()) for f in (reference, crashed))
    assert ref["prompt_tokens"] > 0 and ref["completion_tokens"] > 0
    assert (got["prompt_tokens"], got["completion_tokens"], got["lm_calls"]) == \
        (ref["prompt_tokens"], ref["completion_tokens"], ref["lm_calls"])


def test_progress_logs_on_schedule_while_nothing_finishes(monkeypatch, capsys):
    import time

    from humanllm_dsl.runtime import progress as P

    monkeypatch.setattr(P, "LOG_EVERY", 0.2)
    bar = P.Progress(("rollouts", "judge"), {"rollouts": 4, "judge": 12}, {"rollouts": 1, "judge": 0}, mode="log")
    with bar:
        time.sleep(0.75)  # a stall: nothing finishes
    lines = capsys.readouterr().err.splitlines()
    assert 3 <= len(lines) <= 4, lines
    assert all("rollouts 1/4, judge 0/12" in line for line in lines)
    stamps = [float(line[1:line.index("s]")]) for line in lines]
    assert stamps == sorted(stamps)
    time.sleep(0.3)
    assert capsys.readouterr().err == ""  # the timer stops with the display
