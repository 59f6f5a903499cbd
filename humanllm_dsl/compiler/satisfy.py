"""Can a dataset be built from a library? The rules the scenario plan relies on, stated once."""

from __future__ import annotations

import attrs

from ..runtime.names import FIRST, LAST
from . import model as m

# The scenario stage offers each scenario `characters + SPARE_NAMES` candidate names, all distinct
# (runtime/pipeline.py), drawn from the name lists of runtime/names.py.
SPARE_NAMES = 2
# What compile can do, per dataset field: (the largest value, why).
LIMITS = {
    "characters": (min(len(set(FIRST)), len(set(LAST))) - SPARE_NAMES,
                   "each scenario needs distinct first names and surnames for its characters and two spares"),
    "turns": (100, "a conversation is written in one LM answer; the method uses 12-20 turns"),
    "scenarios": (1_000_000, "the plan is held in memory; split a larger set into several datasets"),
}


@attrs.frozen
class Problem:
    field: str  # the dataset field to point at
    message: str
    hint: str | None = None


def pool(dataset: m.Dataset, lib: m.Library) -> list[m.Pattern]:
    """The patterns a dataset draws from, in library order."""
    if dataset.include_patterns is None:
        return list(lib.patterns)
    chosen = set(dataset.include_patterns)
    return [p for p in lib.patterns if p.id in chosen]


def largest_bundle(patterns: list[m.Pattern]) -> int:
    """At most one trait per Big Five dimension can share a scenario."""
    social = sum(not p.is_trait for p in patterns)
    return social + len({p.dimension for p in patterns if p.is_trait})


def unsatisfiable(dataset: m.Dataset, lib: m.Library) -> list[Problem]:
    problems: list[Problem] = []
    patterns = pool(dataset, lib)
    low = dataset.patterns[0]
    if largest_bundle(patterns) < low:
        problems.append(Problem("patterns", f"a scenario needs at least {low} patterns but at most "
                                f"{largest_bundle(patterns)} can be combined from the {len(patterns)} available",
                                "lower the `patterns` range or include more patterns (at most one trait per Big Five dimension)"))
    problems += _composition(dataset, patterns)
    hold = dataset.hold_out
    if hold.count:
        social = [p for p in patterns if not p.is_trait]
        dims = {p.dimension for p in patterns if p.is_trait}
        want_social = hold.quotas.get("social_cognitive", 0)
        want_trait = hold.quotas.get("trait", 0)
        if want_social > len(social):
            problems.append(Problem("hold_out", f"it holds out {want_social} social-cognitive patterns but only "
                                    f"{len(social)} are available"))
        if want_trait > len(dims):
            problems.append(Problem("hold_out", f"held-out traits come from different Big Five dimensions, "
                                    f"but only {len(dims)} dimensions are available for {want_trait} traits"))
        if hold.count >= len(patterns):
            problems.append(Problem("hold_out", f"holding out {hold.count} of {len(patterns)} patterns leaves "
                                    "nothing to train on", "hold out fewer patterns"))
        elif largest_bundle(patterns) - min(want_social, len(social)) < low:
            problems.append(Problem("hold_out", "the patterns left after the hold-out cannot fill a scenario of "
                                    f"{low} patterns"))
        if dataset.ood_eval and hold.count < low:
            problems.append(Problem("ood_eval", f"out-of-domain scenarios use only held-out patterns, but "
                                    f"{hold.count} held out cannot fill a scenario of {low}",
                                    "hold out more patterns or lower the `patterns` range"))
    else:
        for split in ("ood_eval", "mixed_eval"):
            if getattr(dataset, split):
                problems.append(Problem(split, f"`{split}` needs held-out patterns", "add `hold_out N` to the split"))
    if dataset.mixed_eval and low < 2:
        problems.append(Problem("mixed_eval", "a mixed scenario needs at least 2 patterns (one held out, one not)",
                                "raise the lower end of `patterns` to 2"))
    evaluation = dataset.id_eval + dataset.ood_eval + dataset.mixed_eval
    if evaluation > dataset.scenarios:
        problems.append(Problem("id_eval", f"{dataset.id_eval} + {dataset.ood_eval} + {dataset.mixed_eval} evaluation "
                                f"scenarios do not fit in {dataset.scenarios}"))
    if not (dataset.include_situations or lib.situations):
        problems.append(Problem("scenarios", "the specs declare no `situation`", "declare at least one situation"))
    if not (dataset.include_domains or lib.domains):
        problems.append(Problem("scenarios", "the specs declare no `domain`", "declare at least one domain"))
    return problems


def unreachable(dataset: m.Dataset, lib: m.Library) -> list[Problem]:
    """Parts of a dataset that can be met but never fully used (warnings)."""
    patterns = pool(dataset, lib)
    most = largest_bundle(patterns)
    low, high = dataset.patterns
    if low <= most < high:
        return [Problem("patterns", f"`patterns {low}..{high}` can never reach {high}: at most {most} of the "
                        f"{len(patterns)} included patterns can share a scenario",
                        f"lower the high end to {most}, or include more patterns "
                        "(at most one trait per Big Five dimension shares a scenario)")]
    return []


def _composition(dataset: m.Dataset, patterns: list[m.Pattern]) -> list[Problem]:
    """Can the included patterns fill the bundle rules?"""
    problems = []
    for rule in dataset.bundle:
        members = [p for p in patterns if p.family == rule.family]
        if rule.family == "trait":
            dims = {p.dimension for p in members}
            if rule.high > len(dims):
                problems.append(Problem("bundle", f"a bundle takes up to {rule.high} traits, each from a different Big "
                                        f"Five dimension, but the included traits cover {len(dims)} dimension"
                                        f"{'s' if len(dims) != 1 else ''}", "lower the trait count or include more traits"))
            poles = {p.pole for p in members}
            for pole, wanted in (("positive", rule.positive), ("negative", None if rule.positive is None else 1 - rule.positive)):
                if wanted and pole not in poles:
                    problems.append(Problem("bundle", f"{wanted:.0%} of trait markers should come from the {pole} pole, "
                                            f"but no included trait has that pole"))
        elif rule.high > len(members):
            problems.append(Problem("bundle", f"a bundle takes up to {rule.high} {rule.family} patterns, but only "
                                    f"{len(members)} are included", f"lower the `{rule.family}` count"))
    return problems
