"""What an evaluation folder's stores add up to: results.json, scores.csv and the report's examples."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..runtime.store import JsonlStore, write_text
from ..runtime.stages import OFFLINE
from . import data as D
from . import rollout as R
from . import scores as S


def judged_rows(store: JsonlStore, samples, runs: int) -> list[tuple[D.Sample, dict]]:
    """The rows (ok or failed) of a judge store for every sample and run 1..runs.

    Args:
        store: the verdicts or holistic store.
        samples: the evaluated samples.
        runs: the number of judge runs.
    """
    return [(s, row) for s in samples for r in range(1, runs + 1) if (row := store.get(f"{s.id}#{r}")) is not None]


def scored_of(sample: D.Sample, row: dict) -> S.Scored:
    """A successful verdict row reduced for aggregation.

    Args:
        sample: the sample judged.
        row: its verdicts.jsonl row (status ok).
    """
    ipe, mpd = [], []
    for item, verdict in zip(sample.items, row["verdicts"], strict=True):
        if item.kind == "ipe":
            ipe.append((item.pattern, verdict["score"]))
        else:
            mpd.append(verdict["score"])
    types = tuple(sorted({i["type"] for i in sample.record.get("interactions", [])}))
    return S.Scored(sample.id, row["run"], sample.split, sample.patterns, types, tuple(ipe), tuple(mpd))


def build_results(o, splits, samples, patterns, stores, seconds: float, usage: dict | None = None) -> dict:
    """results.json: IPE and MPD (mean, std, per-run values, n), holistic scores, breakdowns,
    and the counts behind them.

    Args:
        o: the `EvalOptions`.
        splits: the evaluated splits.
        samples: the evaluated samples.
        patterns: `patterns.json` of the build.
        stores: the run's stores.
        seconds: wall time of this invocation.
        usage: this invocation's LM calls (calls, tokens, cost, answers from the cache, resends).
    """
    runs = list(range(1, o.runs + 1))
    rows = judged_rows(stores["verdicts"], samples, o.runs)
    ok = [(s, row) for s, row in rows if row["status"] == "ok"]
    scored = [scored_of(s, row) for s, row in ok]
    holistic = [row for _, row in judged_rows(stores["holistic"], samples, o.runs)]
    rated = [row for row in holistic if row["status"] == "ok"]
    rollouts = stores["rollouts"]
    turns = [t for s in samples if s.id in rollouts for t in rollouts.get(s.id)["turns"] if t["generated"]]
    grounded = [row.get("grounded", [0, 0]) for _, row in ok]
    quoted = sum(n for _, n in grounded)
    top = S.summary(scored, runs, o.ipe_average)
    return {
        "IPE": top["IPE"], "MPD": top["MPD"],
        "holistic": S.holistic_summary(rated, runs) if o.holistic else None,
        "breakdowns": S.breakdowns(scored, runs, patterns, o.ipe_average),
        "ipe_average": o.ipe_average,
        "model": o.model, "judge_model": o.judge, "build": str(o.build), "splits": list(splits), "runs": o.runs,
        "offline": {"model": o.model == OFFLINE, "judge": o.judge == OFFLINE},
        "samples": len(samples),
        "rollouts": {"done": sum(s.id in rollouts for s in samples),
                     "failed": sum(f"rollout:{s.id}" in stores["failures"] for s in samples if s.id not in rollouts),
                     "generated_turns": len(turns), "truncated_turns": sum(bool(t.get("truncated")) for t in turns),
                     "three_channels": (sum(R.has_three_channels(t) for t in turns) / len(turns)) if turns else None},
        "judge": {"verdict_sets": len(scored), "failed": len(rows) - len(ok),
                  "retried": sum(row.get("attempts", 1) > 1 for _, row in rows),
                  "items": sum(len(s.ipe) + len(s.mpd) for s in scored),
                  "evidence_grounded": sum(g for g, _ in grounded) / quoted if quoted else None,
                  "holistic_failed": len(holistic) - len(rated)},
        "programs": [str(p) for p in o.programs],
        "seconds": round(seconds, 2),
        "usage": usage or {},
    }


def write_scores_csv(path: Path, samples, stores, runs: int, ipe_average: str = "pooled") -> None:
    """Per-sample judge scores (`sample_id,metric,score`), the `--judge` file of `humanllm align`:
    IPE and MPD in [-100, 100] and the holistic ratings in [0, 100], each averaged over runs.

    Args:
        path: the CSV file to write.
        samples: the evaluated samples.
        stores: the run's stores.
        runs: the number of judge runs.
        ipe_average: how IPE averages over a character's patterns (`scores.sample_score`).
    """
    means = S.per_sample_means([scored_of(s, row) for s, row in judged_rows(stores["verdicts"], samples, runs)
                                if row["status"] == "ok"], ipe_average)
    hol: dict[str, dict[str, list[int]]] = {}
    for _, row in judged_rows(stores["holistic"], samples, runs):
        if row["status"] == "ok":
            for field in S.HOLISTIC:
                hol.setdefault(row["sample"], {}).setdefault(field, []).append(row[field])
    text = io.StringIO()
    w = csv.writer(text)
    w.writerow(["sample_id", "metric", "score"])
    for s in samples:
        for metric, value in means.get(s.id, {}).items():
            w.writerow([s.id, metric, f"{value:.4f}"])
        for field, values in hol.get(s.id, {}).items():
            w.writerow([s.id, field, f"{sum(values) / len(values):.4f}"])
    write_text(path, text.getvalue())


def examples(samples, stores, n: int) -> list[dict]:
    """The first `n` samples with a rollout and run-1 verdicts, for the report.

    Args:
        samples: the evaluated samples.
        stores: the run's stores.
        n: how many.
    """
    out = []
    for s in samples:
        if len(out) >= n:
            break
        row = stores["verdicts"].get(f"{s.id}#1")
        rollout = stores["rollouts"].get(s.id)
        if row is None or rollout is None or row["status"] != "ok":
            continue
        out.append({"sample": s.id, "character": s.character, "split": s.split, "turns": rollout["turns"],
                    "items": row["items"], "verdicts": row["verdicts"],
                    "holistic": stores["holistic"].get(f"{s.id}#1")})
    return out
