"""Compile at scale: real-LM backends over HTTP with injected faults, per-program LMs, the call
policy, kill-and-resume, Ctrl-C, and shard-and-merge. Servers run on 127.0.0.1, started here."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from humanllm_dsl.cli import main
from humanllm_dsl.runtime.calls import CallPolicy, Limits, TokenBucket
from humanllm_dsl.runtime.lmconfig import ConfigError, load_config
from humanllm_dsl.testing import FakeOpenAIServer, Faults
from humanllm_dsl.runtime.stages import WORK_STAGES
from libgen import outputs, read_jsonl

SECRET = "sk-test-never-written-0123456789"


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def compile_args(spec, out, *extra):
    return ["compile", str(spec), "-o", str(out), "--no-progress", *extra]


# ---- faults ---------------------------------------------------------------------------
def test_faulty_server_run_completes_without_loss_or_duplicates(spec, tmp_path):
    faults = Faults(rate_limit=0.08, server_error=0.05, timeout=0.03, truncated=0.05, malformed=0.05, empty=0.05,
                    retry_after=0.05, hang=10)
    out = tmp_path / "b"
    with FakeOpenAIServer(latency=0.005, faults=faults, seed=3) as server:
        rc = main(compile_args(spec, out, "--lm", "openai/fake-model", "--api-base", server.base_url,
                               "--timeout", "0.5", "--concurrency", "16"))
        counts = dict(server.counts)
    assert rc == (3 if read_jsonl(out / "failures.jsonl") else 0)  # 3: finished with failures
    assert all(counts.get(kind, 0) > 0 for kind in ("rate_limit", "server_error", "timeout", "truncated",
                                                     "malformed", "empty")), counts
    plan = read_jsonl(out / "plan.jsonl")
    records = read_jsonl(out / "records.jsonl")
    failures = read_jsonl(out / "failures.jsonl")
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids))  # nothing duplicated
    assert {f["id"] for f in failures}.isdisjoint(ids)
    assert set(ids) | {f["id"] for f in failures} == {p["id"] for p in plan}  # nothing lost
    assert all(f["reason"] and f["stage"] in WORK_STAGES for f in failures)
    for stage in WORK_STAGES:
        lines = read_jsonl(out / "work" / f"{stage}.jsonl")
        assert len(lines) == len({row["id"] for row in lines})
    # bounded: at most max_attempts outputs x (1 + max_retries) sends for each of the 4 programs
    assert sum(counts.values()) <= len(plan) * 4 * 3 * 7
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["lm"] == "openai/fake-model" and manifest["offline"] is False
    assert manifest["failures"] == len(failures) and manifest["records"] == len(records)
    assert len(records) >= len(plan) // 2


def test_truncated_answers_are_failures_not_data(spec, tmp_path):
    out = tmp_path / "t"
    with FakeOpenAIServer(faults=Faults(truncated=1.0)) as server:
        assert main(compile_args(spec, out, "--lm", "openai/fake", "--api-base", server.base_url,
                                 "--scenarios", "3")) == 3  # finished with failures
    failures = read_jsonl(out / "failures.jsonl")
    assert len(failures) == 3 and not read_jsonl(out / "records.jsonl")
    assert all("finish_reason=length" in f["reason"] for f in failures)


def test_keys_never_reach_outputs_and_resume_makes_no_calls(spec, tmp_path):
    out = tmp_path / "k"
    with FakeOpenAIServer() as server:
        args = compile_args(spec, out, "--lm", "openai/fake", "--api-base", server.base_url, "--scenarios", "6")
        assert main(args) == 0
        first = server.requests
        assert first >= 6 * 4
        assert main(args) == 0
        assert server.requests == first  # finished work makes zero LM calls
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert (out / "cache").is_dir()  # the DSPy cache defaults to inside the output folder


def test_per_program_lms_from_config(spec, tmp_path):
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        config = tmp_path / "lm.toml"
        config.write_text(f'[lm]\nmodel = "openai/writer"\napi_base = "{a.base_url}"\n\n'
                          f'[programs.conversation]\nmodel = "openai/talker"\napi_base = "{b.base_url}"\n\n'
                          '[limits]\nconcurrency = 4\nrpm = 6000\n', encoding="utf-8")
        out = tmp_path / "c"
        assert main(compile_args(spec, out, "--lm-config", str(config), "--scenarios", "4")) == 0
        assert b.requests == 4 and a.requests == 4 * 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["programs"] == {"scenario": "openai/writer", "conversation": "openai/talker",
                                    "checklist": "openai/writer", "variation": "openai/writer"}


@pytest.mark.parametrize("text, message", [
    ('[lm]\nmodel = "x"\napi_key = "sk-1"\n', "environment only"),
    ('[programs.writer]\nmodel = "x"\n', "unknown program(s) writer"),
    ('[limits]\nconcurency = 3\n', "concurency"),
    ('[lm\nmodel = "x"\n', "not valid TOML"),
    ('[limits]\nconcurrency = 0\n', "`concurrency` must be >= 1, not 0"),
    ('[limits]\nrpm = "many"\n', "rpm"),
])
def test_bad_config_files_name_the_file_and_problem(tmp_path, text, message):
    path = tmp_path / "lm.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and message in str(err.value)


# ---- the call policy ------------------------------------------------------------------
def test_backoff_honours_retry_after_and_grows_with_jitter():
    from dspy.utils.exceptions import LMRateLimitError, LMServerError

    policy = CallPolicy(Limits(backoff=1.0, backoff_max=30.0), rng=random.Random(0))
    hinted = LMRateLimitError("slow down", retry_after=7.0)
    assert all(7.0 <= policy.delay(0, hinted) <= 7.7 for _ in range(50))
    plain = LMServerError("oops")
    delays = [policy.delay(4, plain) for _ in range(200)]
    assert max(delays) <= 16.0 and min(delays) >= 0.0 and len(set(delays)) > 100  # full jitter up to 2**4


def test_transient_errors_are_retried_and_others_are_not():
    import asyncio

    from dspy.utils.exceptions import LMRateLimitError

    policy = CallPolicy(Limits(max_retries=3, backoff=0.0, backoff_max=0.0))
    calls = []

    async def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise LMRateLimitError("busy", retry_after=0.0)
        return "ok"

    assert asyncio.run(policy.run(flaky)) == "ok" and len(calls) == 3 and policy.transient_retries == 2

    async def broken():
        calls.append(1)
        raise ValueError("not transient")

    calls.clear()
    with pytest.raises(ValueError):
        asyncio.run(policy.run(broken))
    assert len(calls) == 1


def test_token_bucket_spaces_requests(monkeypatch):
    import asyncio

    import humanllm_dsl.runtime.calls as calls

    clock = [0.0]
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(calls.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(calls.asyncio, "sleep", fake_sleep)

    async def take_all():
        bucket = TokenBucket(60)  # one a second, bursting to 60
        for _ in range(63):
            await bucket.take(1)

    asyncio.run(take_all())
    assert sum(slept) == pytest.approx(3.0)


# ---- kill, interrupt, resume ----------------------------------------------------------
def _compile_cmd(spec, out, *extra):
    return [sys.executable, "-m", "humanllm_dsl", "compile", str(spec), "-o", str(out), "--no-progress",
            "--scenarios", "240", *extra]


def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(spec, tmp_path):
    reference = tmp_path / "ref"
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    subprocess.run(_compile_cmd(spec, reference), check=True, env=env, capture_output=True)
    out = tmp_path / "killed"
    rng = random.Random(7)
    killed_with_partial_work = 0
    for _ in range(4):
        proc = subprocess.Popen(_compile_cmd(spec, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        scenarios = out / "work" / "scenarios.jsonl"
        while proc.poll() is None and not (scenarios.exists() and scenarios.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.6))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_with_partial_work += 1
        proc.wait()
    assert killed_with_partial_work >= 2
    subprocess.run(_compile_cmd(spec, out), check=True, env=env, capture_output=True)
    assert outputs(out) == outputs(reference)
    for stage in WORK_STAGES:
        ids = [row["id"] for row in read_jsonl(out / "work" / f"{stage}.jsonl")]
        assert len(ids) == len(set(ids)) == 240


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(spec, tmp_path):
    out = tmp_path / "int"
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    proc = subprocess.Popen(_compile_cmd(spec, out), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    scenarios = out / "work" / "scenarios.jsonl"
    deadline = time.monotonic() + 60
    while proc.poll() is None and not (scenarios.exists() and scenarios.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.fail("the run finished before Ctrl-C arrived; make the test run longer")
    assert proc.returncode == 130, err
    assert "Run the same command again to resume" in err and "Traceback" not in err
    work = [out / "work" / f"{stage}.jsonl" for stage in ("scenarios", "conversations", "checklists", "variations")]
    assert all(not path.exists() or path.read_bytes().endswith(b"\n") for path in work)  # no torn line
    kept = sum(len(read_jsonl(path)) for path in work)
    assert 0 < kept and not (out / "records.jsonl").exists()  # stopped before the end: no export
    assert main(["compile", str(spec), "-o", str(out), "--no-progress", "--scenarios", "240"]) == 0
    assert len(read_jsonl(out / "records.jsonl")) == 240


# ---- shards ----------------------------------------------------------------------------
def test_shards_merge_into_the_one_machine_output(spec, tmp_path):
    whole = tmp_path / "whole"
    assert main(compile_args(spec, whole)) == 0
    parts = [tmp_path / f"part{i}" for i in range(3)]
    for i, part in enumerate(parts):
        assert main(compile_args(spec, part, "--shard", f"{i}/3")) == 0
        assert not (part / "records.jsonl").exists() and (part / "shard.json").exists()
    merged = tmp_path / "merged"
    assert main(["merge", *map(str, reversed(parts)), "-o", str(merged)]) == 0
    assert outputs(merged) == outputs(whole)


def test_merge_refuses_incomplete_or_mismatched_shards(spec, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(compile_args(spec, a, "--shard", "0/2")) == 0
    assert main(["merge", str(a), "-o", str(tmp_path / "m")]) == 1
    assert "missing 1" in capsys.readouterr().err
    assert main(compile_args(spec, b, "--shard", "1/2", "--seed", "99")) == 0
    assert main(["merge", str(a), str(b), "-o", str(tmp_path / "m")]) == 1
    assert "`seed`" in capsys.readouterr().err
    assert main(["merge", str(tmp_path), "-o", str(tmp_path / "m")]) == 1
    assert "not a shard folder" in capsys.readouterr().err
    (b / "shard.json").write_text("{torn", encoding="utf-8")
    assert main(["merge", str(a), str(b), "-o", str(tmp_path / "m")]) == 1
    assert f"{b / 'shard.json'}: not valid JSON" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--shard 3/3", "--shard x", "--concurrency 0", "--rpm -1"])
def test_bad_options_are_usage_errors(spec, tmp_path, flag, capsys):
    assert main(compile_args(spec, tmp_path / "o", *flag.split())) == 2
    assert "error:" in capsys.readouterr().err


# ---- local transformers models ---------------------------------------------------------
def test_hf_backend_batches_concurrent_requests(tmp_path):
    import asyncio

    import dspy
    from tiny_model import build_tiny_model

    from humanllm_dsl.runtime.backends import make_lm

    path = build_tiny_model(tmp_path / "tiny")
    lm = make_lm(f"hf:{path}", seed=0)
    lm.engine.max_new_tokens = 8

    async def many():
        requests = [dspy.lm15.Request(model=lm.model, system="You are Ana.",
                                      messages=(dspy.lm15.Message.user(f"Ben: hello {i}"),),
                                      config=dspy.lm15.Config(max_tokens=3 if i == 0 else None)) for i in range(6)]
        return await asyncio.gather(*(lm.acall(r) for r in requests))

    responses = asyncio.run(many())
    assert len(responses) == 6
    assert all(r.finish_reason in ("stop", "length") for r in responses)
    assert lm.engine.batches < 6  # concurrent calls shared batches
    assert responses[0].usage.output_tokens <= 3 < max(r.usage.output_tokens for r in responses[1:])


# ---- optimised programs ----------------------------------------------------------------
def test_compile_runs_a_saved_program_in_place_of_the_default(spec, tmp_path, capsys):
    from humanllm_dsl.compiler.programs import ConversationSynthesis
    from humanllm_dsl.compiler.saved_programs import save_program

    plain = tmp_path / "plain"
    assert main(compile_args(spec, plain, "--scenarios", "4")) == 0
    program = ConversationSynthesis()  # as an optimiser would leave it: new instructions
    signature = program.predict.signature
    program.predict.signature = signature.with_instructions(signature.instructions + "\nKeep every turn short.")
    saved = save_program(program, "conversation", tmp_path / "saved")
    tuned = tmp_path / "tuned"
    assert main(compile_args(spec, tuned, "--scenarios", "4", "--program", str(saved))) == 0
    manifest = json.loads((tuned / "manifest.json").read_text())
    assert manifest["optimised_programs"] == ["conversation"] and manifest["records"] == 4
    before = [r["conversation"] for r in read_jsonl(plain / "records.jsonl")]
    after = [r["conversation"] for r in read_jsonl(tuned / "records.jsonl")]
    assert before != after  # the new instructions are in the prompt, so the (deterministic) answers changed
    assert [r["background"] for r in read_jsonl(plain / "records.jsonl")] == \
           [r["background"] for r in read_jsonl(tuned / "records.jsonl")]  # other programs untouched
    judge = tmp_path / "judge"
    from humanllm_dsl.compiler.programs import ChecklistJudge
    save_program(ChecklistJudge(), "judge", judge)
    assert main(compile_args(spec, tmp_path / "x", "--program", str(judge))) == 2
    assert "holds the `judge` program" in capsys.readouterr().err


# ---- an LM that cannot be used stops the run ------------------------------------------
def test_missing_key_stops_the_run_with_a_clear_error(spec, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OPENAI_API_KEY")
    out = tmp_path / "nokey"
    assert main(compile_args(spec, out, "--lm", "openai/gpt-4o-mini", "--scenarios", "5")) == 2
    err = capsys.readouterr().err
    assert "the LM cannot be used" in err and "OPENAI_API_KEY" in err and "run the same command again" in err
    assert not read_jsonl(out / "failures.jsonl")  # not five scenarios "failed" for want of a key


def test_unreachable_server_stops_the_run_but_a_flaky_one_does_not(spec, tmp_path, capsys):
    config = tmp_path / "lm.toml"
    config.write_text('[limits]\nmax_retries = 1\nbackoff = 0.01\n', encoding="utf-8")
    with FakeOpenAIServer() as server:
        dead = server.base_url
    assert main(compile_args(spec, tmp_path / "dead", "--lm", "openai/x", "--api-base", dead,
                             "--lm-config", str(config), "--scenarios", "3")) == 2
    assert "failed to connect" in capsys.readouterr().err
    patient = tmp_path / "patient.toml"
    patient.write_text('[limits]\nmax_retries = 6\nbackoff = 0.01\n', encoding="utf-8")
    with FakeOpenAIServer(faults=Faults(server_error=0.3), seed=5) as flaky:
        assert main(compile_args(spec, tmp_path / "flaky", "--lm", "openai/x", "--api-base", flaky.base_url,
                                 "--lm-config", str(patient), "--scenarios", "6")) == 0
        assert flaky.counts["server_error"] > 0


def test_workers_write_what_one_process_writes(spec, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(compile_args(spec, one)) == 0
    assert main(compile_args(spec, two, "--workers", "2")) == 0
    assert outputs(two) == outputs(one)
    for stage in WORK_STAGES:
        lines = (two / "work" / f"{stage}.jsonl").read_bytes().splitlines()
        assert sorted(lines) == sorted((one / "work" / f"{stage}.jsonl").read_bytes().splitlines())


def test_progress_logs_plain_lines_where_stderr_is_not_a_terminal(monkeypatch, capsys):
    from humanllm_dsl.runtime import progress as P
    from humanllm_dsl.runtime.pipeline import Usage

    monkeypatch.setattr(P, "LOG_EVERY", 0.0)
    bar = P.Progress(("scenarios", "conversations"), 10, {"scenarios": 4, "conversations": 0}, mode="log")
    with bar:
        bar.advance("scenarios", Usage(calls=3, prompt_tokens=1200, completion_tokens=300))
        bar.advance("failures", Usage(calls=4))
    err = capsys.readouterr().err.splitlines()
    assert "scenarios 5/10, conversations 0/10; 3 calls, 1,200+300 tokens" in err[0]
    assert err[1].endswith("1 failed") and bar.summary() == "kept 5 scenarios, 0 conversations of 10 planned; 1 failed"


# ---- the work files ----------------------------------------------------------------------
def test_store_cuts_a_torn_tail_but_never_drops_lines_after_damage(tmp_path):
    from humanllm_dsl.runtime.store import JsonlStore, StoreError

    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"id": "a"}\n\n{"id": "b"}\n{"id": "c"')  # a kill mid-write
    assert sorted(JsonlStore(path, repair=False).items) == ["a", "b"]
    assert path.read_bytes().endswith(b'{"id": "c"')  # only the repairing process cuts
    store = JsonlStore(path)
    assert sorted(store.items) == ["a", "b"] and path.read_bytes() == b'{"id": "a"}\n\n{"id": "b"}\n'
    store.append({"id": "c"})
    store.close()
    assert sorted(JsonlStore(path).items) == ["a", "b", "c"]
    path.write_bytes(b'{"id": "a"}\nnot json\n{"id": "b"}\n')
    with pytest.raises(StoreError, match=r"s\.jsonl:2: damaged line"):
        JsonlStore(path)
    assert path.read_bytes() == b'{"id": "a"}\nnot json\n{"id": "b"}\n'  # nothing cut
    path.write_bytes(b'{"id": "a"}\n{"no_id": 1}\n')
    with pytest.raises(StoreError, match=r"s\.jsonl:2: a record without an `id`"):
        JsonlStore(path)


def test_a_key_named_by_api_key_env_is_used_and_never_written(spec, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("MY_GATEWAY_KEY", SECRET)
    with FakeOpenAIServer() as server:
        config = tmp_path / "lm.toml"
        config.write_text(f'[lm]\nmodel = "openai/x"\napi_base = "{server.base_url}"\napi_key_env = "MY_GATEWAY_KEY"\n',
                          encoding="utf-8")
        out = tmp_path / "gw"
        assert main(compile_args(spec, out, "--lm-config", str(config), "--scenarios", "2")) == 0
        assert server.requests == 2 * 4
    assert all(SECRET.encode() not in p.read_bytes() for p in out.rglob("*") if p.is_file())
    monkeypatch.delenv("MY_GATEWAY_KEY")
    assert main(compile_args(spec, tmp_path / "unset", "--lm-config", str(config), "--scenarios", "2")) == 2


@pytest.mark.parametrize("model, message", [("hf:/no/such/model", "no model folder at /no/such/model"),
                                            ("openai/", "has a provider prefix but no model id")])
def test_a_model_that_cannot_be_built_is_a_usage_error(spec, tmp_path, capsys, model, message):
    assert main(compile_args(spec, tmp_path / "o", "--lm", model, "--scenarios", "2")) == 2
    err = capsys.readouterr().err
    assert "the LM cannot be used" in err and message in err and "Traceback" not in err


def test_output_folder_that_is_a_file_is_a_usage_error(spec, tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    for argv in (compile_args(spec, target), ["merge", str(tmp_path), "-o", str(target)],
                 ["train", str(tmp_path), "--model", str(tmp_path), "-o", str(target)],
                 ["eval", str(tmp_path), "--model", "offline", "-o", str(target)]):
        assert main(argv) == 2, argv
        assert "exists and is not a folder" in capsys.readouterr().err
    assert target.read_text() == "not a folder"


def test_damaged_run_totals_stop_the_run_before_any_call(spec, tmp_path, capsys):
    out = tmp_path / "t"
    assert main(compile_args(spec, out, "--scenarios", "2")) == 0
    (out / "work" / "usage.json").write_text("{torn", encoding="utf-8")
    (out / "work" / "checklists.jsonl").unlink()
    assert main(compile_args(spec, out, "--scenarios", "2")) == 1
    assert "usage.json: not valid JSON" in capsys.readouterr().err
    assert not (out / "work" / "checklists.jsonl").exists()  # no work was done on top of a bad file
