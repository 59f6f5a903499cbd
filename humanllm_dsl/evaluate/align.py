"""Human alignment: how well judge scores agree with human scores, per metric.

Both inputs are CSV files with the columns `sample_id,metric,score` (a header row; other
columns are ignored), joined on (sample_id, metric). Per metric: n, Pearson r with a percentile
bootstrap 95% CI (pairs resampled with a fixed seed), Spearman rho, the mean human and mean
judge scores and their gap (human - judge: the social-desirability contrast of holistic judges).
scipy and numpy are imported only when computing.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

COLUMNS = ("sample_id", "metric", "score")


class AlignDataError(Exception):
    """A bad scores file; the message names the file (and row)."""


def read_scores(path: Path) -> dict[tuple[str, str], float]:
    """`(sample_id, metric) -> score` from a CSV file.

    Args:
        path: the CSV file (header row with sample_id, metric, score).
    Raises:
        AlignDataError: a missing file or column, an empty id or metric, a non-numeric or
            non-finite score, or a (sample_id, metric) pair given twice; rows are numbered as in
            an editor (the header is row 1).
    """
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
            scores: dict[tuple[str, str], float] = {}
            first_row: dict[tuple[str, str], int] = {}
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
                key = (sid, metric)
                if key in scores:
                    raise AlignDataError(f"{path}: row {n}: sample {sid!r} metric {metric!r} is already "
                                         f"given in row {first_row[key]}")
                scores[key], first_row[key] = score, n
    except UnicodeDecodeError as exc:
        raise AlignDataError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise AlignDataError(f"{path}: not a readable CSV file ({exc})") from None
    if not scores:
        raise AlignDataError(f"{path}: no score rows")
    return scores


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


def bootstrap_ci(h, j, resamples: int = 2000, seed: int = 0, level: float = 0.95) -> list[float] | None:
    """Percentile bootstrap CI of Pearson r: resample pairs with replacement (numpy generator
    seeded with `seed`), skip resamples where r is undefined; None if fewer than 3 pairs or no
    resample has an r.

    Args:
        h: human scores.
        j: judge scores, paired with `h`.
        resamples: number of bootstrap resamples.
        seed: the generator's seed (fixed: the same data always gives the same interval).
        level: the interval's coverage.
    """
    import numpy as np

    h, j = np.asarray(h, float), np.asarray(j, float)
    n = len(h)
    if n < 3:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    hs, js = h[idx], j[idx]
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
        `{"n", "pearson", "pearson_ci", "spearman", "mean_human", "mean_judge", "gap"}`
        (gap = mean_human - mean_judge; undefined correlations are None).
    """
    h = [p[0] for p in pairs]
    j = [p[1] for p in pairs]
    mean_h, mean_j = sum(h) / len(h), sum(j) / len(j)
    return {"n": len(pairs), "pearson": pearson(h, j), "pearson_ci": bootstrap_ci(h, j, resamples, seed),
            "spearman": spearman(h, j), "mean_human": mean_h, "mean_judge": mean_j, "gap": mean_h - mean_j}


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
