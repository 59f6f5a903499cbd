"""`humanllm compile` end to end on a tiny spec with the offline engine."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import humanllm_dsl as h
from humanllm_dsl.runtime.records import map_shape
from humanllm_dsl.cli import main
from humanllm_dsl.runtime import offline
from humanllm_dsl.runtime.compile import CompileOptions, compile_dataset
from libgen import read_jsonl, write_library


@pytest.fixture(scope="module")
def built(spec, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "build"
    assert main(["compile", str(spec), "-o", str(out), "--no-progress"]) == 0
    return out


def test_outputs_exist_and_agree(built):
    manifest = json.loads((built / "manifest.json").read_text())
    for key in ("dataset", "seed", "scenarios", "held_out", "spec_hash", "lm", "splits", "lm_calls",
                "prompt_tokens", "completion_tokens"):
        assert key in manifest
    assert manifest["lm"] == "offline" and manifest["offline"] is True
    plan = read_jsonl(built / "plan.jsonl")
    records = read_jsonl(built / "records.jsonl")
    failures = read_jsonl(built / "failures.jsonl") if (built / "failures.jsonl").read_text() else []
    assert len(plan) == manifest["scenarios"] == 24
    assert len(records) + len({f["id"] for f in failures}) == len(plan)  # nothing silently dropped
    assert manifest["lm_calls"] >= 4 * len(records)
    for split in ("train", "id_eval", "ood_eval", "mixed_eval"):
        rows = read_jsonl(built / "splits" / f"{split}.jsonl") if (built / "splits" / f"{split}.jsonl").stat().st_size else []
        assert all(r["split"] == split for r in rows)
        assert len(rows) == manifest["splits"][split]
        assert (built / "sft" / f"sharegpt_{split}.json").exists()
        assert (built / "sft" / f"messages_{split}.jsonl").exists()
    info = json.loads((built / "sft" / "dataset_info.json").read_text())
    assert info["humanllm_train"]["formatting"] == "sharegpt"
    assert "Offline data" in (built / "README.md").read_text()
    held = set(manifest["held_out"])
    for r in records:
        if r["split"] == "train":
            assert not held & set(r["patterns"])


@pytest.fixture(scope="module")
def voiced(tmp_path_factory) -> tuple[Path, Path]:
    """A library whose mechanisms do not name their pattern (so the offline engine voices them),
    and its build."""
    spec = write_library(tmp_path_factory.mktemp("voiced"), scenarios=8, mechanism_names_id=False)
    out = tmp_path_factory.mktemp("out") / "build"
    assert main(["compile", str(spec), "-o", str(out), "--no-progress"]) == 0
    return spec, out


@pytest.mark.parametrize("names_id", [True, False])
def test_records_are_valid_and_traceable(names_id, request):
    spec, built = (request.getfixturevalue("spec"), request.getfixturevalue("built")) if names_id \
        else request.getfixturevalue("voiced")
    lib = h.load(spec)
    rows = read_jsonl(built / "records.jsonl")
    assert rows
    voicing = 0
    for r in map(map_shape, rows):  # records store name-keyed maps as lists
        names = [c["name"] for c in r["characters"]]
        assert 12 <= len(r["conversation"]) <= 20
        assert r["conversation"][0]["char"] != r["protagonist"] == r["conversation"][-1]["char"]
        assert {t["char"] for t in r["conversation"]} <= set(names)
        assert all(t["thought"] for t in r["conversation"])
        assert set(r["char2pattern"]) <= set(names)
        assert {p for ps in r["char2pattern"].values() for p in ps} == set(r["patterns"])
        for who, items in r["checklist"].items():
            assert 2 <= len(items) <= 6
        # offline thoughts voice the mechanisms of the speaker's patterns, never a checklist item
        own = {" ".join(mech.text.split()).rstrip(". ").lower()
               for p in r["char2pattern"][r["protagonist"]] for mech in lib.pattern(p).mechanisms}
        items = {i.lower().rstrip("?") for p in r["patterns"] for i in lib.pattern(p).checklist}
        thoughts = [t["thought"].lower() for t in r["conversation"] if t["char"] == r["protagonist"]]
        assert thoughts
        voices = [any(text[1:] in th for text in own) for th in thoughts]
        assert all(v or th.startswith("let me see where") for v, th in zip(voices, thoughts))
        voicing += sum(voices)
        assert not any(offline._phrase(i) in th for i in items for th in thoughts)
        assert all({"because", "expect"} <= set(i) for i in r["interactions"])
    # a mechanism that names its pattern is never voiced; one that does not is
    assert (voicing > 0) == (not names_id)


def test_hf_datasetdict_loads(built):
    import datasets

    dd = datasets.load_dataset(str(built / "hf"))
    manifest = json.loads((built / "manifest.json").read_text("utf-8"))
    assert {s: dd[s].num_rows for s in dd} == {s: n for s, n in manifest["splits"].items() if n}
    assert {"id", "split", "patterns", "conversation", "checklist"} <= set(dd["train"].column_names)
    first = json.loads((built / "splits" / "train.jsonl").read_text("utf-8").splitlines()[0])
    assert dd["train"][0] == first  # the typed copy holds exactly the stored record


def test_second_run_is_byte_identical_and_resumes_without_calls(spec, built, tmp_path):
    other = tmp_path / "again"
    assert main(["compile", str(spec), "-o", str(other), "--no-progress"]) == 0
    for path in sorted(p for p in built.rglob("*") if p.is_file()):
        twin = other / path.relative_to(built)
        if path.parent.name == "work" and path.suffix == ".jsonl":  # resume state, in completion order
            assert sorted(twin.read_bytes().splitlines()) == sorted(path.read_bytes().splitlines()), path
        else:
            assert twin.read_bytes() == path.read_bytes(), path
    before = offline.OfflineEngine.calls_total
    lib = h.load(spec)
    manifest = compile_dataset(lib, CompileOptions(out=other, progress=None))
    assert offline.OfflineEngine.calls_total == before  # finished work makes no LM call
    assert manifest["records"] == len(read_jsonl(built / "records.jsonl"))


def test_invalid_outputs_are_retried_then_recorded(spec, tmp_path, monkeypatch):
    def broken(inputs, rng):
        return {"turns": [{"char": "Nobody", "content": "no channels"}]}

    monkeypatch.setitem(offline.GENERATORS, frozenset({"turns"}), broken)
    lib = h.load(spec)
    manifest = compile_dataset(lib, CompileOptions(out=tmp_path / "b", scenarios=5, progress=None))
    failures = read_jsonl(tmp_path / "b" / "failures.jsonl")
    assert len(failures) == 5 and manifest["records"] == 0
    assert all(f["stage"] == "conversations" and "`Nobody` is not a character" in f["reason"] for f in failures)
    assert manifest["retries"] == 5 * 2


def test_stage_plan_only_writes_the_plan(spec, tmp_path):
    out = tmp_path / "p"
    assert main(["compile", str(spec), "-o", str(out), "--stage", "plan", "--scenarios", "7", "--no-progress"]) == 0
    assert len(read_jsonl(out / "plan.jsonl")) == 7
    assert not (out / "records.jsonl").exists()


def test_unknown_dataset_is_a_usage_error(spec, tmp_path, capsys):
    assert main(["compile", str(spec), "-o", str(tmp_path / "x"), "--dataset", "nope"]) == 2
    assert "no dataset named `nope`" in capsys.readouterr().err


def test_compile_does_not_import_torch(spec, tmp_path):
    """torch may not be installed here, so record every attempt to import it, not just success.
    An availability probe (`importlib.util.find_spec`, as `datasets` does) imports nothing."""
    code = f"""
import sys, traceback
tried = []
class Probe:
    def find_spec(self, name, path=None, target=None):
        probing = any("importlib.util" in f.filename for f in traceback.extract_stack())
        if name.split(".")[0] in ("torch", "transformers", "trl") and not probing:
            tried.append(name)
        return None
sys.meta_path.insert(0, Probe())
from humanllm_dsl.cli import main
rc = main(["compile", {str(spec)!r}, "-o", {str(tmp_path / "q")!r}, "--scenarios", "3", "--no-progress"])
print(rc, sorted(set(tried)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0 []"
