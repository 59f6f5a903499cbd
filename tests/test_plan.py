"""The scenario plan: deterministic, exact in size, within ranges, leak-free and balanced."""

from collections import Counter

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import humanllm_dsl as h
from humanllm_dsl.compiler.plan import PlanError, make_plan
from libgen import library_text

libraries = st.builds(
    library_text,
    n_social=st.integers(6, 20), traits_per_pole=st.integers(1, 3), scenarios=st.integers(10, 120),
    seed=st.integers(0, 10_000), hold_social=st.integers(1, 2), hold_trait=st.integers(0, 2),
    id_eval=st.integers(0, 5), ood_eval=st.integers(0, 4), mixed_eval=st.integers(0, 4), interactions=st.integers(0, 40), rng_seed=st.integers(0, 99))


def check_plan(lib, plan):
    ds = lib.dataset()
    by_id = lib.by_id
    held = set(plan.held_out)
    assert len(plan.slots) == ds.scenarios
    assert len({s.id for s in plan.slots}) == len(plan.slots)
    counts = plan.counts()
    assert counts["ood_eval"] == ds.ood_eval and counts["id_eval"] == ds.id_eval
    assert counts["mixed_eval"] >= ds.mixed_eval
    for slot in plan.slots:
        assert ds.patterns[0] <= len(slot.patterns) <= ds.patterns[1] or slot.split == "ood_eval"
        assert ds.characters[0] <= slot.characters <= ds.characters[1]
        assert len(set(slot.patterns)) == len(slot.patterns)
        dims = [by_id[p].dimension for p in slot.patterns if by_id[p].is_trait]
        assert len(dims) == len(set(dims)), "two traits of one Big Five dimension"
        inside = held & set(slot.patterns)
        if slot.split == "ood_eval":
            assert set(slot.patterns) <= held
        elif slot.split in ("train", "id_eval"):
            assert not inside, "held-out pattern leaked into an in-domain slot"
        else:
            assert inside and set(slot.patterns) - held
        for it in slot.interactions:
            assert set(it.patterns) <= set(slot.patterns)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(libraries)
def test_plan_properties(text):
    try:
        lib = h.check_text(text, "lib.hpat")
    except h.HpatError as exc:  # an unsatisfiable random dataset: the checker must say so
        assert all("cannot be satisfied" in d.message for d in exc.diagnostics), exc.diagnostics
        assume(False)
    plan = make_plan(lib, lib.dataset())
    check_plan(lib, plan)
    assert make_plan(lib, lib.dataset()) == plan  # deterministic


def test_plan_is_balanced_at_scale():
    lib = h.check_text(library_text(n_social=30, traits_per_pole=2, scenarios=600, interactions=80), "lib.hpat")
    plan = make_plan(lib, lib.dataset())
    check_plan(lib, plan)
    usage = Counter(p for s in plan.slots for p in s.patterns)
    assert len(usage) == len(lib.patterns)
    assert min(usage.values()) >= 10
    assert max(usage.values()) / min(usage.values()) <= 1.5
    situations = Counter(s.situation for s in plan.slots)
    assert max(situations.values()) - min(situations.values()) <= 1
    domains = Counter(s.domain for s in plan.slots)
    assert max(domains.values()) - min(domains.values()) <= 1
    types = Counter(i.type for s in plan.slots for i in s.interactions)
    assert set(types) == {"reinforce", "conflict", "modulate"}


def test_held_out_follows_quotas_and_distinct_dimensions():
    lib = h.check_text(library_text(hold_social=2, hold_trait=3, scenarios=50), "lib.hpat")
    plan = make_plan(lib, lib.dataset())
    held = [lib.pattern(p) for p in plan.held_out]
    assert sum(not p.is_trait for p in held) == 2
    traits = [p for p in held if p.is_trait]
    assert len(traits) == 3 and len({p.dimension for p in traits}) == 3


def test_seed_changes_the_plan_and_scenarios_override():
    lib = h.check_text(library_text(scenarios=30), "lib.hpat")
    a = make_plan(lib, lib.dataset())
    b = make_plan(lib, lib.dataset(), seed=999)
    assert a != b
    small = make_plan(lib, lib.dataset(), scenarios=9)
    assert len(small.slots) == 9


def test_exclusions_are_honoured():
    text = library_text(n_social=6, traits_per_pole=1, scenarios=80, interactions=0, ood_eval=0, id_eval=0,
                        hold_social=1, hold_trait=0) + "\nexclude sc0, sc1 { because \"test\" }\n"
    lib = h.check_text(text, "lib.hpat")
    plan = make_plan(lib, lib.dataset())
    assert not any({"sc0", "sc1"} <= set(s.patterns) for s in plan.slots)


def test_unplannable_dataset_raises():
    lib = h.check_text(library_text(scenarios=30), "lib.hpat")
    with pytest.raises(PlanError):
        make_plan(lib, attrs.evolve(lib.dataset(), patterns=(40, 50)))
