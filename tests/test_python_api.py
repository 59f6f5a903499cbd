"""`humanllm_dsl` as a library: the programs, make_lm and the record classes are exported lazily
(importing the package stays light), the docs/python.md optimisation example runs with the
offline LM, and pattern ids where summaries belong are a clear error."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import humanllm_dsl as h

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ("ScenarioSynthesis", "ConversationSynthesis", "ScenarioChecklist", "ScenarioVariation",
            "ChecklistJudge", "HolisticJudge", "BundleVetting")


def test_the_package_exports_programs_make_lm_and_records_lazily():
    code = ("import sys, humanllm_dsl as h\nheavy = [m for m in ('dspy', 'litellm', 'datasets', 'torch') if m in sys.modules]\n"
            "import dspy\nfrom humanllm_dsl import Record, load_record, dump_record, Build, make_lm\n"
            f"ok = all(issubclass(getattr(h, n), dspy.Module) for n in {PROGRAMS!r})\n"
            "print(heavy, ok, callable(make_lm), Build.__name__, Record.__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "True", "True", "Build", "Record"]
    assert set(PROGRAMS) | {"make_lm", "Record", "load_record", "dump_record", "Build"} <= set(h.__all__) & set(dir(h))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        h.Nope


def _python_blocks() -> list[str]:
    text = (ROOT / "docs" / "python.md").read_text("utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_examples_in_the_docs_run_with_the_offline_lm(tmp_path, monkeypatch, capsys):
    from humanllm_dsl.runtime.compile import CompileOptions, compile_dataset

    build = tmp_path / "build"
    compile_dataset(h.load(str(ROOT / "specs")), CompileOptions(out=build, scenarios=2, progress=None))
    monkeypatch.chdir(ROOT)
    scope: dict = {}
    for block in _python_blocks():
        block = block.replace('"scenario_program.json"', repr(str(tmp_path / "p.json")))
        exec(compile(block.replace('Build("build")', f"Build({str(build)!r})"), "python.md", "exec"), scope)
    ids = [json.loads(line)["id"] for line in h.Build(build).records.read_text("utf-8").splitlines()]
    printed = capsys.readouterr().out.splitlines()
    assert ids and [line.split()[0] for line in printed[:len(ids)]] == ids
    tuned, score = scope["tuned"], scope["score"]
    assert 0.0 <= score <= 1.0 and scope["baseline"] <= score
    assert tuned.predict.demos, "the optimiser kept no demonstration"
    saved = json.loads((tmp_path / "p.json").read_text("utf-8"))
    assert saved["predict"]["demos"]
    again = h.ScenarioSynthesis()
    again.load(str(tmp_path / "p.json"))
    assert len(again.predict.demos) == len(tuned.predict.demos)


def test_pattern_ids_where_summaries_belong_are_a_clear_error():
    lib = h.load(str(ROOT / "specs"))
    with pytest.raises(TypeError, match=r"pattern_brief takes a Pattern \(library.pattern\('loss_aversion'\)"):
        h.pattern_brief("loss_aversion")
    program = h.ScenarioSynthesis()
    inputs = dict(interactions="[]", situation="Duty", domain="Home", character_count=2, candidate_names=["A B", "C D"])
    for ids in (["loss_aversion"], json.dumps(["loss_aversion"]), "loss_aversion", [lib.pattern("loss_aversion")]):
        with pytest.raises(TypeError, match=r"ScenarioSynthesis: `patterns` takes pattern summaries, not ids.*'loss_aversion'"):
            program(patterns=ids, **inputs)
