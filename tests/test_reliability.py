"""Trust under misuse and faults (issue 13): hostile saved programs and symlinks, secrets in
messages, concurrent runs, foreign output folders, a full disk, and the exit code of a run that
finished with failures. Servers run on 127.0.0.1, started here."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from humanllm_dsl.cli import EXIT_CODES, main
from humanllm_dsl.redact import redact
from humanllm_dsl.runtime import store
from humanllm_dsl.testing import FakeOpenAIServer, Faults
from libgen import library_text, outputs

SECRET = "sk-live-0123456789abcdefABCDEF"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def compile_args(spec, out, *extra):
    return ["compile", str(spec), "-o", str(out), "--no-progress", *extra]


def no_secret_in(folder: Path) -> bool:
    return all(SECRET.encode() not in p.read_bytes() for p in folder.rglob("*") if p.is_file())


# ---- 1. a saved program carries instructions and demos, never transport settings -------------
def hostile_program(folder: Path, name: str, cls, predictor: str, **extra) -> Path:
    from humanllm_dsl.compiler.saved_programs import save_program

    save_program(cls(), name, folder)
    state = json.loads((folder / "program.json").read_text())
    state[predictor].update(extra)
    (folder / "program.json").write_text(json.dumps(state))
    return folder


def test_a_saved_program_cannot_redirect_calls_or_the_key(spec, tmp_path, capsys):
    from humanllm_dsl.compiler.programs import ChecklistJudge, ConversationSynthesis

    with FakeOpenAIServer() as good, FakeOpenAIServer() as evil:
        program = hostile_program(tmp_path / "p", "conversation", ConversationSynthesis, "predict",
                                  config={"api_base": evil.base_url})
        rc = main(compile_args(spec, tmp_path / "b", "--lm", "openai/x", "--api-base", good.base_url,
                               "--scenarios", "2", "--program", str(program)))
        err = capsys.readouterr().err
        assert rc == 2
        assert f"{program / 'program.json'}: `predict.config` is not allowed" in err
        lm = hostile_program(tmp_path / "q", "conversation", ConversationSynthesis, "predict",
                             lm={"model": "openai/x", "api_base": evil.base_url})
        assert main(compile_args(spec, tmp_path / "c", "--lm", "openai/x", "--api-base", good.base_url,
                                 "--scenarios", "2", "--program", str(lm))) == 2
        assert "`predict.lm` must be null" in capsys.readouterr().err
        judge = hostile_program(tmp_path / "j", "judge", ChecklistJudge, "predict", config={"api_base": evil.base_url})
        build = tmp_path / "build"
        assert main(compile_args(spec, build, "--scenarios", "4")) == 0
        assert main(["eval", str(build), "--model", "offline", "--judge", "openai/x", "--judge-api-base",
                     good.base_url, "-o", str(tmp_path / "ev"), "--runs", "1", "--no-report", "--no-progress",
                     "--program", str(judge)]) == 2
        assert "`predict.config` is not allowed" in capsys.readouterr().err
        assert evil.requests == 0  # nothing, key included, ever left for the foreign host


def test_a_saved_program_with_unknown_parts_is_refused_and_a_clean_one_loads(tmp_path):
    from humanllm_dsl.compiler.programs import ScenarioVariation
    from humanllm_dsl.compiler.saved_programs import SavedProgramError, load_program, save_program

    folder = save_program(ScenarioVariation(), "variation", tmp_path / "v")
    state = json.loads((folder / "program.json").read_text())
    state["predict"]["demos"] = [{"scenario": "x", "variation": "y"}]
    (folder / "program.json").write_text(json.dumps(state))
    assert load_program(folder)[1].predict.demos[0]["variation"] == "y"  # demos are data: kept
    for key, value in (("sneaky", {}), ("metadata", {"api_key": "k"})):
        (folder / "program.json").write_text(json.dumps({**state, key: value}))
        with pytest.raises(SavedProgramError, match=rf"program\.json: `{key}"):
            load_program(folder)
    bad = json.loads(json.dumps(state))
    bad["predict"]["signature"]["model"] = "openai/evil"
    (folder / "program.json").write_text(json.dumps(bad))
    with pytest.raises(SavedProgramError, match=r"`predict\.signature\.model` is not allowed"):
        load_program(folder)


# ---- 2. a symlink in the spec root that leads out of it is refused, never read ----------------
def test_a_symlink_out_of_the_spec_root_is_refused_and_its_content_never_shown(tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0:TOPSECRETLINE:/root:/bin/bash\n")
    (outside / "more.hpat").write_text("pattern leaked {\n")
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.hpat").write_text(library_text(scenarios=24))
    (root / "users.hpat").symlink_to(outside / "passwd")
    (root / "linked").symlink_to(outside)
    (root / "inside.hpat").symlink_to(root / "ok.hpat")  # a link that stays inside is fine
    assert main(["check", str(root)]) == 1
    err = capsys.readouterr().err
    assert "users.hpat:1:1: error: a symbolic link to a file outside the spec root; not read" in err
    assert "linked:1:1: warning: skipped: this folder is a symbolic link" in err
    assert "TOPSECRETLINE" not in err and "leaked" not in err and "inside.hpat:1:1" not in err
    (root / "users.hpat").unlink()
    assert main(["check", str(root)]) == 0
    assert "skipped: this folder is a symbolic link" in capsys.readouterr().err  # still said


# ---- 3. no secret in any message or output ------------------------------------------------------
def test_redact_hides_keys_userinfo_and_secret_env_values(monkeypatch):
    monkeypatch.setenv("MY_GATEWAY_TOKEN", "plainwordsecret")
    assert redact("the environment variable sk-abcdefghijkl0123 is not set") == "the environment variable *** is not set"
    assert redact("POST https://user:pa55word@gw.example:8443/v1 failed") == "POST https://***@gw.example:8443/v1 failed"
    assert redact("cannot connect to user:pa55word@gw.example:8443") == "cannot connect to ***@gw.example:8443"
    assert redact("header Authorization: Bearer abc.def-123") == "header Authorization: Bearer ***"
    assert redact("token plainwordsecret leaked") == "token *** leaked"
    assert redact("random q8ZrT2mXv9LpK4wN7bY1cD5fG3hJ6sA0 here") == "random *** here"
    for kept in ("spec_hash 3f2a9c0d1e2b3a4f5e6d7c8b9a0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7",
                 "build/test_a_key_named_by_api_key_env_is_used0/out", "12 LM calls, 1,200+300 tokens"):
        assert redact(kept) == kept


class EchoingServer(FakeOpenAIServer):
    """Answers well, except every third request: a 401 or 400 whose message quotes the
    Authorization header it got, as some gateways do."""

    def __init__(self, status: str, every: int = 3):
        super().__init__()
        self.status, self.every = status, every

    async def _handle(self, method, path, body):
        if self.requests % self.every == self.every - 1:
            self.counts["echo"] += 1
            return self.status, [], {"error": {"message": f"rejected request with header Authorization: Bearer {SECRET}",
                                               "type": "invalid_request_error"}}
        return await super()._handle(method, path, body)


@pytest.mark.parametrize("status", ["400 Bad Request", "401 Unauthorized"])
def test_a_server_that_echoes_the_key_never_gets_it_into_messages_or_files(spec, tmp_path, capsys, status):
    out = tmp_path / "b"
    with EchoingServer(status) as server:
        rc = main(compile_args(spec, out, "--lm", "openai/x", "--api-base", server.base_url, "--scenarios", "4",
                               "--max-attempts", "1"))
        assert server.counts["echo"] > 0
    captured = capsys.readouterr()
    assert rc in (2, 3), captured.err  # 401: the LM cannot be used; 400: the scenarios failed
    assert SECRET not in captured.err + captured.out and no_secret_in(out)
    if rc == 3:
        assert "***" in (out / "failures.jsonl").read_text()


def test_a_key_pasted_into_api_key_env_or_the_api_base_is_never_shown(spec, tmp_path, capsys):
    config = tmp_path / "lm.toml"
    config.write_text(f'[lm]\nmodel = "openai/x"\napi_key_env = "{SECRET}"\n', encoding="utf-8")
    assert main(compile_args(spec, tmp_path / "a", "--lm-config", str(config), "--scenarios", "2")) == 2
    err = capsys.readouterr().err
    assert SECRET not in err and "***" in err
    with FakeOpenAIServer() as server:
        dead = server.base_url
    base = dead.replace("http://", "http://user:hunter2pass@")
    limits = tmp_path / "limits.toml"
    limits.write_text("[limits]\nmax_retries = 0\n", encoding="utf-8")
    assert main(compile_args(spec, tmp_path / "b", "--lm", "openai/x", "--api-base", base, "--lm-config", str(limits),
                             "--scenarios", "2")) == 2
    err = capsys.readouterr().err
    assert "hunter2pass" not in err and "user:" not in err and "***@127.0.0.1" in err


# ---- 4. one run per output folder ---------------------------------------------------------------
def test_a_second_run_on_the_same_folder_stops_and_names_the_first(spec, tmp_path):
    out = tmp_path / "b"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with FakeOpenAIServer(latency=0.2) as server:
        args = [sys.executable, "-m", "humanllm_dsl", *compile_args(spec, out, "--lm", "openai/x", "--api-base",
                                                                   server.base_url, "--scenarios", "6",
                                                                   "--concurrency", "1")]
        first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lock = out / ".humanllm.lock"
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.stat().st_size) and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert first.poll() is None, "the first run ended before the second started: slow the server down"
        assert second.returncode == 2
        assert f"in use by process {first.pid} on " in second.stderr and "humanllm compile" in second.stderr
        assert "Traceback" not in second.stderr
        _, err = first.communicate(timeout=300)
        assert first.returncode == 0, err
        assert server.requests == 6 * 4  # the work was paid for once
    assert lock.read_bytes() == b""  # released: the next run resumes
    assert main(compile_args(spec, out, "--scenarios", "6", "--lm", "openai/x", "--api-base", "http://127.0.0.1:9/v1")) == 0


def test_whole_file_writes_use_unique_temporary_names(tmp_path):
    target = tmp_path / "records.jsonl"
    errors = []

    def writer(tag: str) -> None:
        try:
            for k in range(40):
                store.write_jsonl(target, [{"id": f"{tag}{k}", "text": "x" * 2000}] * 20)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [p.name for p in tmp_path.iterdir()] == ["records.jsonl"]
    assert len(set(target.read_text().splitlines())) == 1  # one writer's whole file, never a mix


# ---- 5. only empty folders or our own -----------------------------------------------------------
def test_a_foreign_folder_is_never_written_into(spec, tmp_path, capsys):
    foreign = tmp_path / "thesis"
    (foreign / "splits").mkdir(parents=True)
    files = {"README.md": "my thesis\n", "manifest.json": '{"mine": 1}\n', "splits/train.jsonl": '{"id": 1}\n'}
    for name, text in files.items():
        (foreign / name).write_text(text)
    before = outputs(foreign, skip=())
    for argv in (compile_args(spec, foreign, "--scenarios", "2"), ["merge", str(tmp_path / "x"), "-o", str(foreign)],
                 ["eval", str(tmp_path), "--model", "offline", "-o", str(foreign)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "not empty" in err and "not made by humanllm" in err and "choose a new or empty folder" in err
    assert outputs(foreign, skip=()) == before and sorted(p.name for p in foreign.iterdir()) == ["README.md",
                                                                                                 "manifest.json", "splits"]
    build = tmp_path / "build"
    assert main(compile_args(spec, build, "--scenarios", "2")) == 0
    assert json.loads((build / ".humanllm").read_text()) == {"kind": "build"}
    assert main(["eval", str(build), "--model", "offline", "-o", str(build)]) == 2  # a build is not an eval folder
    assert "is a humanllm build folder, and this command writes eval output" in capsys.readouterr().err


def test_a_build_folder_from_before_the_marker_still_resumes(spec, tmp_path):
    out = tmp_path / "old"
    assert main(compile_args(spec, out, "--scenarios", "3", "--stage", "conversations")) == 0
    (out / ".humanllm").unlink()
    (out / ".humanllm.lock").unlink()
    assert main(compile_args(spec, out, "--scenarios", "3")) == 0
    assert json.loads((out / ".humanllm").read_text()) == {"kind": "build"}
    assert len((out / "records.jsonl").read_text().splitlines()) == 3


def test_a_failed_start_leaves_no_trace(tmp_path):
    out = tmp_path / "new"
    assert main(["compile", str(tmp_path / "nope"), "-o", str(out)]) == 2
    assert not out.exists()


# ---- 6. a full disk -----------------------------------------------------------------------------
def disk_full_after(monkeypatch, budget: int) -> None:
    """Every write through the store fails with ENOSPC once `budget` bytes have gone (the
    last write only partly done, as a real full disk does)."""
    real, left = store._write_all, [budget]

    def write_all(fd: int, data: bytes) -> None:
        if len(data) > left[0]:
            os.write(fd, data[:left[0]])
            left[0] = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        left[0] -= len(data)
        real(fd, data)

    monkeypatch.setattr(store, "_write_all", write_all)


@pytest.mark.parametrize("share", [0.1, 0.9])  # during generation; during the export
def test_a_full_disk_is_a_clear_error_leaves_no_temporaries_and_resumes(spec, tmp_path, capsys, monkeypatch, share):
    reference = tmp_path / "ref"
    assert main(compile_args(spec, reference, "--scenarios", "8")) == 0
    written = sum(p.stat().st_size for p in reference.rglob("*") if p.is_file() and "hf" not in p.parts)
    out = tmp_path / "full"
    with monkeypatch.context() as patch:
        disk_full_after(patch, int(share * written))
        assert main(compile_args(spec, out, "--scenarios", "8")) == 4
    err = capsys.readouterr().err
    assert "no space left on device" in err and "run the same command again" in err and "Traceback" not in err
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    for work in (out / "work").glob("*.jsonl"):
        assert work.read_bytes().endswith(b"\n") or not work.read_bytes()  # whole lines only
    assert main(compile_args(spec, out, "--scenarios", "8")) == 0
    assert outputs(out) == outputs(reference)


# ---- 8. a run with failures does not exit 0 -----------------------------------------------------
def test_compile_with_failed_scenarios_exits_3_and_says_what_failed(spec, tmp_path, capsys):
    out = tmp_path / "f"
    with FakeOpenAIServer(faults=Faults(malformed=0.5), seed=2) as server:
        args = compile_args(spec, out, "--lm", "openai/x", "--api-base", server.base_url, "--scenarios", "6",
                            "--max-attempts", "1")
        assert main(args) == 3
    err = capsys.readouterr().err
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert failures
    assert f"finished with failures: {len(failures)} planned scenario" in err
    assert f"{failures[0]['stage']}: " in err and failures[0]["id"] in err
    assert str(out / "failures.jsonl") in err and "run the same command again" in err


def test_exit_codes_are_documented_in_help_and_readme(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    shown = capsys.readouterr().out
    readme = (ROOT / "README.md").read_text()
    for code, meaning in EXIT_CODES.items():
        assert f"{code:<4} {meaning}" in shown
        assert f"| {code} |" in readme
