"""The units of a study: a seeded sample of (scenario, target character) pairs from an eval
folder (the model's rollouts) or a build (the reference conversations), stratified by split and
interaction type; and the units of a pattern review (see `patterns.py`).

A unit is a plain JSON object stored in the study database, so the study does not change when
the folder it came from does:

    {"id": "<record id>/<character>", "split", "stratum", "character", "profile",
     "turns": [{"char", "own", "segments": [{"kind", "text"}]}],
     "items": [{"key": "1", "kind": "ipe"|"mpd", "pattern" (ipe only), "text"}, ...]}
"""

from __future__ import annotations

import random
from pathlib import Path

from ..evaluate import data as D
from ..runtime.channels import segments, visible
from ..runtime.layout import Build


class StudyError(Exception):
    """A folder that cannot be studied, or a database that belongs to another study."""


def stratum(sample: D.Sample) -> str:
    """`split/interaction types` (sorted, joined by +; `none` without declared interactions)."""
    types = sorted({i.get("type", "none") for i in sample.record.get("interactions", []) if isinstance(i, dict)})
    return f"{sample.split}/{'+'.join(types) or 'none'}"


def stratified(samples: list[D.Sample], n: int, seed: int) -> list[D.Sample]:
    """`n` samples (all if fewer), allocated to strata in proportion to their size (largest
    remainder), drawn at random within each with `seed`, in a seeded random order.

    Args:
        samples: every candidate.
        n: how many to draw (at least 1).
        seed: the random seed (the same inputs and seed always give the same sample).
    """
    rng = random.Random(seed)
    groups: dict[str, list[D.Sample]] = {}
    for s in sorted(samples, key=lambda s: s.id):
        groups.setdefault(stratum(s), []).append(s)
    n = min(n, len(samples))
    quotas = {k: n * len(v) / len(samples) for k, v in groups.items()}
    take = {k: int(q) for k, q in quotas.items()}
    for k in sorted(groups, key=lambda k: (-(quotas[k] - take[k]), k))[:n - sum(take.values())]:
        take[k] += 1
    chosen = [s for k in sorted(groups) for s in rng.sample(groups[k], take[k])]
    rng.shuffle(chosen)
    return chosen


def _profile(record: dict, character: str) -> str:
    from ..evaluate.judge import profile_text

    return profile_text(record, character)


def unit_of(sample: D.Sample, turns: list[dict]) -> dict:
    """A study unit: the transcript as the judge reads it (the target's thoughts kept, the others'
    turns as the target perceived them) and the sample's checklist, keyed 1..n in the judge's order."""
    shown = []
    for t in turns:
        own = t["char"] == sample.character
        content = t["content"] if own else visible(t["content"])
        shown.append({"char": t["char"], "own": own, "segments": [s.as_dict() for s in segments(content)]})
    items = [{"key": str(i), "kind": item.kind, "pattern": item.pattern, "text": item.text}
             for i, item in enumerate(sample.items, 1)]
    return {"id": sample.id, "split": sample.split, "stratum": stratum(sample), "character": sample.character,
            "profile": _profile(sample.record, sample.character), "turns": shown, "items": items}


def is_eval_folder(path: Path) -> bool:
    return (path / "run.json").is_file() and (path / "rollouts.jsonl").is_file()


def study_units(folder: Path, n: int, seed: int, split: str = "all") -> list[dict]:
    """The units of a study over an eval folder or a build folder.

    Args:
        folder: an eval folder (run.json + rollouts.jsonl: its build is the one run.json names)
            or a build folder (patterns.json + splits/).
        n: the sample size.
        seed: the sampling seed.
        split: the splits to draw from (as `humanllm eval --split`).
    Raises:
        StudyError: neither kind of folder, or nothing to sample.
        EvalDataError: a bad file (named with its line).
    """
    if n < 1:
        raise StudyError("-n must be at least 1")
    rollouts = None
    build = folder
    if is_eval_folder(folder):
        from ..runtime.store import read_json_object

        build = Path(read_json_object(folder / "run.json").get("build", ""))
        if not Build(build).patterns.is_file():
            raise StudyError(f"{folder / 'run.json'}: its build {build} is not a build folder (no patterns.json)")
        rollouts = {row["id"]: row for row in D.read_jsonl(folder / "rollouts.jsonl") if "id" in row}
    elif not Build(folder).patterns.is_file():
        raise StudyError(f"{folder}: neither an eval folder (run.json, rollouts.jsonl) nor a build folder (patterns.json)")
    try:
        splits = D.splits_for(split)
    except ValueError as exc:
        raise StudyError(str(exc)) from None
    samples = D.samples_of(D.load_records(build, splits), D.load_patterns(build))
    if rollouts is not None:
        samples = [s for s in samples if s.id in rollouts]
    if not samples:
        raise StudyError(f"{folder}: no samples to study in split {split}" + (" with a rollout" if rollouts else ""))
    return [unit_of(s, rollouts[s.id]["turns"] if rollouts is not None else s.record["conversation"])
            for s in stratified(samples, n, seed)]
