"""A draft as a formatted `.hpat` file, and its trace: which notes (paper and pointer) every
sentence of the definition, mechanisms and manifestations rests on."""

from __future__ import annotations

import textwrap

from ..syntax import ast
from ..syntax.formatter import can_be_long, format_module, quote
from ..syntax.parser import parse_text
from .checks import sentences
from .papers import Paper
from .synthesis import Draft

TRACE_VERSION = 1


def authors_text(names: tuple[str, ...]) -> str:
    """Names as a reference list writes them: "Gilovich, T., Vallone, R., & Tversky, A."."""
    def one(name: str) -> str:
        if "," in name:
            last, first = (part.strip() for part in name.split(",", 1))
        else:
            *firsts, last = name.split()
            first = " ".join(firsts)
        initials = " ".join(f"{p[0]}." for p in first.replace(".", " ").replace("-", " ").split() if p[:1].isalpha())
        return f"{last}, {initials}" if initials else last
    shown = [one(n) for n in names if n.strip()]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + ", & " + shown[-1] if shown else ""


def source_line(paper: Paper) -> str | None:
    """The `source` line of a paper, or None when its metadata lacks authors, year, title or venue."""
    meta = paper.meta
    authors = authors_text(meta.authors)
    if not (authors and meta.year and meta.title and meta.venue):
        return None
    return f"source {quote(authors)} ({meta.year}) {quote(meta.title)} in {quote(meta.venue)}"


def missing_metadata(paper: Paper) -> list[str]:
    meta = paper.meta
    return [what for what, value in (("authors", meta.authors), ("year", meta.year), ("title", meta.title),
                                     ("venue", meta.venue)) if not value]


def hpat_text(draft: Draft, papers: dict[str, Paper], trace_name: str, lm: str) -> str:
    """The draft as canonical `.hpat` text (parsed back and formatted, so `fmt` leaves it as it is)."""
    t = draft.target
    cited = draft.cited_papers()
    lines = [f"# Drafted by `humanllm draft` from {len(cited)} of {len(papers)} papers with the LM `{lm}`.",
             "# Each sentence of the definition, mechanisms and manifestations is traced to the notes it rests on",
             f"# in {trace_name}. Review every line before adding it to the library.",
             f"pattern {draft.id} {quote(t.name)} {{", f"  family {t.family}"]
    if t.family == "trait":
        lines += [f"  dimension {t.dimension}", f"  pole {t.pole}"]
    if draft.tags:
        lines.append("  tags " + ", ".join(quote(tag) for tag in draft.tags))
    definition = " ".join(c["text"] for c in draft.definition)
    wrapped = textwrap.wrap(definition, 96, break_long_words=False, break_on_hyphens=False)
    if can_be_long("\n".join(wrapped)):
        lines += ['  definition """', *(f"    {ln}" for ln in wrapped), '  """']
    else:
        lines.append(f"  definition {quote(definition)}")
    lines += [f"  mechanism {c['kind']} {quote(c['text'])}" for c in draft.mechanisms]
    lines += [f"  manifestation {quote(c['text'])}" for c in draft.manifestations]
    lines += ["  checklist {", *(f"    {quote(item)}" for item in draft.checklist), "  }"]
    for pid in cited:
        line = source_line(papers[pid])
        if line is None:
            paper = papers[pid]
            lines.append(f"  # {pid} ({paper.path.name}): no {', '.join(missing_metadata(paper))} found; write its "
                         f"`source` line by hand")
        else:
            lines.append(f"  {line}")
    lines.append("}")
    return format_module(parse_text("\n".join(lines) + "\n", "<draft>"))


def trace(draft: Draft, papers: dict[str, Paper], text: str, file_name: str, lm: str) -> dict:
    """Every sentence of the draft with its field, its line in the draft file, and its notes."""
    module = parse_text(text, file_name)
    pattern = next(i for i in module.items if isinstance(i, ast.Pattern))
    line_of = {}
    for f in pattern.fields:
        if isinstance(f, ast.Definition):
            line_of["definition"] = f.span.line
        elif isinstance(f, ast.Mechanism):
            line_of[f"mechanism {f.kind.value}"] = f.span.line
        elif isinstance(f, ast.Manifestation):
            line_of.setdefault(f"manifestation {f.text.value}", f.span.line)
    rows = []

    def rests_on(ids: list[str]) -> list[dict]:
        return [{"note": n, "paper": draft.notes[n]["paper"], "pointer": draft.notes[n]["pointer"]} for n in ids]

    for c in draft.definition:
        rows += [{"field": "definition", "line": line_of["definition"], "text": s, "notes": c["notes"]}
                 for s in sentences(c["text"])]
    for c in draft.mechanisms:
        rows += [{"field": f"mechanism {c['kind']}", "line": line_of[f"mechanism {c['kind']}"], "text": s,
                  "notes": c["notes"]} for s in sentences(c["text"])]
    for c in draft.manifestations:
        rows.append({"field": "manifestation", "line": line_of[f"manifestation {c['text']}"], "text": c["text"],
                     "notes": c["notes"]})
    for row in rows:
        row["rests_on"] = rests_on(row.pop("notes"))
    cited = set(draft.cited_papers())
    used = {r["note"] for row in rows for r in row["rests_on"]}
    return {
        "version": TRACE_VERSION, "pattern": draft.id, "name": draft.target.name, "draft": file_name, "lm": lm,
        "papers": {pid: {"file": str(p.path), "title": p.meta.title, "authors": list(p.meta.authors),
                         "year": p.meta.year, "venue": p.meta.venue, "cited": pid in cited}
                   for pid, p in papers.items()},
        "notes": {nid: note for nid, note in draft.notes.items() if nid in used},
        "sentences": rows,
    }
