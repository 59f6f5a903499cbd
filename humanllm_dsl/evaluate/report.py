"""The evaluation report: `report.html` (self-contained) and `plots/*.png`.

The HTML comes from the viewer's templates (humanllm_dsl/view/templates/report.html): the
headline scores, the judge-run spread, breakdowns per split / family / interaction type as
tables and inline SVG bars, the per-pattern scores as a sortable table (readable at 244
patterns), and example transcripts with each verdict beside the turn its evidence quotes.
The PNG plots are for papers; matplotlib (Agg backend) is imported only here.
"""

from __future__ import annotations

import base64
from pathlib import Path

from ..runtime.store import write_text


def plot_patterns(results: dict, path: Path) -> Path | None:
    """Horizontal bars of IPE and MPD per pattern (mean over runs).

    Args:
        results: results.json's content.
        path: the PNG to write.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = results["breakdowns"]["pattern"]
    names = [p for p, g in groups.items() if g["IPE"]["mean"] is not None or g["MPD"]["mean"] is not None]
    if not names:
        return None
    names.sort(key=lambda p: groups[p]["IPE"]["mean"] or 0.0)
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.32 * len(names) + 1)))
    ys = range(len(names))
    for offset, metric, color in ((-0.2, "IPE", "#3b6fb6"), (0.2, "MPD", "#e08a2c")):
        vals = [groups[p][metric]["mean"] or 0.0 for p in names]
        errs = [groups[p][metric]["std"] or 0.0 for p in names]
        ax.barh([y + offset for y in ys], vals, height=0.4, xerr=errs, color=color, label=metric)
    ax.set_yticks(list(ys), [groups[p].get("name", p) for p in names], fontsize=8)
    ax.axvline(0, color="#444", linewidth=0.8)
    ax.set_xlim(-100, 100)
    ax.set_xlabel("score (%)")
    ax.legend(loc="lower right")
    ax.set_title("Per pattern: IPE (its own items) and MPD (samples carrying it)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_runs(results: dict, path: Path) -> Path | None:
    """The judge-run spread: each run's IPE and MPD, with the mean.

    Args:
        results: results.json's content.
        path: the PNG to write.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in ("IPE", "MPD") if results[m]["runs"]]
    if not metrics:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for x, metric in enumerate(metrics):
        runs = results[metric]["runs"]
        ax.scatter([x] * len(runs), runs, color="#3b6fb6", zorder=3, label="judge run" if x == 0 else None)
        ax.hlines(results[metric]["mean"], x - 0.25, x + 0.25, color="#e08a2c", linewidth=2,
                  label="mean" if x == 0 else None)
    ax.set_xticks(range(len(metrics)), metrics)
    ax.set_ylabel("score (%)")
    ax.set_title(f"Spread over {results['runs']} judge run(s)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


PLOTS = {"patterns": plot_patterns, "runs": plot_runs}


def _data_uri(path: Path | None) -> str | None:
    return None if path is None else "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _example(ex: dict) -> dict:
    """A transcript with its run-1 verdicts placed beside the turns their evidence quotes."""
    from ..view.evidence import place

    verdicts = [{**item, **v, "item": k, "run": 1}
                for k, (item, v) in enumerate(zip(ex["items"], ex["verdicts"], strict=True), 1)]
    beside, nowhere = place(ex["turns"], verdicts)
    return {**ex, "beside": beside, "nowhere": nowhere}


def render_html(results: dict, images: dict[str, Path | None], examples: list[dict]) -> str:
    """The report's HTML, from the viewer's Jinja2 templates (autoescaped; stylesheet inlined).

    Args:
        results: results.json's content.
        images: plot name -> PNG path (or None).
        examples: transcripts with run-1 verdicts (see `results.examples`).
    """
    from ..view.render import render, script, stylesheet

    return render("report.html", inline={"css": stylesheet(), "js": script()}, r=results,
                  runs_plot=_data_uri(images.get("runs")), patterns_plot=images.get("patterns") is not None,
                  examples=[_example(e) for e in examples])


def write_report(out: Path, results: dict, examples: list[dict]) -> Path:
    """Write `plots/*.png` and `report.html` into `out`.

    Args:
        out: the evaluation folder.
        results: results.json's content.
        examples: transcripts with run-1 verdicts.
    Returns:
        The report's path.
    """
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    images = {name: plot(results, plots / f"{name}.png") for name, plot in PLOTS.items()}
    path = out / "report.html"
    write_text(path, render_html(results, images, examples))
    return path
