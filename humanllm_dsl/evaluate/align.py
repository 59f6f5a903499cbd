"""Human alignment: how well judge scores agree with human scores, per metric.

Both inputs are CSV files with the columns `sample_id,metric,score` (a header row; other
columns are ignored), joined on (sample_id, metric). Per metric: n, Pearson r with a percentile
bootstrap 95% CI (pairs resampled with a fixed seed), Spearman rho, the mean human and mean
judge scores and their gap (human - judge: the social-desirability contrast of holistic judges).
scipy and numpy are imported only when computing.

The human file may hold several raters and item-level answers (`humanllm annotate export`
writes it): a `rater` column (each rater's (sample_id, metric) once; the human score of a sample
is the mean over its raters), and rows with metric `item`, an `item` column (the checklist item's
number in the judge's order, from 1) and optionally its `text`. `alignment_report` adds, given
the judge's verdicts.jsonl, item-level agreement (judge vs each rater, and vs the raters'
majority) and inter-rater agreement (Krippendorff's alpha, `krippendorff` package).
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path

import attrs

COLUMNS = ("sample_id", "metric", "score")
ITEM = "item"  # the metric of an item-level row
VERDICTS = (-1.0, 0.0, 1.0)


class AlignDataError(Exception):
    """A bad scores file; the message names the file (and row)."""


def _rows(path: Path, extra: tuple[str, ...] = ()):
    """`(row number, sample_id, metric, score, row)` for every non-blank row (see `read_scores`)."""
    if not path.is_file():
        raise AlignDataError(f"{path}: no such file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                found = ", ".join(header) if header else "no header row"
                raise AlignDataError(f"{path}: row 1: missing column{'s' * (len(missing) > 1)} "
                                     f"{', '.join(missing)} (found: {found}); expected {','.join(COLUMNS)}")
            reader.fieldnames = header
            for row in reader:
                n = reader.line_num
                sid, metric, raw = ((row.get(c) or "").strip() for c in COLUMNS)
                if not sid and not metric and not raw:
                    continue  # a blank line
                if not sid or not metric:
                    raise AlignDataError(f"{path}: row {n}: empty {'sample_id' if not sid else 'metric'}")
                try:
                    score = float(raw)
                except ValueError:
                    raise AlignDataError(f"{path}: row {n}: score {raw!r} is not a number") from None
                if not math.isfinite(score):
                    raise AlignDataError(f"{path}: row {n}: score {raw!r} is not a finite number")
                yield n, sid, metric, score, row
    except UnicodeDecodeError as exc:
        raise AlignDataError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise AlignDataError(f"{path}: not a readable CSV file ({exc})") from None


def read_scores(path: Path) -> dict[tuple[str, str], float]:
    """`(sample_id, metric) -> score` from a CSV file (with a `rater` column: the mean over raters).

    Args:
        path: the CSV file (header row with sample_id, metric, score).
    Raises:
        AlignDataError: a missing file or column, an empty id or metric, a non-numeric or
            non-finite score, or a (sample_id, metric) pair given twice (by one rater); rows are
            numbered as in an editor (the header is row 1).
    """
    human = read_human(path)
    scores: dict[tuple[str, str], list[float]] = {}
    for by in human.samples.values():
        for key, value in by.items():
            scores.setdefault(key, []).append(value)
    if not scores:
        raise AlignDataError(f"{path}: no score rows")
    return {key: sum(v) / len(v) for key, v in scores.items()}


@attrs.frozen
class HumanScores:
    """A human scores file: per rater (`""` without a rater column), sample scores and item answers."""

    samples: dict[str, dict[tuple[str, str], float]]  # rater -> (sample_id, metric) -> score
    items: dict[str, dict[tuple[str, str], float]]    # rater -> (sample_id, item number) -> -1/0/1
    texts: dict[tuple[str, str], tuple[str, int]]     # (sample_id, item) -> (text, row) where given


def read_human(path: Path) -> HumanScores:
    """Read a human scores file (see the module's docstring).

    Raises:
        AlignDataError: as `read_scores`; also an `item` row without an item number or with a
            score other than -1, 0, 1, and one rater answering an item twice.
    """
    samples: dict[str, dict[tuple[str, str], float]] = {}
    items: dict[str, dict[tuple[str, str], float]] = {}
    texts: dict[tuple[str, str], tuple[str, int]] = {}
    first: dict[tuple, int] = {}
    for n, sid, metric, score, row in _rows(path):
        rater = (row.get("rater") or "").strip()
        who = f" rater {rater!r}" if rater else ""
        if metric == ITEM:
            item = (row.get("item") or "").strip()
            if not item.isdigit() or int(item) < 1:
                raise AlignDataError(f"{path}: row {n}: an `item` row needs an item number from 1 (got {item!r})")
            if score not in VERDICTS:
                raise AlignDataError(f"{path}: row {n}: item score {score:g} is not -1, 0 or 1")
            key, table = (sid, str(int(item))), items.setdefault(rater, {})
            text = (row.get("text") or "").strip()
            if text:
                texts.setdefault(key, (text, n))
            label = f"sample {sid!r} item {key[1]}"
        else:
            key, table, label = (sid, metric), samples.setdefault(rater, {}), f"sample {sid!r} metric {metric!r}"
        if (rater, metric == ITEM, key) in first:
            raise AlignDataError(f"{path}: row {n}:{who} {label} is already given in row {first[(rater, metric == ITEM, key)]}")
        first[(rater, metric == ITEM, key)] = n
        table[key] = score
    if not first:
        raise AlignDataError(f"{path}: no score rows")
    return HumanScores(samples, items, texts)


def read_verdicts(path: Path) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], str]]:
    """The judge's verdict per (sample_id, item number) from an eval folder's verdicts.jsonl: the
    most common verdict over the successful runs (a tie counts as 0), and each item's text.

    Raises:
        AlignDataError: a missing or unreadable file, or a row whose verdicts and items differ in number.
    """
    from .data import EvalDataError, numbered_rows

    try:
        rows = numbered_rows(path)
    except EvalDataError as exc:
        raise AlignDataError(str(exc)) from None
    votes: dict[tuple[str, str], list[int]] = {}
    texts: dict[tuple[str, str], str] = {}
    for n, row in rows:
        if row.get("status") != "ok":
            continue
        verdicts, its = row.get("verdicts"), row.get("items")
        if not isinstance(verdicts, list) or not isinstance(its, list) or len(verdicts) != len(its):
            raise AlignDataError(f"{path}:{n}: `verdicts` and `items` must be lists of the same length")
        for i, (v, it) in enumerate(zip(verdicts, its), 1):
            key = (str(row.get("sample")), str(i))
            votes.setdefault(key, []).append(int(v["score"]))
            texts[key] = it.get("text", "")
    return {key: _mode(v) for key, v in votes.items()}, texts


def _mode(values: list) -> int:
    counts = Counter(values).most_common()
    return counts[0][0] if len(counts) == 1 or counts[0][1] > counts[1][1] else 0


def join(human: dict, judge: dict) -> dict[str, list[tuple[float, float]]]:
    """Pairs (human, judge) per metric, over the (sample_id, metric) keys both have, in sorted order.

    Args:
        human: scores from `read_scores`.
        judge: scores from `read_scores`.
    """
    pairs: dict[str, list[tuple[float, float]]] = {}
    for key in sorted(human.keys() & judge.keys()):
        pairs.setdefault(key[1], []).append((human[key], judge[key]))
    return pairs


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def pearson(h, j) -> float | None:
    """Pearson r; None when undefined (fewer than 2 pairs or a constant side).

    Args:
        h: human scores.
        j: judge scores, paired with `h`.
    """
    return _correlation("pearsonr", h, j)


def spearman(h, j) -> float | None:
    """Spearman rho; None when undefined (fewer than 2 pairs or a constant side).

    Args:
        h: human scores.
        j: judge scores, paired with `h`.
    """
    return _correlation("spearmanr", h, j)


def _correlation(name: str, h, j) -> float | None:
    import numpy as np
    from scipy import stats

    h, j = np.asarray(h, float), np.asarray(j, float)
    if len(h) < 2 or np.ptp(h) == 0 or np.ptp(j) == 0:
        return None
    return _finite(getattr(stats, name)(h, j).statistic)


def bootstrap_ci(h, j, resamples: int = 2000, seed: int = 0, level: float = 0.95,
                 rank: bool = False) -> list[float] | None:
    """Percentile bootstrap CI of Pearson r (of Spearman rho with `rank`: r of each resample's
    ranks): resample pairs with replacement (numpy generator seeded with `seed`), skip resamples
    where it is undefined; None if fewer than 3 pairs or no resample has one.

    Args:
        h: human scores.
        j: judge scores, paired with `h`.
        resamples: number of bootstrap resamples.
        seed: the generator's seed (fixed: the same data always gives the same interval).
        level: the interval's coverage.
        rank: the CI of Spearman's rho instead of Pearson's r.
    """
    import numpy as np

    h, j = np.asarray(h, float), np.asarray(j, float)
    n = len(h)
    if n < 3:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    hs, js = h[idx], j[idx]
    if rank:
        from scipy.stats import rankdata

        hs, js = rankdata(hs, axis=1), rankdata(js, axis=1)
    hc, jc = hs - hs.mean(axis=1, keepdims=True), js - js.mean(axis=1, keepdims=True)
    den = np.sqrt((hc ** 2).sum(axis=1) * (jc ** 2).sum(axis=1))
    ok = den > 0
    if not ok.any():
        return None
    r = np.clip((hc * jc).sum(axis=1)[ok] / den[ok], -1.0, 1.0)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(r, [tail, 100 - tail])
    return [float(lo), float(hi)]


def metric_stats(pairs: list[tuple[float, float]], resamples: int = 2000, seed: int = 0) -> dict:
    """The statistics of one metric.

    Args:
        pairs: (human, judge) score pairs.
        resamples: bootstrap resamples for the CI.
        seed: bootstrap seed.
    Returns:
        `{"n", "pearson", "pearson_ci", "spearman", "spearman_ci", "mean_human", "mean_judge", "gap"}`
        (gap = mean_human - mean_judge; undefined correlations are None).
    """
    h = [p[0] for p in pairs]
    j = [p[1] for p in pairs]
    mean_h, mean_j = sum(h) / len(h), sum(j) / len(j)
    return {"n": len(pairs), "pearson": pearson(h, j), "pearson_ci": bootstrap_ci(h, j, resamples, seed),
            "spearman": spearman(h, j), "spearman_ci": bootstrap_ci(h, j, resamples, seed, rank=True),
            "mean_human": mean_h, "mean_judge": mean_j, "gap": mean_h - mean_j}


def align_files(human_path: Path, judge_path: Path, resamples: int = 2000, seed: int = 0) -> dict[str, dict]:
    """Read both files, join them, and compute `metric_stats` per metric.

    Args:
        human_path: the human scores CSV.
        judge_path: the judge scores CSV.
        resamples: bootstrap resamples for the CI.
        seed: bootstrap seed.
    """
    human, judge = read_scores(human_path), read_scores(judge_path)
    pairs = join(human, judge)
    if not pairs:
        h_ids, j_ids = {k[0] for k in human}, {k[0] for k in judge}
        why = ("no sample_id is in both files" if not h_ids & j_ids else
               f"the shared samples have no metric in common (human: {', '.join(sorted({k[1] for k in human}))}; "
               f"judge: {', '.join(sorted({k[1] for k in judge}))})")
        raise AlignDataError(f"{human_path} and {judge_path}: nothing to compare: {why}")
    return {metric: metric_stats(p, resamples, seed) for metric, p in sorted(pairs.items())}


def format_table(result: dict[str, dict]) -> str:
    """A plain-text table of `align_files`' result.

    Args:
        result: metric -> statistics.
    """
    def num(x, fmt="{:.2f}"):
        return "n/a" if x is None else fmt.format(x)

    head = f"{'metric':<20} {'n':>5} {'pearson':>8} {'95% CI':>16} {'spearman':>9} {'human':>8} {'judge':>8} {'gap':>8}"
    lines = [head, "-" * len(head)]
    for metric, s in result.items():
        ci = "n/a" if s["pearson_ci"] is None else f"[{s['pearson_ci'][0]:.2f}, {s['pearson_ci'][1]:.2f}]"
        lines.append(f"{metric:<20} {s['n']:>5} {num(s['pearson']):>8} {ci:>16} {num(s['spearman']):>9} "
                     f"{num(s['mean_human'], '{:.1f}'):>8} {num(s['mean_judge'], '{:.1f}'):>8} {num(s['gap'], '{:+.1f}'):>8}")
    return "\n".join(lines)


def krippendorff_alpha(table: dict[str, dict], level: str) -> float | None:
    """Krippendorff's alpha (the `krippendorff` package) of raters x units with gaps.

    Args:
        table: rater -> unit -> value (a unit a rater did not rate is simply absent).
        level: "nominal", "ordinal", "interval" or "ratio".
    Returns:
        alpha, or None when undefined: fewer than two raters, no unit rated twice, or one value only.
    """
    import krippendorff
    import numpy as np

    units = sorted({u for by in table.values() for u in by})
    if len(table) < 2 or not units:
        return None
    data = np.array([[by.get(u, np.nan) for u in units] for by in table.values()], float)
    pairable = (~np.isnan(data)).sum(axis=0) >= 2
    values = data[:, pairable]
    if not pairable.any() or len(np.unique(values[~np.isnan(values)])) < 2:
        return None
    return _finite(krippendorff.alpha(reliability_data=data, level_of_measurement=level))


def agreement(pairs: list[tuple[float, float]]) -> dict:
    """Item-level agreement of two sides: `{"n", "agreement" (share of equal answers),
    "alpha" (Krippendorff's, ordinal, the two sides as raters)}`; None when undefined."""
    if not pairs:
        return {"n": 0, "agreement": None, "alpha": None}
    table = {"a": {i: a for i, (a, _) in enumerate(pairs)}, "b": {i: b for i, (_, b) in enumerate(pairs)}}
    return {"n": len(pairs), "agreement": sum(a == b for a, b in pairs) / len(pairs),
            "alpha": krippendorff_alpha(table, "ordinal")}


def majority(items: dict[str, dict]) -> tuple[dict, int]:
    """The raters' majority answer per item (more than half of those who answered it), and how
    many items had none (a tie)."""
    votes: dict = {}
    for by in items.values():
        for key, v in by.items():
            votes.setdefault(key, []).append(v)
    out, ties = {}, 0
    for key, vs in votes.items():
        value, count = Counter(vs).most_common(1)[0]
        if count * 2 > len(vs):
            out[key] = value
        else:
            ties += 1
    return out, ties


def alignment_report(human_path: Path, judge_path: Path, verdicts_path: Path | None = None,
                     resamples: int = 2000, seed: int = 0) -> dict:
    """Everything `align` measures, as the JSON report (its shape is in docs/evaluation.md).

    Args:
        human_path: the human scores CSV (one rater or several, with or without item rows).
        judge_path: the judge scores CSV (an eval folder's scores.csv).
        verdicts_path: the eval folder's verdicts.jsonl, for item-level agreement (None: skipped).
        resamples: bootstrap resamples for the CIs.
        seed: bootstrap seed.
    Raises:
        AlignDataError: a bad file, nothing to compare, or a human item whose text is not the
            judged item's.
    """
    human = read_human(human_path)
    metrics = align_files(human_path, judge_path, resamples, seed)
    raters = sorted(set(human.samples) | set(human.items))
    items = None
    if verdicts_path is not None:
        judge, texts = read_verdicts(verdicts_path)
        for key, (text, row) in human.texts.items():
            if key in texts and " ".join(texts[key].split()) != " ".join(text.split()):
                raise AlignDataError(f"{human_path}: row {row}: sample {key[0]!r} item {key[1]} is not the judged "
                                     f"item {key[1]} of {verdicts_path} ({texts[key]!r})")
        per_rater = {r: agreement([(by[k], judge[k]) for k in sorted(by) if k in judge])
                     for r, by in sorted(human.items.items())}
        major, ties = majority(human.items)
        items = {"raters": per_rater,
                 "majority": {**agreement([(major[k], judge[k]) for k in sorted(major) if k in judge]), "ties": ties}}
    metric_names = sorted({m for by in human.samples.values() for _, m in by})
    inter = {"items": {"alpha": krippendorff_alpha(human.items, "ordinal"),
                       "units": len({k for by in human.items.values() for k in by})},
             "metrics": {m: {"alpha": krippendorff_alpha({r: {sid: v for (sid, mm), v in by.items() if mm == m}
                                                          for r, by in human.samples.items()}, "interval"),
                             "units": len({sid for by in human.samples.values() for sid, mm in by if mm == m})}
                         for m in metric_names}}
    return {"version": REPORT_VERSION, "human": str(human_path), "judge": str(judge_path),
            "verdicts": None if verdicts_path is None else str(verdicts_path), "raters": raters,
            "metrics": metrics, "items": items, "inter_rater": inter, "resamples": resamples, "seed": seed}


REPORT_VERSION = 1
REPORT_NAME = "alignment.json"  # beside scores.csv in an eval folder, where `humanllm view` looks


def write_report(report: dict, path: Path) -> None:
    """Write the JSON report (atomically)."""
    from ..runtime.store import write_json

    write_json(path, report)


def format_report(report: dict) -> str:
    """`format_table` of the metrics, then the item-level and inter-rater agreement."""
    def num(x):
        return "n/a" if x is None else f"{x:.2f}"

    lines = [format_table(report["metrics"])]
    if report["items"] is not None:
        lines += ["", f"{'items: judge vs':<20} {'n':>5} {'agree':>8} {'alpha':>8}"]
        for rater, a in report["items"]["raters"].items():
            lines.append(f"{rater or '(rater)':<20} {a['n']:>5} {num(a['agreement']):>8} {num(a['alpha']):>8}")
        m = report["items"]["majority"]
        lines.append(f"{'rater majority':<20} {m['n']:>5} {num(m['agreement']):>8} {num(m['alpha']):>8}"
                     f"  ({m['ties']} tied items left out)")
    inter = report["inter_rater"]
    lines += ["", f"inter-rater Krippendorff's alpha ({len(report['raters'])} raters): items {num(inter['items']['alpha'])}"
              + "".join(f", {m} {num(v['alpha'])}" for m, v in inter["metrics"].items())]
    return "\n".join(lines)
