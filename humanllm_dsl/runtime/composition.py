"""What a plan or a dataset is made of: patterns per family per scenario, characters, turns,
distinct pattern sets and how often one repeats, and how evenly the patterns are used.

Works on plan slots and on records alike (anything with `patterns`, `split` and a cast size),
so `compile --stage plan` can report it before any LM call, and the manifest and the dataset card
after. Pure Python: no heavy import.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from ..compiler import model as m


def gini(values: Iterable[int]) -> float:
    """The Gini coefficient of non-negative counts: 0 when all are equal, towards 1 when few dominate."""
    xs = sorted(values)
    n, total = len(xs), sum(xs)
    if n == 0 or total == 0:
        return 0.0
    weighted = sum((k + 1) * x for k, x in enumerate(xs))
    return (2 * weighted) / (n * total) - (n + 1) / n


def _rows(items: Iterable) -> list[dict]:
    """Slots (attrs objects) or records (dicts) as dicts with patterns, split, characters, turns.
    A record's `characters` and `conversation` may be given as counts (export.RecordStats does)."""
    rows = []
    for item in items:
        if isinstance(item, Mapping):
            cast = item.get("characters")
            turns = item.get("conversation")
            rows.append({"patterns": list(item["patterns"]), "split": item["split"],
                         "characters": len(cast) if isinstance(cast, list) else cast,
                         "turns": len(turns) if isinstance(turns, list) else turns})
        else:
            rows.append({"patterns": list(item.patterns), "split": item.split, "characters": item.characters,
                         "turns": None})
    return rows


def _usage(counts: list[int]) -> dict:
    return {"patterns": len(counts), "min": min(counts, default=0), "max": max(counts, default=0),
            "gini": round(gini(counts), 4)}


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 3) if values else 0.0


def composition(items: Iterable, lib: m.Library, *, pool: Iterable[str] | None = None) -> dict:
    """Statistics of slots or records. `pool`: the patterns the dataset may use (for unused ones)."""
    rows = _rows(items)
    by_id = lib.by_id
    n = len(rows)
    per_family: dict[str, list[int]] = {f: [] for f in m.FAMILIES}
    positive = negative = 0
    for r in rows:
        fams = Counter(by_id[p].family for p in r["patterns"])
        for f in m.FAMILIES:
            per_family[f].append(fams.get(f, 0))
        poles = Counter(by_id[p].pole for p in r["patterns"] if by_id[p].is_trait)
        positive += poles.get("positive", 0)
        negative += poles.get("negative", 0)
    sets = Counter(frozenset(r["patterns"]) for r in rows)
    usage = Counter(p for r in rows for p in r["patterns"])
    names = list(pool) if pool is not None else sorted(usage)
    counts = [usage.get(p, 0) for p in names]
    characters = [r["characters"] for r in rows if r["characters"] is not None]
    turns = [r["turns"] for r in rows if r["turns"] is not None]
    result = {
        "scenarios": n,
        "patterns_per_scenario": _mean([len(r["patterns"]) for r in rows]),
        "per_family": {f: {"mean": _mean(v), "none": round(v.count(0) / n, 4) if n else 0.0,
                           "histogram": {str(k): c for k, c in sorted(Counter(v).items())}}
                       for f, v in per_family.items()},
        "positive_pole_share": round(positive / (positive + negative), 4) if positive + negative else None,
        "characters": {"mean": _mean(characters),
                       "histogram": {str(k): c for k, c in sorted(Counter(characters).items())}},
        "turns": {"mean": _mean(turns), "min": min(turns), "max": max(turns)} if turns else None,
        "distinct_sets": len(sets),
        "max_set_repeat": max(sets.values(), default=0),
        "usage": {"patterns": len(names), "unused": sum(c == 0 for c in counts), "min": min(counts, default=0),
                  "max": max(counts, default=0), "gini": round(gini(counts), 4)},
        "usage_by_family": {f: _usage([usage.get(p, 0) for p in names if by_id[p].family == f]) for f in m.FAMILIES},
        "sft_samples": {split: sum(r["characters"] or 0 for r in rows if r["split"] == split) for split in m.SPLITS},
    }
    return result


def card_lines(stats: dict) -> list[str]:
    """The composition as dataset-card Markdown lines."""
    fam = stats["per_family"]
    usage = stats["usage"]
    lines = ["| measure | value |", "|---|---|",
             f"| patterns per scenario | {stats['patterns_per_scenario']:.2f} |"]
    lines += [f"| {f} patterns per scenario | {fam[f]['mean']:.2f} (none in {fam[f]['none']:.1%}) |" for f in fam]
    if stats["positive_pole_share"] is not None:
        lines.append(f"| positive-pole share of trait markers | {stats['positive_pole_share']:.1%} |")
    lines.append(f"| characters per scenario | {stats['characters']['mean']:.2f} |")
    if stats["turns"]:
        t = stats["turns"]
        lines.append(f"| turns per conversation | {t['mean']:.1f} ({t['min']}-{t['max']}) |")
    unused = f", {usage['unused']} unused" if usage["unused"] else ""
    lines += [f"| distinct pattern sets | {stats['distinct_sets']} of {stats['scenarios']} scenarios |",
              f"| most repeats of one pattern set | {stats['max_set_repeat']} |",
              f"| uses per pattern | min {usage['min']}, max {usage['max']}, Gini {usage['gini']:.3f}{unused} |"]
    lines += [f"| uses per {f} pattern | min {u['min']}, max {u['max']}, Gini {u['gini']:.3f} |"
              for f, u in stats["usage_by_family"].items() if u["patterns"]]
    return lines


def summary(stats: dict) -> str:
    """A few lines for the terminal (`compile --stage plan`)."""
    fam = stats["per_family"]
    usage = stats["usage"]
    parts = ", ".join(f"{f} {fam[f]['mean']:.2f} (none {fam[f]['none']:.0%})" for f in fam)
    return (f"composition: {stats['patterns_per_scenario']:.2f} patterns per scenario ({parts}); "
            f"{stats['characters']['mean']:.2f} characters; {stats['distinct_sets']} distinct sets, "
            f"at most {stats['max_set_repeat']} of one; uses per pattern {usage['min']}-{usage['max']} "
            f"(Gini {usage['gini']:.3f}; within families " + ", ".join(
                f"{f} {u['min']}-{u['max']}" for f, u in stats["usage_by_family"].items() if u["patterns"])
            + f"); train SFT samples (one per character) {stats['sft_samples']['train']}")
