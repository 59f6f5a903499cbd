"""The evaluation report: `report.html` (self-contained: plots embedded) and `plots/*.png`.

Contents: the headline scores, tables per split / family / interaction type / pattern, a bar
chart of IPE and MPD per pattern, the judge-run spread, and example transcripts with their
verdicts. matplotlib (Agg backend) is imported only here.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from ..runtime.store import write_text

SCORE_LABEL = {1: "+1 satisfied", 0: "0 not exhibited", -1: "-1 violated"}
CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}.turn{margin:.2em 0}.gen{background:#eef6ff}
.v1{color:#176c2f}.v-1{color:#a11}.v0{color:#777}.note{background:#fff6d9;padding:.5em 1em}
img{max-width:100%}"""


def _fmt(entry: dict | None) -> str:
    if not entry or entry.get("mean") is None:
        return "&ndash;"
    return f"{entry['mean']:.1f} &plusmn; {entry['std']:.1f}"


def _table(title: str, groups: dict, label: str) -> str:
    """An HTML table of IPE and MPD per group.

    Args:
        title: the section heading.
        groups: `{group: {"IPE": ..., "MPD": ...}}` from results.json's breakdowns.
        label: the group column's heading.
    """
    if not groups:
        return f"<h2>{html.escape(title)}</h2><p>No samples.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(str(g.get('name', key)))}</td><td>{_fmt(g['IPE'])}</td><td>{g['IPE']['n']}</td>"
        f"<td>{_fmt(g['MPD'])}</td><td>{g['MPD']['n']}</td></tr>" for key, g in groups.items())
    return (f"<h2>{html.escape(title)}</h2><table><tr><th>{label}</th><th>IPE %</th><th>n</th><th>MPD %</th>"
            f"<th>n</th></tr>{rows}</table>")


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


def _img(path: Path | None, alt: str) -> str:
    if path is None:
        return f"<p>({html.escape(alt)}: nothing to plot)</p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _example(ex: dict) -> str:
    turns = "".join(
        f'<div class="turn{" gen" if t.get("generated") else ""}"><b>{html.escape(t["char"])}:</b> '
        f'{html.escape(t["content"])}</div>' for t in ex["turns"])
    rows = "".join(
        f'<tr><td>{i}</td><td>{html.escape(item["kind"].upper())}</td><td>{html.escape(item["text"])}</td>'
        f'<td class="v{v["score"]}">{SCORE_LABEL[v["score"]]}</td><td>{html.escape(v["evidence"])}</td></tr>'
        for i, (item, v) in enumerate(zip(ex["items"], ex["verdicts"], strict=True), 1))
    hol = ex.get("holistic") or {}
    holistic = (f"<p>Holistic (run 1): anthropomorphism {hol['anthropomorphism']}, fidelity {hol['fidelity']}. "
                f"{html.escape(hol.get('rationale', ''))}</p>" if hol.get("status") == "ok" else "")
    return (f"<h3>{html.escape(ex['sample'])} ({html.escape(ex['split'])})</h3>"
            f"<p>Generated turns of {html.escape(ex['character'])} are shaded.</p>{turns}"
            f"<table><tr><th>#</th><th>level</th><th>item</th><th>verdict (run 1)</th><th>evidence</th></tr>{rows}</table>"
            f"{holistic}")


def render_html(results: dict, images: dict[str, Path | None], examples: list[dict]) -> str:
    """The report's HTML.

    Args:
        results: results.json's content.
        images: plot name -> PNG path (or None).
        examples: transcripts with run-1 verdicts (see `results.examples`).
    """
    off = results["offline"]
    note = ""
    if off["model"] or off["judge"]:
        who = " and ".join(w for w, flag in (("model", off["model"]), ("judge", off["judge"])) if flag)
        note = (f'<p class="note">The {who} is the offline engine: a deterministic placeholder, so these '
                "numbers test the pipeline and say nothing about a model.</p>")
    hol = results.get("holistic") or {}
    holistic_rows = "".join(f"<tr><td>holistic {k}</td><td>{_fmt(v)}</td><td>{v['n']}</td></tr>" for k, v in hol.items())
    j, r = results["judge"], results["rollouts"]
    grounded = "&ndash;" if j["evidence_grounded"] is None else f"{100 * j['evidence_grounded']:.0f}%"
    channels = "&ndash;" if r["three_channels"] is None else f"{100 * r['three_channels']:.0f}%"
    b = results["breakdowns"]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>humanllm eval: {html.escape(results['model'])}</title>"
        f"<style>{CSS}</style></head><body>",
        f"<h1>Evaluation of <code>{html.escape(results['model'])}</code></h1>",
        f"<p>Judge <code>{html.escape(results['judge_model'])}</code>, {results['runs']} run(s); build "
        f"<code>{html.escape(results['build'])}</code>; splits {', '.join(results['splits'])}; "
        f"{results['samples']} samples (scenario &times; target character).</p>", note,
        "<h2>Scores</h2><table><tr><th>metric</th><th>mean &plusmn; std over runs</th><th>n</th></tr>"
        f"<tr><td>IPE (individual pattern expression) %</td><td>{_fmt(results['IPE'])}</td><td>{results['IPE']['n']}</td></tr>"
        f"<tr><td>MPD (multi-pattern dynamics) %</td><td>{_fmt(results['MPD'])}</td><td>{results['MPD']['n']}</td></tr>"
        f"{holistic_rows}</table>",
        "<p>IPE and MPD are in [-100, 100] (items scored +1 / 0 / -1); holistic ratings in [0, 100]. "
        "Holistic judges tend to punish faithful but socially undesirable behaviour, which the checklists do not.</p>",
        f"<p>Rollouts: {r['done']} done, {r['failed']} failed; {r['generated_turns']} generated turns "
        f"({r['truncated_turns']} cut off at the token limit), {channels} with all three channels. Judge: {j['verdict_sets']} verdict sets ({j['items']} items), {j['failed']} failed, "
        f"{j['retried']} needed a retry; {grounded} of non-zero verdicts quote evidence found in the transcript.</p>",
        "<h2>Judge-run spread</h2>", _img(images.get("runs"), "judge-run spread"),
        _table("Per split", b["split"], "split"),
        _table("Per family", b["family"], "family"),
        _table("Per interaction type", b["interaction"], "interaction"),
        "<h2>Per pattern</h2>", _img(images.get("patterns"), "per-pattern scores"),
        _table("Per pattern (table)", b["pattern"], "pattern"),
        "<h2>Example transcripts</h2>", "".join(_example(e) for e in examples) or "<p>None.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


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
