"""The scenario plan: a pure, deterministic function of (library, dataset, seed), and of the
recorded verdicts when bundles are vetted.

Each slot fixes what a scenario must contain: its patterns, the declared interactions among
them, a situation, a domain, a character count and a split. `mixed_eval N` slots start from a
held-out pattern and add in-domain ones; other training-pool slots that happen to draw a
held-out pattern are mixed_eval too.

A bundle follows the dataset's composition (`bundle { ... }`): per family a count, for traits a
pole per marker, and whether the family appears at all; without one, it takes `patterns lo..hi`
patterns of any family. Within each group (a family, and for traits a pole) the least-used
pattern is drawn next, so coverage stays balanced within the composition. Exclusions and the
Big Five rule (at most one trait per dimension) always hold. A bundle whose pattern set was
already drawn, or that the vetting program vetoes, is drawn again.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable

import attrs

from . import model as m
from .satisfy import pool, unsatisfiable

REDRAWS = 24  # draws per slot before the least-repeated bundle is kept (a repeat) or planning fails (vetoes)


class PlanError(ValueError):
    """The dataset cannot be planned from this library."""


@attrs.frozen
class SlotInteraction:
    patterns: tuple[str, ...]
    type: str
    direction: m.Direction | None = None


@attrs.frozen
class Verdict:
    """The vetting program's answer on one bundle."""

    patterns: tuple[str, ...]
    keep: bool
    reason: str


@attrs.frozen
class Slot:
    id: str
    split: str
    patterns: tuple[str, ...]
    interactions: tuple[SlotInteraction, ...]
    situation: str
    domain: str
    characters: int
    vetting: tuple[Verdict, ...] = ()  # every verdict asked for this slot, in order (vetting on)


@attrs.frozen
class Plan:
    dataset: str
    seed: int
    held_out: tuple[str, ...]
    slots: tuple[Slot, ...]

    def counts(self) -> dict[str, int]:
        c = Counter(s.split for s in self.slots)
        return {split: c.get(split, 0) for split in m.SPLITS}


Vet = Callable[[tuple[str, ...]], Verdict]
Group = tuple[str, str | None] | None  # (family, pole) under a composition; None without one


class _Drawer:
    """Draws pattern bundles: per group least-used first, respecting exclusions and the Big Five rule."""

    def __init__(self, lib: m.Library, rng: random.Random, usage: Counter, rules: tuple[m.FamilyRule, ...]):
        self.lib, self.rng, self.usage, self.rules = lib, rng, usage, rules
        self.by_id = lib.by_id
        self.excluded = {frozenset(p) for e in lib.exclusions for p in itertools.combinations(e.patterns, 2)}
        self.partners: dict[str, set[str]] = {}
        for it in lib.interactions:
            for a, b in itertools.permutations(it.patterns, 2):
                self.partners.setdefault(a, set()).add(b)
        self._groups: dict[tuple[str, ...], dict[Group, list[str]]] = {}
        self.slack = 0

    def group_of(self, pattern_id: str) -> Group:
        if not self.rules:
            return None
        p = self.by_id[pattern_id]
        return (p.family, p.pole if p.is_trait else None)

    def groups(self, candidates: list[str]) -> dict[Group, list[str]]:
        key = tuple(candidates)
        found = self._groups.get(key)
        if found is None:
            found = self._groups[key] = {}
            for c in candidates:
                found.setdefault(self.group_of(c), []).append(c)
        return found

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

    def wanted(self, size_range: tuple[int, int]) -> list[Group]:
        """The groups one bundle takes a pattern from, in drawing order."""
        rng = self.rng
        if not self.rules:
            return [None] * rng.randint(*size_range)
        wanted: list[Group] = []
        for rule in self.rules:
            if rule.share < 1 and rng.random() >= rule.share:
                continue
            for _ in range(rng.randint(rule.low, rule.high)):
                if rule.family != "trait":
                    wanted.append((rule.family, None))
                elif rule.positive is None:
                    wanted.append((rule.family, rng.choice(m.POLES)))
                else:
                    wanted.append((rule.family, "positive" if rng.random() < rule.positive else "negative"))
        return wanted

    def draw(self, candidates: list[str], wanted: list[Group], first_from: list[str] | None = None,
             at_least: int = 0, slack: int = 0) -> list[str]:
        """A bundle for `wanted` (usage unchanged): the first pattern from `first_from` if given, the
        others from `candidates`; a group with no compatible pattern left lends its place to another
        pole of its family; the bundle is topped up to `at_least` from any group. With `slack` k, a
        pattern used up to k times more than the least-used counts as least used (for redraws)."""
        self.slack = slack
        groups = self.groups(candidates)
        chosen: list[str] = []
        todo = list(wanted)
        if first_from is not None:
            firsts = self.groups(first_from)
            for k, group in enumerate(todo):
                pick = self._least_used(firsts.get(group, ()), chosen)
                if pick is not None:
                    chosen.append(pick)
                    del todo[k]
                    break
            else:  # the drawn composition has no place a `first_from` pattern fits: take one anyway
                pick = self._least_used(first_from, chosen)
                if pick is None:
                    return []
                chosen.append(pick)
                todo = self._without_place_for(todo, pick)
        for group in todo:
            pick = self._partner(groups.get(group, ()), chosen) or self._least_used(groups.get(group, ()), chosen)
            if pick is None and group is not None:  # e.g. no compatible trait of this pole left
                pick = self._least_used([c for g, members in groups.items() if g and g[0] == group[0]
                                         for c in members], chosen)
            if pick is not None:
                chosen.append(pick)
        while len(chosen) < at_least:
            pick = self._least_used(candidates, chosen)
            if pick is None:
                break
            chosen.append(pick)
        return chosen

    def _without_place_for(self, todo: list[Group], pick: str) -> list[Group]:
        """`todo` less one place of `pick`'s family, if it has one."""
        family = self.by_id[pick].family
        for k, group in enumerate(todo):
            if group is None or group[0] == family:
                return todo[:k] + todo[k + 1:]
        return todo

    def commit(self, chosen: list[str]) -> None:
        for c in chosen:
            self.usage[c] += 1

    def _partner(self, members, chosen: list[str]) -> str | None:
        """A least-used member with a declared interaction with a chosen pattern, if it is not over-used."""
        if not chosen or not members or self.slack:
            return None
        usage = self.usage
        floor = min(usage[c] for c in members)
        linked = sorted({c for x in chosen for c in self.partners.get(x, _EMPTY)}.intersection(members))
        linked = [c for c in linked if usage[c] <= floor + 1 and self.compatible(chosen, c)]
        if not linked:
            return None
        least = min(usage[c] for c in linked)
        return self.rng.choice([c for c in linked if usage[c] == least])

    def _least_used(self, members, chosen: list[str]) -> str | None:
        """A random compatible pattern among the least-used members that have one."""
        usage = self.usage
        order = sorted(members, key=usage.__getitem__)  # stable: ties keep library order
        if not order:
            return None
        floor, slack = usage[order[0]], self.slack
        for _, group in itertools.groupby(order, key=lambda c: max(usage[c] - floor - slack, 0)):
            block = list(group)
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
              seed: int | None = None, vet: Vet | None = None) -> Plan:
    """Plan `scenarios` slots (default: the dataset's count) with `seed` (default: the dataset's).

    `vet`, if given, is asked about each drawn bundle; a vetoed bundle is drawn again, and the
    verdicts are kept in the slot. Given the same verdicts, the plan is the same."""
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
    drawer = _Drawer(lib, rng, usage, dataset.bundle)
    seen: Counter = Counter()  # pattern set -> slots that hold it
    sit_use, dom_use = Counter(), Counter()
    lo, hi = dataset.patterns
    rest = dataset.scenarios - dataset.ood_eval - dataset.id_eval - dataset.mixed_eval
    wanted = (["ood_eval"] * dataset.ood_eval + ["id_eval"] * dataset.id_eval + ["mixed_eval"] * dataset.mixed_eval
              + ["rest"] * rest)
    sizes = [c.size for c in dataset.cast]
    weights = [c.weight for c in dataset.cast]
    slots = []
    by_pattern: dict[str, list[m.Interaction]] = {}
    for it in lib.interactions:
        by_pattern.setdefault(it.patterns[0], []).append(it)
    for number, kind in enumerate(wanted, start=1):
        candidates = {"ood_eval": list(held), "id_eval": in_domain, "mixed_eval": in_domain}.get(kind, everything)
        first_from = {"rest": in_domain, "mixed_eval": list(held)}.get(kind)
        # out-of-domain bundles follow the composition as far as the held-out set allows, topped up to `lo`
        at_least = lo if kind == "ood_eval" else 0
        patterns, verdicts = _choose(drawer, seen, vet, candidates, first_from, at_least, (lo, hi))
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
            characters=rng.choices(sizes, weights)[0] if sizes else rng.randint(c_lo, c_hi), vetting=verdicts))
    return Plan(dataset.id, dataset.seed, held, tuple(slots))


def _choose(drawer: _Drawer, seen: Counter, vet: Vet | None, candidates: list[str], first_from: list[str] | None,
            at_least: int, size_range: tuple[int, int]) -> tuple[list[str], tuple[Verdict, ...]]:
    """Draw until a bundle is new (and kept by `vet`); after REDRAWS draws keep the least-repeated
    kept bundle. Usage and `seen` are updated for the bundle chosen."""
    best: list[str] | None = None
    verdicts: list[Verdict] = []
    wanted = drawer.wanted(size_range)  # kept: redrawing the composition would bias it towards varied bundles
    for attempt in range(REDRAWS):
        if attempt >= REDRAWS // 2:  # a composition the candidates can fill only in few ways (held-out sets)
            wanted = drawer.wanted(size_range)
        patterns = drawer.draw(candidates, wanted, first_from, at_least, slack=attempt)
        key = frozenset(patterns)
        if best is not None and seen[key] >= seen[frozenset(best)]:
            continue
        if vet is not None and patterns:
            verdict = vet(tuple(patterns))
            verdicts.append(verdict)
            if not verdict.keep:
                continue
        best = patterns
        if not seen[key]:
            break
    if best is None:
        reasons = "; ".join(sorted({v.reason for v in verdicts}))[:300]
        raise PlanError(f"every one of {REDRAWS} bundles drawn for a scenario was vetoed ({reasons})")
    drawer.commit(best)
    seen[frozenset(best)] += 1
    return best, tuple(verdicts)


def _among(by_first: dict[str, list[m.Interaction]], patterns: list[str]) -> list[m.Interaction]:
    """Interactions whose first pattern is in `patterns`, in library order (each once)."""
    return [it for p in patterns for it in by_first.get(p, ())]
