"""Aggregation: IPE, MPD and holistic scores, mean and spread over judge runs, breakdowns.

For one judge run: a sample's IPE is the mean of its ipe item scores (each -1, 0 or +1), pooled
over all the character's patterns (`pooled`, the default: a pattern with more items weighs more),
or the mean over its patterns of each pattern's item mean (`pattern`: every pattern weighs the
same); the run's IPE is 100 x the mean of the sample IPEs (so in [-100, 100]); the same for MPD with the
mpd items. Samples with no item of a kind, and samples whose judging failed in that run, do not
count for that run. Over k runs: the mean of the run scores and their standard deviation
(sample standard deviation, n - 1; 0 for one run).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence

import attrs

KINDS = {"IPE": "ipe", "MPD": "mpd"}
IPE_AVERAGES = ("pooled", "pattern")
HOLISTIC = ("anthropomorphism", "fidelity")


@attrs.frozen
class Scored:
    """One sample judged in one run, reduced to what aggregation needs."""

    sample: str
    run: int
    split: str = ""
    patterns: tuple[str, ...] = ()
    interactions: tuple[str, ...] = ()
    ipe: tuple[tuple[str, int], ...] = ()   # (pattern id, score) per ipe item
    mpd: tuple[int, ...] = ()


def item_mean(scores: Sequence[int]) -> float | None:
    """The mean of one sample's item scores, or None when there are none.

    Args:
        scores: item scores, each -1, 0 or 1.
    """
    return sum(scores) / len(scores) if scores else None


def percent(sample_means: Iterable[float | None]) -> float | None:
    """100 x the mean over samples, skipping samples without a score; None if none has one.

    Args:
        sample_means: per-sample means in [-1, 1] (or None).
    """
    values = [v for v in sample_means if v is not None]
    return 100.0 * sum(values) / len(values) if values else None


def mean_std(values: Iterable[float | None]) -> dict:
    """Mean and sample standard deviation (n - 1) of per-run scores; runs without a score are left out.

    Args:
        values: one score per judge run (None for a run with nothing to score).
    Returns:
        `{"mean", "std", "runs"}`: mean and std are None when no run has a score; std is 0.0 for one run.
    """
    runs = [v for v in values if v is not None and not math.isnan(v)]
    if not runs:
        return {"mean": None, "std": None, "runs": []}
    std = statistics.stdev(runs) if len(runs) > 1 else 0.0
    return {"mean": statistics.fmean(runs), "std": std, "runs": runs}


ItemFilter = Callable[[str], bool]


def _all(_pattern: str) -> bool:
    return True


def sample_score(s: Scored, metric: str, keep: ItemFilter = _all, average: str = "pooled") -> float | None:
    """One sample's mean item score for `IPE` (ipe items whose pattern passes `keep`) or `MPD`.

    Args:
        s: the judged sample.
        metric: `IPE` or `MPD`.
        keep: which patterns' ipe items count (MPD ignores it).
        average: IPE over the character's patterns: `pooled` (one mean over all their items) or
            `pattern` (the mean of each pattern's item mean).
    """
    if metric != "IPE":
        return item_mean(list(s.mpd))
    if average not in IPE_AVERAGES:
        raise ValueError(f"unknown IPE average `{average}` (one of: {', '.join(IPE_AVERAGES)})")
    kept = [(pattern, score) for pattern, score in s.ipe if keep(pattern)]
    if average == "pooled":
        return item_mean([score for _, score in kept])
    by_pattern: dict[str, list[int]] = {}
    for pattern, score in kept:
        by_pattern.setdefault(pattern, []).append(score)
    return item_mean([item_mean(scores) for scores in by_pattern.values()])


def metric_summary(members: Sequence[tuple[Scored, ItemFilter]], runs: Sequence[int], metric: str,
                   average: str = "pooled") -> dict:
    """A metric over samples, per run, then mean and std over runs, with the sample count `n`.

    Args:
        members: judged samples (all runs), each with the filter of which patterns' ipe items count.
        runs: the run numbers to report.
        metric: `IPE` or `MPD`.
        average: how IPE averages over a character's patterns (see `sample_score`).
    """
    per_run, counted = [], set()
    for r in runs:
        means = [(s.sample, sample_score(s, metric, keep, average)) for s, keep in members if s.run == r]
        counted |= {sid for sid, v in means if v is not None}
        per_run.append(percent(v for _, v in means))
    return {**mean_std(per_run), "n": len(counted)}


def _summary(members: Sequence[tuple[Scored, ItemFilter]], runs: Sequence[int], average: str = "pooled") -> dict:
    return {metric: metric_summary(members, runs, metric, average) for metric in KINDS}


def summary(scored: Sequence[Scored], runs: Sequence[int], average: str = "pooled") -> dict:
    """`{"IPE": {...}, "MPD": {...}}` for a set of judged samples, all their items counting.

    Args:
        scored: judged samples (all runs).
        runs: the run numbers to report.
        average: how IPE averages over a character's patterns (see `sample_score`).
    """
    return _summary([(s, _all) for s in scored], runs, average)


# ---- breakdowns: each maps a sample to its groups, with the ipe items that count there ----
def by_split(s: Scored, patterns: dict) -> list[tuple[str, ItemFilter]]:
    """Group by split.

    Args:
        s: the judged sample.
        patterns: `patterns.json` of the build.
    """
    return [(s.split, _all)]


def by_pattern(s: Scored, patterns: dict) -> list[tuple[str, ItemFilter]]:
    """Group by each pattern the character carries; IPE counts only that pattern's items.

    Args:
        s: the judged sample.
        patterns: `patterns.json` of the build.
    """
    return [(p, lambda q, p=p: q == p) for p in s.patterns]


def by_family(s: Scored, patterns: dict) -> list[tuple[str, ItemFilter]]:
    """Group by pattern family (social_cognitive / trait); IPE counts only that family's items.

    Args:
        s: the judged sample.
        patterns: `patterns.json` of the build.
    """
    def family(p: str) -> str:
        return patterns.get(p, {}).get("family", "unknown")
    return [(f, lambda q, f=f: family(q) == f) for f in dict.fromkeys(family(p) for p in s.patterns)]


def by_interaction(s: Scored, patterns: dict) -> list[tuple[str, ItemFilter]]:
    """Group by the interaction types of the sample's scenario (reinforce / conflict / modulate;
    `none` for a scenario without declared interactions).

    Args:
        s: the judged sample.
        patterns: `patterns.json` of the build.
    """
    return [(t, _all) for t in (s.interactions or ("none",))]


BREAKDOWNS: dict[str, Callable[[Scored, dict], list[tuple[str, ItemFilter]]]] = {
    "split": by_split, "pattern": by_pattern, "family": by_family, "interaction": by_interaction,
}


def breakdown(scored: Sequence[Scored], runs: Sequence[int], groups: Callable, patterns: dict,
              average: str = "pooled") -> dict:
    """`{group: {"IPE": ..., "MPD": ...}}` for one breakdown.

    Args:
        scored: judged samples (all runs).
        runs: the run numbers to report.
        groups: a function of `BREAKDOWNS`.
        patterns: `patterns.json` of the build.
        average: how IPE averages over a character's patterns (see `sample_score`).
    """
    members: dict[str, list[tuple[Scored, ItemFilter]]] = {}
    for s in scored:
        for key, keep in groups(s, patterns):
            members.setdefault(key, []).append((s, keep))
    return {key: _summary(members[key], runs, average) for key in sorted(members)}


def breakdowns(scored: Sequence[Scored], runs: Sequence[int], patterns: dict, average: str = "pooled") -> dict:
    """Every breakdown of `BREAKDOWNS`; per-pattern entries also carry the pattern's name and family.

    Args:
        scored: judged samples (all runs).
        runs: the run numbers to report.
        patterns: `patterns.json` of the build.
        average: how IPE averages over a character's patterns (see `sample_score`).
    """
    result = {name: breakdown(scored, runs, groups, patterns, average) for name, groups in BREAKDOWNS.items()}
    for pid, entry in result["pattern"].items():
        info = patterns.get(pid, {})
        entry.update(name=info.get("name", pid), family=info.get("family", "unknown"))
    return result


def holistic_summary(rows: Sequence[dict], runs: Sequence[int]) -> dict:
    """Holistic ratings: per run the mean over samples (0-100), then mean and std over runs.

    Args:
        rows: successful holistic results, each with `sample`, `run`, `anthropomorphism`, `fidelity`.
        runs: the run numbers to report.
    """
    result = {}
    for field in HOLISTIC:
        per_run = []
        for r in runs:
            values = [row[field] for row in rows if row["run"] == r]
            per_run.append(statistics.fmean(values) if values else None)
        result[field] = {**mean_std(per_run), "n": len({row["sample"] for row in rows})}
    return result


def per_sample_means(scored: Sequence[Scored], average: str = "pooled") -> dict[str, dict[str, float | None]]:
    """Each sample's IPE and MPD (x100), averaged over its successful runs: the judge's side of
    `humanllm align` (written as scores.csv).

    Args:
        scored: judged samples (all runs).
        average: how IPE averages over a character's patterns (see `sample_score`).
    """
    acc: dict[str, dict[str, list[float]]] = {}
    for s in scored:
        for metric in KINDS:
            v = sample_score(s, metric, average=average)
            if v is not None:
                acc.setdefault(s.sample, {}).setdefault(metric, []).append(100.0 * v)
    return {sid: {m: statistics.fmean(vs) for m, vs in by.items()} for sid, by in acc.items()}
