"""Browsing the library in a terminal: `humanllm list` and `humanllm show`."""

from __future__ import annotations

import json
import re
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .compiler.model import Library, Pattern
from .syntax.diagnostics import did_you_mean, plural


def unwrap(text: str) -> str:
    """Join hard-wrapped lines into paragraphs (blank lines separate paragraphs)."""
    return "\n\n".join(" ".join(par.split()) for par in re.split(r"\n\s*\n", text))


def _console() -> Console:
    return Console(highlight=False)


def _kind(p: Pattern) -> str:
    return f"{p.dimension} {'+' if p.pole == 'positive' else '-'}" if p.is_trait else "social-cognitive"


def list_patterns(lib: Library, family: str | None = None, dimension: str | None = None,
                  pole: str | None = None, shape: str = "table") -> int:
    """Print the patterns: a table that fits 80 columns (ids never wrap), `plain` tab-separated
    lines (id, name, family, dimension, pole, items, file), or `json`."""
    rows = sorted((p for p in lib.patterns
                   if (family is None or p.family == family)
                   and (dimension is None or p.dimension == dimension)
                   and (pole is None or p.pole == pole)),
                  key=lambda p: (p.family, p.dimension or "", p.pole or "", p.id))
    if shape == "json":
        json.dump([{"id": p.id, "name": p.name, "family": p.family, "dimension": p.dimension, "pole": p.pole,
                    "items": len(p.checklist), "where": p.where} for p in rows], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    if shape == "plain":
        for p in rows:
            print("\t".join([p.id, p.name, p.family, p.dimension or "-", p.pole or "-", str(len(p.checklist)),
                             p.where.rsplit(":", 2)[0]]))
        return 0
    table = Table(title=f"{plural(len(rows), 'pattern')}", title_justify="left", box=None, pad_edge=False)
    table.add_column("id", style="bold cyan", no_wrap=True, overflow="fold")
    table.add_column("name")
    table.add_column("kind", style="green", no_wrap=True)
    table.add_column("items", justify="right", no_wrap=True)
    for p in rows:
        # most names are their id in words; show a name only where it tells something more
        same = re.sub(r"[^a-z0-9]+", "_", p.name.lower()).strip("_") == p.id
        table.add_row(p.id, "" if same else p.name, _kind(p), str(len(p.checklist)))
    _console().print(table)
    return 0


def find_pattern(lib: Library, query: str) -> Pattern | None:
    key = re.sub(r"[^a-z0-9]+", "_", query.lower().replace("&", " and ")).strip("_")
    for p in lib.patterns:
        if p.id == key or p.name.lower() == query.lower():
            return p
    return None


def show_pattern(lib: Library, query: str) -> int:
    console = _console()
    p = find_pattern(lib, query)
    if p is None:
        best = did_you_mean(query, [q.id for q in lib.patterns] + [q.name for q in lib.patterns])
        hint = f"; did you mean `{best}`?" if best else ""
        console.print(f"[red]no pattern `{query}`[/red]{hint}", highlight=False)
        return 1
    kind = f"trait: {p.dimension}, {p.pole} pole" if p.is_trait else "social-cognitive pattern"
    console.print(f"[bold cyan]{p.name}[/bold cyan]  [dim]({p.id}; {kind}; {p.where})[/dim]")
    if p.tags:
        console.print("[dim]tags: " + ", ".join(p.tags) + "[/dim]")
    console.print()
    console.print(unwrap(p.definition))
    _section(console, "Mechanisms", [f"[green]{m.kind}[/green]: {m.text}" for m in p.mechanisms])
    _section(console, "Manifestations", list(p.manifestations))
    _section(console, f"Checklist ({plural(len(p.checklist), 'item')})", [f"{i}. {t}" for i, t in enumerate(p.checklist, 1)],
             bullet="")
    _section(console, "Sources", [s.citation for s in p.sources])
    related = []
    for it in lib.interactions:
        if p.id in it.patterns:
            others = ", ".join(x for x in it.patterns if x != p.id)
            arrow = ""
            if it.direction is not None:
                arrow = " (shapes)" if p.id in it.direction.sources else " (shaped by)"
            related.append(f"[yellow]{it.type}[/yellow]{arrow} {others}: {it.because}")
    for ex in lib.exclusions:
        if p.id in ex.patterns:
            related.append(f"[red]excluded with[/red] {', '.join(x for x in ex.patterns if x != p.id)}: {ex.because}")
    _section(console, "Interactions", related)
    return 0


def _section(console: Console, title: str, lines: list[str], bullet: str = "- ") -> None:
    """A titled list; a line that wraps continues under its own text, not at the margin."""
    if not lines:
        return
    console.print(f"\n[bold]{title}[/bold]")
    for line in lines:
        grid = Table.grid()
        head = f"  {bullet}"
        if not bullet:  # numbered items: the number is the bullet
            number, _, line = line.partition(" ")
            head = f"  {number} "
        grid.add_column(width=len(head), no_wrap=True)
        grid.add_column()
        grid.add_row(head, Text.from_markup(line))
        console.print(grid)
