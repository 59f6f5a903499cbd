"""`humanllm eval --executor ray` on a local Ray instance: the same scores and files as a local
eval, a partial eval resumes without redoing finished work, and the options' usage errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")  # the CI installs the `ray` extra (scripts/test.sh), so this runs there

from humanllm_dsl.cli import main  # noqa: E402
from humanllm_dsl.runtime.offline import OfflineEngine  # noqa: E402
from humanllm_dsl.testing import FakeOpenAIServer  # noqa: E402
from libgen import write_library  # noqa: E402

SCORES = ("IPE", "MPD", "holistic", "breakdowns", "samples", "rollouts", "judge")
FILES = ("rollouts", "verdicts", "holistic", "failures")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False)  # a GPU in name only: torch runs on the CPU
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    spec, out = write_library(tmp_path_factory.mktemp("spec"), scenarios=12), tmp_path_factory.mktemp("build")
    assert main(["compile", str(spec), "-o", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-ray-eval-0123")


def eval_args(build, out, *extra):
    return ["eval", str(build), "-o", str(out), "--no-progress", "--no-report", "--runs", "2", *extra]


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def lines(folder: Path, name: str) -> list[bytes]:
    path = folder / f"{name}.jsonl"
    return sorted(path.read_bytes().splitlines()) if path.exists() else []


def assert_same_eval(on_ray: Path, local: Path) -> None:
    mine, theirs = results(on_ray), results(local)
    assert {k: mine[k] for k in SCORES} == {k: theirs[k] for k in SCORES}
    for name in FILES:
        assert lines(on_ray, name) == lines(local, name)
    assert (on_ray / "scores.csv").read_bytes() == (local / "scores.csv").read_bytes()


def test_an_offline_eval_on_ray_scores_as_a_local_one(build, tmp_path):
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert main(eval_args(build, local, "--model", "offline")) == 0
    before = OfflineEngine.calls_total
    assert main(eval_args(build, on_ray, "--model", "offline", "--executor", "ray", "--ray-workers", "2")) == 0
    assert OfflineEngine.calls_total == before  # every call was made in the Ray workers
    assert results(local)["samples"] > 4 and results(local)["judge"]["verdict_sets"] > 0
    assert_same_eval(on_ray, local)
    assert results(on_ray)["usage"]["calls"] == results(local)["usage"]["calls"] > 0


def test_a_resumed_eval_on_ray_redoes_no_finished_work_and_equals_a_local_one(build, tmp_path):
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    with FakeOpenAIServer(latency=0.002) as server:
        args = ("--model", "openai/fake-model", "--api-base", server.base_url, "--judge", "openai/fake-judge",
                "--judge-api-base", server.base_url, "--no-cache")
        assert main(eval_args(build, local, *args)) == 0
        # an eval killed part way: every rollout, the first run's verdicts, a torn last line (a kill mid-write)
        assert main([*eval_args(build, on_ray, *args), "--runs", "1", "--no-holistic"]) == 0
        path = on_ray / "verdicts.jsonl"
        kept = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(b"".join(kept[:-1]) + kept[-1][:30])
        kept_ids = {json.loads(line)["id"] for line in kept[:-1]}
        todo = [row for name in ("verdicts", "holistic") for row in map(json.loads, lines(local, name))
                if name == "holistic" or row["id"] not in kept_ids]
        before = server.requests
        assert main(eval_args(build, on_ray, *args, "--executor", "ray", "--ray-workers", "2")) == 0
        resumed = server.requests - before
        # no rollout again, no finished verdict set again: only the judge calls still to do
        assert resumed == sum(row.get("attempts", 1) for row in todo) > 0
        assert results(on_ray)["usage"]["calls"] == resumed
        before = server.requests
        assert main(eval_args(build, on_ray, *args, "--executor", "ray")) == 0  # all done: no call at all
        assert server.requests == before
    assert_same_eval(on_ray, local)


def test_ray_options_without_the_ray_executor_are_usage_errors(build, tmp_path, capsys):
    assert main(eval_args(build, tmp_path / "a", "--model", "offline", "--ray-address", "auto")) == 2
    assert "--ray-address needs --executor ray" in capsys.readouterr().err
    assert main(eval_args(build, tmp_path / "b", "--model", "offline", "--ray-workers", "2")) == 2
    assert "--ray-workers needs --executor ray" in capsys.readouterr().err
    assert main(eval_args(build, tmp_path / "c", "--model", "offline", "--executor", "ray",
                          "--ray-workers", "3")) == 2
    assert "--ray-workers 3: each Ray worker takes a CPU, and the Ray cluster has 2" in capsys.readouterr().err


def test_an_hf_model_runs_on_a_ray_gpu_worker_and_scores_as_a_local_one(build, tmp_path, capsys):
    from tests.tiny_model import build_tiny_model

    model = f"hf:{build_tiny_model(tmp_path / 'tiny')}"
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    args = ("--model", model, "--limit", "2", "--max-tokens", "8", "--concurrency", "1", "--no-holistic")
    assert main(eval_args(build, local, *args)) == 0
    assert main(eval_args(build, on_ray, *args, "--executor", "ray")) == 0
    assert results(on_ray)["rollouts"]["generated_turns"] > 0
    assert_same_eval(on_ray, local)
    # each hf worker holds a GPU: the instance has one
    assert main(eval_args(build, tmp_path / "two", *args, "--executor", "ray", "--ray-workers", "2")) == 2
    assert "--ray-workers 2: each Ray worker takes a GPU, and the Ray cluster has 1" in capsys.readouterr().err


def test_a_model_that_cannot_be_built_stops_a_ray_eval_with_the_reason(build, tmp_path, capsys):
    assert main(eval_args(build, tmp_path / "o", "--model", "offline", "--judge", "openai/", "--executor", "ray")) == 2
    err = capsys.readouterr().err
    assert "has a provider prefix but no model id" in err and "Traceback" not in err


def test_without_ray_an_eval_on_ray_is_a_usage_error_and_a_local_eval_never_imports_ray(build, tmp_path):
    blocker, plain = tmp_path / "noray", tmp_path / "plain"
    blocker.mkdir()
    plain.mkdir()
    (blocker / "ray.py").write_text("raise ImportError('no ray here')\n", encoding="utf-8")
    code = ("import sys\nsys.path.insert(0, sys.argv[1])\nfrom humanllm_dsl.cli import main\n"
            "rc = main(sys.argv[2:])\nprint('ray' in sys.modules)\nsys.exit(rc)\n")

    def run(path: Path, out: str, *extra):
        args = eval_args(build, tmp_path / out, "--model", "offline", "--runs", "1", "--limit", "2", "--no-holistic",
                         *extra)
        return subprocess.run([sys.executable, "-c", code, str(path), *args], capture_output=True, text=True,
                              timeout=120)

    missing = run(blocker, "ray", "--executor", "ray")
    assert missing.returncode == 2, missing.stderr
    assert "--executor ray needs Ray: pip install 'humanllm[ray]'" in missing.stderr
    assert not (tmp_path / "ray").exists()  # refused before any output
    local = run(plain, "local")
    assert local.returncode == 0, local.stderr
    assert local.stdout.strip().splitlines()[-1] == "False"
