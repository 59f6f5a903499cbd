"""eval and optimize call LMs through the one call layer: transport faults are resent by the
policy (never a failed verdict set, never "your previous answer was rejected"), answers are cached
inside the output folder (or not at all), and usage is accounted in results.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from humanllm_dsl.cli import main
from humanllm_dsl.testing import FakeOpenAIServer, Faults

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    from humanllm_dsl.compiler.loader import check_paths
    from humanllm_dsl.runtime.compile import CompileOptions, compile_dataset

    out = tmp_path_factory.mktemp("pilot")
    result = check_paths([str(ROOT / "specs")])
    assert not result.errors
    compile_dataset(result.library, CompileOptions(out=out, progress=None))
    return out


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text("utf-8").splitlines() if x.strip()]


def eval_args(build, out, server, *extra):
    return ["eval", str(build), "--model", "reference", "--judge", "openai/fake", "--judge-api-base",
            server.base_url, "-o", str(out), "--no-progress", "--no-report", "--no-holistic", "--runs", "1",
            "--limit", "4", *extra]


def prompts_of(server) -> list[str]:
    """Every request's message text, recorded as the server answers."""
    seen: list[str] = []
    answer = server._answer

    def recording(request):
        seen.append(json.dumps(request.get("messages")))
        return answer(request)

    server._answer = recording
    return seen


def test_a_429_and_no_answer_storm_fails_no_verdict_set_and_adds_no_feedback(build, tmp_path):
    faults = Faults(rate_limit=0.2, html_200=0.05, empty_choices=0.05, null_content=0.05, retry_after=0.01)
    with FakeOpenAIServer(faults=faults, seed=4) as server:
        seen = prompts_of(server)
        assert main(eval_args(build, tmp_path / "ev", server, "--concurrency", "4", "--limit", "10")) == 0
        counts = dict(server.counts)
    assert counts.get("rate_limit", 0) >= 2 and sum(counts.get(k, 0) for k in ("html_200", "empty_choices",
                                                                                "null_content")) >= 2, counts
    verdicts = lines(tmp_path / "ev" / "verdicts.jsonl")
    assert len(verdicts) == 10 and all(v["status"] == "ok" and v["attempts"] == 1 for v in verdicts)
    assert not any("Your previous answer was rejected" in p for p in seen)
    results = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert results["judge"]["failed"] == 0
    usage = results["usage"]
    assert usage["calls"] >= 10 and usage["prompt_tokens"] > 0 and usage["transient_retries"] >= 4


def test_a_fault_that_outlasts_the_resends_fails_at_once_without_feedback(build, tmp_path):
    with FakeOpenAIServer(faults=Faults(server_error=1.0)) as server:
        seen = prompts_of(server)
        rc = main(eval_args(build, tmp_path / "ev", server, "--limit", "1"))
    assert rc == 0
    verdict, = lines(tmp_path / "ev" / "verdicts.jsonl")
    assert verdict["status"] == "failed" and verdict["attempts"] == 1 and "LM call failed" in verdict["reason"]
    assert not any("Your previous answer was rejected" in p for p in seen)


def test_answers_are_cached_inside_the_output_folder_and_no_cache_asks_afresh(build, tmp_path):
    with FakeOpenAIServer() as server:
        assert main(eval_args(build, tmp_path / "a", server)) == 0
        first = server.requests
        assert first >= 4 and (tmp_path / "a" / "cache").is_dir()
        # the same judging into a fresh folder with the cache of the first: no call is made
        assert main(eval_args(build, tmp_path / "b", server, "--cache-dir", str(tmp_path / "a" / "cache"))) == 0
        assert server.requests == first
        # --no-cache: a redeployed model under the same name is asked again, and nothing is stored
        assert main(eval_args(build, tmp_path / "c", server, "--no-cache")) == 0
        assert server.requests == 2 * first
        assert not (tmp_path / "c" / "cache").exists()
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert results["usage"]["cached"] == results["usage"]["calls"] >= 4  # read back, with their tokens
    assert results["usage"]["prompt_tokens"] > 0


@pytest.mark.parametrize("flag,value", [("--concurrency", "0"), ("--timeout", "0"), ("--rpm", "-1")])
def test_bad_call_options_are_usage_errors(build, tmp_path, capsys, flag, value):
    assert main(["eval", str(build), "--model", "offline", "-o", str(tmp_path / "x"), flag, value]) == 2
    assert flag in capsys.readouterr().err


def test_ipe_average_is_recorded_and_changes_only_ipe(build, tmp_path):
    base = ["eval", str(build), "--model", "offline", "--no-progress", "--no-report", "--runs", "1"]
    assert main([*base, "-o", str(tmp_path / "pooled")]) == 0
    assert main([*base, "-o", str(tmp_path / "pattern"), "--ipe-average", "pattern"]) == 0
    pooled, pattern = (json.loads((tmp_path / n / "results.json").read_text()) for n in ("pooled", "pattern"))
    assert pooled["ipe_average"] == "pooled" and pattern["ipe_average"] == "pattern"
    assert pooled["MPD"] == pattern["MPD"]
    assert pooled["IPE"]["n"] == pattern["IPE"]["n"] > 0
