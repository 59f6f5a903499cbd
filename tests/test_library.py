"""The shipped pattern library in specs/: complete, clean and usable by the plan."""

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

import humanllm_dsl as h
from humanllm_dsl.compiler.checker import _name_regex
from humanllm_dsl.compiler.loader import check_paths
from humanllm_dsl.compiler.plan import make_plan

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
TSV = ROOT / "docs" / "patterns.tsv"


@pytest.fixture(scope="module")
def result():
    return check_paths([SPECS])


@pytest.fixture(scope="module")
def lib(result):
    assert result.library is not None, "\n".join(d.render() for d in result.errors[:20])
    return result.library


def pattern_id(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower().replace("&", " and ")).strip("_")


def test_check_is_clean(result):
    assert [d.render() for d in result.diagnostics] == []


def test_counts_and_names_match_the_reference_list(lib):
    with TSV.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == 244
    by_id = lib.by_id
    assert len(lib.patterns) == 244
    assert sum(p.is_trait for p in lib.patterns) == 100
    for row in rows:
        p = by_id[pattern_id(row["name"])]
        assert p.name == row["name"]
        if row["family"] == "trait":
            assert p.family == "trait"
            assert p.dimension == row["big_five_dimension"].replace(" ", "_")
            assert p.pole == {"+": "positive", "-": "negative"}[row["pole"]]
        else:
            assert p.family == "social_cognitive"
    dims = Counter(p.dimension for p in lib.patterns if p.is_trait)
    assert set(dims.values()) == {20}
    poles = Counter((p.dimension, p.pole) for p in lib.patterns if p.is_trait)
    assert set(poles.values()) == {10}


def test_pattern_content(lib):
    seen: dict[str, str] = {}
    for p in lib.patterns:
        assert 12 <= len(p.checklist) <= 15, p.id
        assert len(p.manifestations) >= 3, p.id
        assert len(p.sources) >= 2, p.id
        sentences = len(re.findall(r"[.!?](\s|$)", p.definition))
        assert 2 <= sentences <= 5, (p.id, sentences)
        kinds = {m.kind for m in p.mechanisms}
        assert ({"cognitive", "emotional", "behavioral"} <= kinds) if p.is_trait else ({"cognitive", "emotional"} <= kinds), p.id
        name = _name_regex(p.name)
        for item in p.checklist:
            key = " ".join(re.findall(r"\w+", item.lower()))
            assert key not in seen, f"{p.id} repeats an item of {seen.get(key)}: {item}"
            seen[key] = p.id
            assert not (name and name.search(item)), (p.id, item)
            assert item.startswith("Does the character") and item.endswith("?"), (p.id, item)


def test_interactions(lib):
    types = Counter(i.type for i in lib.interactions)
    assert len(lib.interactions) >= 300
    assert all(types[t] >= 60 for t in ("reinforce", "conflict", "modulate")), types
    covered = {p for i in lib.interactions for p in i.patterns}
    assert covered == {p.id for p in lib.patterns}
    assert all(i.because and i.expect for i in lib.interactions)
    assert all(e.because for e in lib.exclusions)


def test_situations_domains_and_datasets(lib):
    assert len(lib.situations) == 8 and len(lib.domains) == 6
    full = lib.dataset("humanllm")
    assert (full.scenarios, full.patterns, full.characters, full.turns, full.seed) == (11359, (2, 5), (2, 6), (12, 20), 42)
    assert full.hold_out.count == 8 and full.hold_out.quotas == {"social_cognitive": 4, "trait": 4}
    assert (full.id_eval, full.ood_eval) == (50, 50)
    pilot = lib.dataset()
    assert pilot.id == "pilot" and 40 <= pilot.scenarios <= 80


@pytest.mark.parametrize("name", ["humanllm", "pilot"])
def test_datasets_plan(lib, name):
    dataset = lib.dataset(name)
    plan = make_plan(lib, dataset, scenarios=min(dataset.scenarios, 600))
    held = [lib.pattern(p) for p in plan.held_out]
    assert len(held) == 8 and sum(p.is_trait for p in held) == 4
    assert len({p.dimension for p in held if p.is_trait}) == 4
    assert plan.counts()["ood_eval"] == dataset.ood_eval
    assert not any(set(plan.held_out) & set(s.patterns) for s in plan.slots if s.split == "train")


def test_formatting_is_canonical():
    for path in SPECS.rglob("*.hpat"):
        text = path.read_text(encoding="utf-8")
        assert h.format_module(h.parse_text(text, str(path))) == text, path
