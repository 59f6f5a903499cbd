"""`humanllm eval` / `optimize` end to end on a compiled pilot: offline engine, resume, errors,
saved programs, and the tiny local model (`hf:`) on CPU."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from humanllm_dsl.cli import main
from humanllm_dsl.runtime.offline import OfflineEngine

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


def eval_args(build, out, *extra, model="offline"):
    return ["eval", str(build), "--model", model, "-o", str(out), "--no-progress", *extra]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text("utf-8").splitlines() if x.strip()]


def test_offline_eval_writes_results_verdicts_and_report(build, tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(eval_args(build, out, "--runs", "2")) == 0
    assert "IPE" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    for metric in ("IPE", "MPD"):
        assert {"mean", "std", "runs", "n"} <= set(results[metric])
        assert -100 <= results[metric]["mean"] <= 100 and len(results[metric]["runs"]) == 2
    assert set(results["breakdowns"]) == {"split", "pattern", "family", "interaction"}
    assert set(results["breakdowns"]["split"]) <= {"id_eval", "ood_eval", "mixed_eval"}
    assert set(results["breakdowns"]["interaction"]) <= {"reinforce", "conflict", "modulate", "none"}
    assert set(results["holistic"]) == {"anthropomorphism", "fidelity"}
    n = results["samples"]
    assert n > 0 and results["rollouts"]["done"] == n
    verdicts = lines(out / "verdicts.jsonl")
    assert len(verdicts) == 2 * n and all(v["status"] == "ok" for v in verdicts)
    assert all(len(v["verdicts"]) == len(v["items"]) for v in verdicts)
    assert {i["kind"] for v in verdicts for i in v["items"]} == {"ipe", "mpd"}
    rollout = lines(out / "rollouts.jsonl")[0]
    generated = [t for t in rollout["turns"] if t["generated"]]
    assert generated and all(t["char"] == rollout["character"] for t in generated)
    html = (out / "report.html").read_text()
    assert "Per pattern" in html and "data:image/png;base64" in html and "Example transcripts" in html
    assert (out / "plots" / "patterns.png").stat().st_size > 0
    with (out / "scores.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["metric"] for r in rows} == {"IPE", "MPD", "anthropomorphism", "fidelity"}


def test_rerun_resumes_without_lm_calls_and_more_runs_add_only_new_work(build, tmp_path):
    out = tmp_path / "ev"
    assert main(eval_args(build, out, "--runs", "1", "--no-holistic")) == 0
    first = json.loads((out / "results.json").read_text())
    before = OfflineEngine.calls_total
    assert main(eval_args(build, out, "--runs", "1", "--no-holistic")) == 0
    assert OfflineEngine.calls_total == before
    again = json.loads((out / "results.json").read_text())
    assert again["IPE"] == first["IPE"] and again["MPD"] == first["MPD"]
    # a torn last line (a kill mid-write) is dropped and redone
    path = out / "verdicts.jsonl"
    text = path.read_text()
    path.write_text(text[: len(text) - 40])
    assert main(eval_args(build, out, "--runs", "2", "--no-holistic")) == 0
    n = first["samples"]
    assert OfflineEngine.calls_total - before == n + 1   # run 2 for every sample + the torn one
    assert len({v["id"] for v in lines(path)}) == 2 * n


def test_reference_conversations_score_higher_than_generic_rollouts(build, tmp_path):
    """The offline conversations follow the checklists; the offline role-play turns do not."""
    assert main(eval_args(build, tmp_path / "ref", "--runs", "1", "--no-report", model="reference")) == 0
    assert main(eval_args(build, tmp_path / "gen", "--runs", "1", "--no-report")) == 0
    ref = json.loads((tmp_path / "ref" / "results.json").read_text())
    gen = json.loads((tmp_path / "gen" / "results.json").read_text())
    assert ref["IPE"]["mean"] > gen["IPE"]["mean"]
    assert ref["rollouts"]["generated_turns"] == 0
    assert ref["judge"]["evidence_grounded"] == 1.0


def test_splits_without_samples_exit_1_naming_them_and_how_to_get_samples(build, tmp_path, capsys):
    import shutil

    copy = tmp_path / "build"
    shutil.copytree(build / "splits", copy / "splits")
    shutil.copy(build / "patterns.json", copy / "patterns.json")
    (copy / "splits" / "mixed_eval.jsonl").write_text("")
    (copy / "splits" / "ood_eval.jsonl").unlink()
    assert main(eval_args(copy, tmp_path / "ev", "--split", "mixed_eval")) == 1
    err = capsys.readouterr().err
    assert "mixed_eval: no records" in err and "split {" in err and "--split" in err
    assert not (tmp_path / "ev" / "results.json").exists()  # nothing judged, nothing claimed
    assert main(eval_args(copy, tmp_path / "ev2", "--split", "ood_eval")) == 1
    assert "ood_eval: no file" in capsys.readouterr().err


def test_another_model_into_the_same_folder_is_refused(build, tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(eval_args(build, out, "--runs", "1", "--limit", "1", "--no-report")) == 0
    assert main(eval_args(build, out, "--runs", "1", "--limit", "1", model="reference")) == 2
    assert "holds another evaluation" in capsys.readouterr().err


def test_bad_build_data_names_file_and_line(build, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(build / "splits", bad / "splits")
    shutil.copy(build / "patterns.json", bad / "patterns.json")
    path = bad / "splits" / "id_eval.jsonl"
    rows = path.read_text().splitlines()
    rows[1] = "{not json"
    path.write_text("\n".join(rows) + "\n")
    assert main(eval_args(bad, tmp_path / "ev")) == 1
    assert f"{path}:2: not valid JSON" in capsys.readouterr().err
    (bad / "patterns.json").unlink()
    assert main(eval_args(bad, tmp_path / "ev2")) == 1
    assert "patterns.json: no such file" in capsys.readouterr().err


def test_usage_errors(build, tmp_path, capsys):
    assert main(eval_args(build, tmp_path / "ev", "--runs", "0")) == 2
    assert main(eval_args(tmp_path / "nowhere", tmp_path / "ev")) == 2
    with pytest.raises(SystemExit) as exc:
        main(eval_args(build, tmp_path / "ev", "--split", "everything"))
    assert exc.value.code == 2


def test_eval_with_a_saved_program(build, tmp_path, capsys):
    from humanllm_dsl.compiler import programs as P
    from humanllm_dsl.compiler.saved_programs import save_program

    judge = P.ChecklistJudge()
    judge.predict.signature = judge.predict.signature.with_instructions("Judge harshly.")
    save_program(judge, "judge", tmp_path / "judge")
    out = tmp_path / "ev"
    assert main(eval_args(build, out, "--runs", "1", "--limit", "2", "--program", str(tmp_path / "judge"))) == 0
    assert json.loads((out / "results.json").read_text())["programs"] == [str(tmp_path / "judge")]
    save_program(P.ConversationSynthesis(), "conversation", tmp_path / "conv")
    assert main(eval_args(build, tmp_path / "ev2", "--program", str(tmp_path / "conv"))) == 2
    assert "holds the `conversation` program" in capsys.readouterr().err


def test_optimize_judge_then_eval_with_it(build, tmp_path, capsys):
    ref = tmp_path / "ref"
    assert main(eval_args(build, ref, "--runs", "1", "--no-report", "--no-holistic", model="reference")) == 0
    human = tmp_path / "human.csv"
    with (ref / "scores.csv").open() as f, human.open("w", newline="") as g:
        w = csv.writer(g)
        w.writerow(["sample_id", "metric", "score"])
        for row in csv.DictReader(f):
            w.writerow([row["sample_id"], row["metric"], min(100.0, float(row["score"]) + 10)])
    saved = tmp_path / "opt"
    assert main(["optimize", "judge", str(build), "--human", str(human), "-o", str(saved), "--limit", "8"]) == 0
    assert "validation metric" in capsys.readouterr().out
    meta = json.loads((saved / "meta.json").read_text())
    assert meta["program"] == "judge" and meta["optimization"]["optimizer"] == "bootstrap"
    assert 0.0 <= meta["optimization"]["optimized"] <= 1.0
    assert main(["align", "--human", str(human), "--judge", str(ref / "scores.csv"), "--json"]) == 0
    ipe = json.loads(capsys.readouterr().out)["IPE"]
    assert ipe["mean_human"] - ipe["mean_judge"] == pytest.approx(10.0, abs=1.0)
    assert main(eval_args(build, tmp_path / "ev", "--runs", "1", "--limit", "2", "--program", str(saved))) == 0


def test_optimize_conversation_against_the_judge(build, tmp_path, capsys):
    saved = tmp_path / "conv"
    assert main(["optimize", "conversation", str(build), "-o", str(saved), "--limit", "4",
                 "--specs", str(ROOT / "specs"), "--max-demos", "1"]) == 0
    out = capsys.readouterr().out
    baseline = float(out.split("validation metric ")[1].split(" ->")[0])
    assert 0.5 <= baseline <= 1.0   # offline conversations pass the format checks
    assert json.loads((saved / "meta.json").read_text())["program"] == "conversation"


def test_optimize_needs_human_ratings_for_the_judge(build, tmp_path, capsys):
    assert main(["optimize", "judge", str(build), "-o", str(tmp_path / "x")]) == 2
    assert "needs --human" in capsys.readouterr().err
    bad = tmp_path / "h.csv"
    bad.write_text("sample_id,metric,score\nnobody/None,IPE,3\n")
    assert main(["optimize", "judge", str(build), "--human", str(bad), "-o", str(tmp_path / "x")]) == 1
    assert "usable example" in capsys.readouterr().err


def test_offline_eval_imports_no_torch(build, tmp_path):
    code = ("import sys; from humanllm_dsl.cli import main; "
            f"rc = main(['eval', {str(build)!r}, '--model', 'offline', '-o', {str(tmp_path / 'ev')!r}, "
            "'--limit', '1', '--runs', '1', '--no-progress']); "
            "print(rc, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**__import__("os").environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert done.stdout.split()[-2:] == ["0", "False"], done.stderr[-2000:]


def test_tiny_local_model_end_to_end(build, tmp_path):
    from tests.tiny_model import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny")
    out = tmp_path / "ev"
    assert main(eval_args(build, out, "--runs", "2", "--limit", "2", "--max-tokens", "8",
                          model=f"hf:{model}")) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["rollouts"]["done"] == 2 and results["rollouts"]["generated_turns"] > 0
    assert results["judge"]["verdict_sets"] == 4
    assert results["IPE"]["mean"] is not None and len(results["IPE"]["runs"]) == 2
    for row in lines(out / "rollouts.jsonl"):
        assert all(t["char"] == row["character"] for t in row["turns"] if t["generated"])


@pytest.mark.parametrize("flag, model, message", [("--model", "hf:/no/such/model", "no model folder at /no/such/model"),
                                                  ("--judge", "openai/", "has a provider prefix but no model id")])
def test_a_model_that_cannot_be_built_is_a_usage_error(build, tmp_path, capsys, flag, model, message):
    args = ["eval", str(build), "--model", "offline", "-o", str(tmp_path / "e"), flag, model]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("field,value,message", [
    ("char2pattern", "{\"A\": [\"x\"]}", "`char2pattern` must be an object"),
    ("characters", "[{\"name\": \"A\"}]", "`characters` must be a list of objects, not a string"),
    ("conversation", "[]", "`conversation` must be a list of turns, not a string"),
    ("checklist", {"A": "Does A do it?"}, "checklist[`A`] must be a list of strings, not a string"),
])
def test_a_nested_field_in_another_shape_names_file_line_and_field(build, tmp_path, capsys, field, value, message):
    import shutil

    copy = tmp_path / "build"
    shutil.copytree(build / "splits", copy / "splits")
    shutil.copy(build / "patterns.json", copy / "patterns.json")
    path = copy / "splits" / "id_eval.jsonl"
    rows = lines(path)
    name = rows[1]["char2pattern"][0]["char"]
    rows[1][field] = {name: value["A"]} if isinstance(value, dict) else value
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(eval_args(copy, tmp_path / "ev", "--split", "id_eval")) == 1
    err = capsys.readouterr().err
    assert f"{path}:2: " in err and message.replace("`A`", f"`{name}`") in err and "Traceback" not in err


def test_a_repeated_record_id_in_the_splits_is_refused_naming_both_lines(build, tmp_path, capsys):
    import shutil

    copy = tmp_path / "build"
    shutil.copytree(build / "splits", copy / "splits")
    shutil.copy(build / "patterns.json", copy / "patterns.json")
    path = copy / "splits" / "id_eval.jsonl"
    rows = lines(path)
    path.write_text("".join(json.dumps(r) + "\n" for r in [*rows, rows[0]]), encoding="utf-8")
    assert main(eval_args(copy, tmp_path / "ev", "--split", "id_eval")) == 1
    err = capsys.readouterr().err
    assert f"{path}:{len(rows) + 1}: record id `{rows[0]['id']}` repeats the record at {path}:1" in err
