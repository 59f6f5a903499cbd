"""Bundle composition and cast: the shipped humanllm plan follows the method; bad compositions are
errors at their line and column; vetting verdicts are recorded and reused."""

import itertools
from collections import Counter

import pytest

import humanllm_dsl as h
from humanllm_dsl.compiler.plan import Verdict, make_plan
from humanllm_dsl.compiler.satisfy import pool
from humanllm_dsl.runtime.composition import composition, gini


@pytest.fixture(scope="module")
def lib():
    return h.load("specs/")


@pytest.fixture(scope="module")
def plan(lib):
    return make_plan(lib, lib.dataset("humanllm"))


def test_humanllm_plan_follows_the_declared_composition(lib, plan):
    by_id = lib.by_id
    held = set(plan.held_out)
    for slot in plan.slots:
        traits = [by_id[p] for p in slot.patterns if by_id[p].is_trait]
        social = [p for p in slot.patterns if not by_id[p].is_trait]
        assert len({t.dimension for t in traits}) == len(traits)
        assert 3 <= len(traits) <= 4 and len(social) <= 1, slot
        if slot.split == "ood_eval":
            assert set(slot.patterns) <= held
    stats = composition(plan.slots, lib, pool=[p.id for p in pool(lib.dataset("humanllm"), lib)])
    assert 0.65 <= stats["per_family"]["social_cognitive"]["mean"] <= 0.75
    assert 0.55 <= stats["positive_pole_share"] <= 0.65
    assert 2.9 <= stats["characters"]["mean"] <= 3.2


def test_no_pattern_set_repeats_more_than_three_times(plan):
    assert max(Counter(frozenset(s.patterns) for s in plan.slots).values()) <= 3


def test_train_sft_samples_are_within_ten_percent_of_the_paper(plan):
    samples = sum(s.characters for s in plan.slots if s.split == "train")
    assert abs(samples - 30_543) <= 0.1 * 30_543, samples


def test_no_excluded_pair_shares_a_scenario(lib, plan):
    excluded = {frozenset(p) for e in lib.exclusions for p in itertools.combinations(e.patterns, 2)}
    assert any(len(e.patterns) > 2 for e in lib.exclusions)
    for slot in plan.slots:
        assert not any(frozenset(p) in excluded for p in itertools.combinations(slot.patterns, 2)), slot


def test_coverage_is_balanced_within_each_family_and_pole(lib, plan):
    usage = Counter(p for s in plan.slots for p in s.patterns)
    for group in ({p.id for p in lib.patterns if not p.is_trait},
                  {p.id for p in lib.patterns if p.pole == "positive"}, {p.id for p in lib.patterns if p.pole == "negative"}):
        counts = [usage[p] for p in group - set(plan.held_out)]
        assert max(counts) - min(counts) <= 0.1 * max(counts) + 3, (min(counts), max(counts))


def test_gini():
    assert gini([5, 5, 5]) == 0
    assert gini([0, 0, 9]) == pytest.approx(2 / 3)


BASE = '''pattern a "a" {
  family social_cognitive
}
dataset d {
  scenarios 10
%s
}
'''


@pytest.mark.parametrize("body, where, words", [
    ("  bundle {\n    trait 3..4, positive 160%\n  }", (7, 26), "more than 100%"),
    ("  bundle {\n    trait 6\n  }", (7, 5), "Big Five"),
    ("  bundle {\n    social_cognitive 1, positive 50%\n  }", (7, 34), "no pole"),
    ("  bundle {\n    trait 1\n    social_cognitive 1 in 70% of scenarios\n  }", (6, 3), "as few as 1 pattern"),
    ("  patterns 2..3\n  bundle {\n    trait 3..4\n  }", (7, 3), "up to 4 patterns"),
    ("  bundle {\n    trait 4..3\n  }", (7, 5), "low end"),
    ("  bundle {\n    moods 2\n  }", (7, 5), "unknown family"),
    ("  cast 2: 30%, 3: 45%", (6, 3), "add up to 75%"),
    ("  characters 2..4\n  cast 2: 50%, 7: 50%", (7, 16), "outside `characters 2..4`"),
])
def test_bad_composition_is_an_error_at_its_line(body, where, words):
    with pytest.raises(h.HpatError) as exc:
        h.check_text(BASE % body, "d.hpat")
    found = [(d.line, d.column, d.message) for d in exc.value.diagnostics if words in d.message]
    assert found and found[0][:2] == where, exc.value.diagnostics


def test_composition_the_library_cannot_fill_is_an_error(lib):
    text = BASE % "  patterns 1..5\n  bundle {\n    social_cognitive 2\n  }"
    with pytest.raises(h.HpatError) as exc:
        h.check_text(text, "d.hpat")
    assert any("cannot be satisfied" in d.message and "only 1 are included" in d.message for d in exc.value.diagnostics)


def test_vetoed_bundles_are_redrawn_and_recorded(lib):
    asked = []

    def vet(patterns):
        asked.append(patterns)
        keep = "talkative" not in patterns
        return Verdict(patterns, keep, "keeps" if keep else "talkative is vetoed")

    ds = lib.dataset("pilot")
    plan = make_plan(lib, ds, vet=vet)
    assert not any("talkative" in s.patterns for s in plan.slots)
    assert any(not v.keep for s in plan.slots for v in s.vetting)
    assert all(any(v.keep and v.patterns == s.patterns for v in s.vetting) for s in plan.slots)
    again = make_plan(lib, ds, vet=lambda p: next(v for s in plan.slots for v in s.vetting if v.patterns == p))
    assert again == plan  # the same verdicts give the same plan
    assert make_plan(lib, ds) == make_plan(lib, ds)  # vetting off: a pure function


def test_compile_vet_records_verdicts_and_reuses_them(tmp_path):
    import json

    from humanllm_dsl.runtime.compile import CompileOptions, compile_dataset
    from humanllm_dsl.runtime.offline import OfflineEngine

    lib = h.load("specs/")
    options = CompileOptions(out=tmp_path, stage="plan", vet=True, progress=None)
    compile_dataset(lib, options)
    rows = [json.loads(line) for line in (tmp_path / "plan.jsonl").read_text().splitlines()]
    assert all(r["vetting"] for r in rows)
    assert any(v["verdict"] == "veto" for r in rows for v in r["vetting"])
    before = OfflineEngine.calls_total
    manifest = compile_dataset(lib, options)
    assert OfflineEngine.calls_total == before  # recorded verdicts answer the re-run
    assert [json.loads(line) for line in (tmp_path / "plan.jsonl").read_text().splitlines()] == rows
    assert manifest["composition"]["max_set_repeat"] >= 1
