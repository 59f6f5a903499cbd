"""The scenario plan: a pure, deterministic function of (library, dataset, seed).

Each slot fixes what a scenario must contain: its patterns, the declared interactions among
them, a situation, a domain, a character count and a split. `mixed_eval N` slots start from a
held-out pattern and add in-domain ones; other training-pool slots that happen to draw a
held-out pattern are mixed_eval too. Coverage is balanced
by always drawing the least-used pattern next; exclusions and the Big Five rule (at most one
trait per dimension) are honoured.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter

import attrs

from . import model as m
from .satisfy import pool, unsatisfiable


class PlanError(ValueError):
    """The dataset cannot be planned from this library."""


@attrs.frozen
class SlotInteraction:
    patterns: tuple[str, ...]
    type: str
    direction: m.Direction | None = None


@attrs.frozen
class Slot:
    id: str
    split: str
    patterns: tuple[str, ...]
    interactions: tuple[SlotInteraction, ...]
    situation: str
    domain: str
    characters: int


@attrs.frozen
class Plan:
    dataset: str
    seed: int
    held_out: tuple[str, ...]
    slots: tuple[Slot, ...]

    def counts(self) -> dict[str, int]:
        c = Counter(s.split for s in self.slots)
        return {split: c.get(split, 0) for split in m.SPLITS}


class _Drawer:
    """Draws pattern bundles, least-used first, respecting exclusions and the Big Five rule."""

    def __init__(self, lib: m.Library, rng: random.Random, usage: Counter):
        self.lib, self.rng, self.usage = lib, rng, usage
        self.by_id = lib.by_id
        self.excluded = {frozenset(p) for e in lib.exclusions for p in itertools.combinations(e.patterns, 2)}
        self.partners: dict[str, set[str]] = {}
        for it in lib.interactions:
            for a, b in itertools.permutations(it.patterns, 2):
                self.partners.setdefault(a, set()).add(b)

    def compatible(self, chosen: list[str], candidate: str) -> bool:
        if candidate in chosen:
            return False
        p = self.by_id[candidate]
        for other in chosen:
            if frozenset((other, candidate)) in self.excluded:
                return False
            q = self.by_id[other]
            if p.is_trait and q.is_trait and p.dimension == q.dimension:
                return False
        return True

    def bundle(self, candidates: list[str], size: int, first_from: list[str] | None = None) -> list[str]:
        """`size` compatible patterns: the first from `first_from` if given, the others from `candidates`."""
        usage, rng = self.usage, self.rng
        order = sorted(candidates, key=usage.__getitem__)  # stable: ties keep library order
        blocks = [list(group) for _, group in itertools.groupby(order, key=usage.__getitem__)]
        allowed = set(candidates)
        floor = usage[order[0]] if order else 0
        chosen: list[str] = []
        while len(chosen) < size:
            pick = None
            if chosen:  # prefer a partner with a declared interaction, if it is not over-used
                linked = sorted({c for x in chosen for c in self.partners.get(x, _EMPTY)
                                 if c in allowed and usage[c] <= floor + 1 and self.compatible(chosen, c)})
                if linked:
                    least = min(usage[c] for c in linked)
                    pick = rng.choice([c for c in linked if usage[c] == least])
            if pick is None and not chosen and first_from is not None:
                first = sorted(first_from, key=usage.__getitem__)
                pick = self._least_used([list(g) for _, g in itertools.groupby(first, key=usage.__getitem__)], chosen)
            if pick is None:
                pick = self._least_used(blocks, chosen)
            if pick is None:
                break
            chosen.append(pick)
        for c in chosen:
            usage[c] += 1
        return chosen

    def _least_used(self, blocks: list[list[str]], chosen: list[str]) -> str | None:
        """A random compatible pattern from the least-used block that has one."""
        for block in blocks:
            for _ in range(8):  # most patterns are compatible: sample before scanning
                c = block[self.rng.randrange(len(block))]
                if self.compatible(chosen, c):
                    return c
            fits = [c for c in block if self.compatible(chosen, c)]
            if fits:
                return self.rng.choice(fits)
        return None


_EMPTY: frozenset = frozenset()


def choose_held_out(lib: m.Library, dataset: m.Dataset, rng: random.Random) -> tuple[str, ...]:
    hold = dataset.hold_out
    if not hold.count:
        return ()
    patterns = pool(dataset, lib)
    social = sorted(p.id for p in patterns if not p.is_trait)
    traits_by_dim: dict[str, list[str]] = {}
    for p in patterns:
        if p.is_trait:
            traits_by_dim.setdefault(p.dimension, []).append(p.id)
    n_social = hold.quotas.get("social_cognitive")
    n_trait = hold.quotas.get("trait")
    if n_social is None and n_trait is None:  # no quotas: any mix, traits still one per dimension
        n_trait = rng.randint(max(0, hold.count - len(social)), min(hold.count, len(traits_by_dim)))
        n_social = hold.count - n_trait
    n_social, n_trait = n_social or 0, n_trait or 0
    chosen = rng.sample(social, n_social)
    for dim in rng.sample(sorted(traits_by_dim), n_trait):
        chosen.append(rng.choice(sorted(traits_by_dim[dim])))
    return tuple(sorted(chosen))


def _balanced(options: list[str], usage: Counter, rng: random.Random) -> str:
    low = min(usage[o] for o in options)
    pick = rng.choice([o for o in options if usage[o] == low])
    usage[pick] += 1
    return pick


def make_plan(lib: m.Library, dataset: m.Dataset, *, scenarios: int | None = None,
              seed: int | None = None) -> Plan:
    """Plan `scenarios` slots (default: the dataset's count) with `seed` (default: the dataset's)."""
    if scenarios is not None:
        dataset = attrs.evolve(dataset, scenarios=scenarios, id_eval=min(dataset.id_eval, scenarios),
                               ood_eval=min(dataset.ood_eval, scenarios), mixed_eval=min(dataset.mixed_eval, scenarios))
        if dataset.id_eval + dataset.ood_eval + dataset.mixed_eval > scenarios:  # shrink evaluation sets with the dataset
            share = scenarios // 4
            dataset = attrs.evolve(dataset, id_eval=min(dataset.id_eval, share), ood_eval=min(dataset.ood_eval, share),
                                   mixed_eval=min(dataset.mixed_eval, share))
    if seed is not None:
        dataset = attrs.evolve(dataset, seed=seed)
    problems = unsatisfiable(dataset, lib)
    if problems:
        raise PlanError("; ".join(p.message for p in problems))
    rng = random.Random(dataset.seed)
    held = choose_held_out(lib, dataset, rng)
    held_set = set(held)
    everything = [p.id for p in pool(dataset, lib)]
    in_domain = [p for p in everything if p not in held_set]
    situations = list(dataset.include_situations or [s.id for s in lib.situations])
    domains = list(dataset.include_domains or [d.id for d in lib.domains])
    usage: Counter = Counter()
    drawer = _Drawer(lib, rng, usage)
    sit_use, dom_use = Counter(), Counter()
    lo, hi = dataset.patterns
    rest = dataset.scenarios - dataset.ood_eval - dataset.id_eval - dataset.mixed_eval
    wanted = (["ood_eval"] * dataset.ood_eval + ["id_eval"] * dataset.id_eval + ["mixed_eval"] * dataset.mixed_eval
              + ["rest"] * rest)
    slots = []
    by_pattern: dict[str, list[m.Interaction]] = {}
    for it in lib.interactions:
        by_pattern.setdefault(it.patterns[0], []).append(it)
    for number, kind in enumerate(wanted, start=1):
        candidates = {"ood_eval": list(held), "id_eval": in_domain, "mixed_eval": in_domain}.get(kind, everything)
        size = rng.randint(lo, hi)
        patterns = drawer.bundle(candidates, size, first_from={"rest": in_domain, "mixed_eval": list(held)}.get(kind))
        if len(patterns) < lo:
            raise PlanError(f"could not draw {lo} compatible patterns for a {kind} scenario")
        if kind == "rest":
            kind = "mixed_eval" if held_set & set(patterns) else "train"
        chosen = set(patterns)
        found = tuple(SlotInteraction(it.patterns, it.type, it.direction)
                      for it in _among(by_pattern, patterns) if chosen.issuperset(it.patterns))
        c_lo, c_hi = dataset.characters
        slots.append(Slot(
            id=f"{dataset.id}-{number:05d}", split=kind, patterns=tuple(patterns), interactions=found,
            situation=_balanced(situations, sit_use, rng), domain=_balanced(domains, dom_use, rng),
            characters=rng.randint(c_lo, c_hi)))
    return Plan(dataset.id, dataset.seed, held, tuple(slots))


def _among(by_first: dict[str, list[m.Interaction]], patterns: list[str]) -> list[m.Interaction]:
    """Interactions whose first pattern is in `patterns`, in library order (each once)."""
    return [it for p in patterns for it in by_first.get(p, ())]
