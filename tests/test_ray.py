"""`--executor ray` on a local Ray instance: the driver alone writes the output folder, which
equals a local run's; a partial run resumes; the workers reach an endpoint; compile without it
never imports Ray."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")  # the CI installs the `ray` extra (scripts/test.sh), so this runs there

from humanllm_dsl.cli import main  # noqa: E402
from humanllm_dsl.runtime.stages import WORK_STAGES  # noqa: E402
from humanllm_dsl.testing import FakeOpenAIServer  # noqa: E402
from libgen import outputs, write_library  # noqa: E402



@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    return write_library(tmp_path_factory.mktemp("spec"), scenarios=12)


def work_lines(folder: Path, stage: str) -> list[bytes]:
    return sorted((folder / "work" / f"{stage}.jsonl").read_bytes().splitlines())


def compile_args(spec, out, *extra):
    return ["compile", str(spec), "-o", str(out), "--no-progress", *extra]


def assert_same_run(ray_out: Path, local_out: Path) -> None:
    assert outputs(ray_out) == outputs(local_out)
    for stage in WORK_STAGES:
        assert work_lines(ray_out, stage) == work_lines(local_out, stage)


def test_a_ray_run_writes_what_a_local_run_writes(spec, tmp_path):
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert main(compile_args(spec, local)) == 0
    assert main(compile_args(spec, on_ray, "--executor", "ray", "--workers", "2")) == 0
    assert_same_run(on_ray, local)


def test_a_partial_run_resumes_on_ray(spec, tmp_path, capsys):
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert main(compile_args(spec, local)) == 0
    # a run stopped part way: every scenario, some conversations, a torn last line (a kill mid-write)
    assert main(compile_args(spec, on_ray, "--stage", "scenarios")) == 0
    conversations = (local / "work" / "conversations.jsonl").read_bytes().splitlines(keepends=True)
    (on_ray / "work" / "conversations.jsonl").write_bytes(b"".join(conversations[:5]) + conversations[5][:40])
    capsys.readouterr()
    assert main(compile_args(spec, on_ray, "--executor", "ray", "--workers", "2")) == 0
    calls = int(capsys.readouterr().out.split("this run: ")[1].split(" LM calls")[0])
    rows = sum(len(f.read_bytes().splitlines()) for f in (local / "work").glob("*.jsonl") if f.stem != "usage")
    assert calls == rows - 12 - 5  # every row not on disk (the torn one too), one call each; no scenario again
    assert_same_run(on_ray, local)
    capsys.readouterr()
    assert main(compile_args(spec, on_ray, "--executor", "ray")) == 0  # all done: no call at all
    assert "this run: 0 LM calls" in capsys.readouterr().out


def test_ray_workers_call_an_endpoint_and_the_driver_writes(spec, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-ray-0123456789")  # set after ray.init: forwarded to workers
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    with FakeOpenAIServer(latency=0.005) as server:
        args = ("--lm", "openai/fake-model", "--api-base", server.base_url, "--scenarios", "6")
        assert main(compile_args(spec, local, *args)) == 0
        before = server.requests
        assert main(compile_args(spec, on_ray, *args, "--executor", "ray", "--workers", "2", "--no-cache")) == 0
        assert server.requests - before == before  # the workers made every call again (no cache)
    assert_same_run(on_ray, local)
    usage = json.loads((on_ray / "manifest.json").read_text())
    assert usage["lm_calls"] == json.loads((local / "manifest.json").read_text())["lm_calls"]


def test_an_unreachable_server_or_too_many_workers_stop_a_ray_run_with_the_reason(spec, tmp_path, capsys):
    dead = ("--lm", "openai/fake-model", "--api-base", "http://127.0.0.1:9/v1", "--timeout", "0.5")
    assert main(compile_args(spec, tmp_path / "dead", *dead, "--executor", "ray", "--lm-config",
                             str(_patient(tmp_path)))) == 2
    assert "the LM cannot be used" in capsys.readouterr().err
    assert main(compile_args(spec, tmp_path / "many", "--executor", "ray", "--workers", "3")) == 2
    assert "each Ray worker takes a CPU, and the Ray cluster has 2" in capsys.readouterr().err


def _patient(tmp_path: Path) -> Path:
    path = tmp_path / "lm.toml"
    path.write_text("[limits]\nmax_retries = 1\nbackoff = 0.01\n", encoding="utf-8")
    return path


def test_ray_address_without_the_ray_executor_is_a_usage_error(spec, tmp_path, capsys):
    assert main(compile_args(spec, tmp_path / "o", "--ray-address", "auto")) == 2
    assert "--ray-address needs --executor ray" in capsys.readouterr().err


def test_compile_on_the_local_executor_does_not_import_ray(spec, tmp_path):
    code = (f"import sys\nfrom humanllm_dsl.cli import main\n"
            f"rc = main(['compile', {str(spec)!r}, '-o', {str(tmp_path / 'o')!r}, '--no-progress', '--stage', 'scenarios'])\n"
            "print(rc, sorted(m for m in ('ray', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 []"
