"""The units of a pattern review: one per pattern, from .hpat files or folders (a library, or a
file `humanllm draft` wrote) or from a build's patterns.json (which holds only the checklists).

Files are parsed, not checked as a library, so a drafted pattern that names patterns outside
the file can still be reviewed; a syntax error stops the review with its file:line:col.

    {"id": "<pattern id>", "name", "family", "where": "file:line:col",
     "aspects": {"definition": [text], "mechanisms": ["kind: text", ...],
                 "manifestations": [...], "checklist": [...]}}
"""

from __future__ import annotations

from pathlib import Path

from ..syntax import ast
from .definitions import REVIEW_ASPECTS
from .sampling import StudyError


def _from_ast(p: ast.Pattern, file: str) -> dict:
    aspects: dict[str, list[str]] = {a: [] for a in REVIEW_ASPECTS}
    family = ""
    for f in p.fields:
        if isinstance(f, ast.Family):
            family = f.value.value
        elif isinstance(f, ast.Definition):
            aspects["definition"].append(f.text.value)
        elif isinstance(f, ast.Mechanism):
            aspects["mechanisms"].append(f"{f.kind.value}: {f.text.value}")
        elif isinstance(f, ast.Manifestation):
            aspects["manifestations"].append(f.text.value)
        elif isinstance(f, ast.Checklist):
            aspects["checklist"] += [i.value for i in f.items]
    where = f"{file}:{p.span.line}:{p.span.column}" if p.span is not None else file
    return {"id": p.id.value, "name": p.name.value, "family": family, "where": where,
            "aspects": {a: texts for a, texts in aspects.items() if texts}}


def review_units(paths: list[Path]) -> list[dict]:
    """One unit per pattern, in file order; a pattern id given twice is an error.

    Args:
        paths: .hpat files and folders, or one build folder (with patterns.json).
    Raises:
        StudyError: a syntax error (file:line:col), no pattern, or a repeated id.
    """
    from ..runtime.layout import Build

    if len(paths) == 1 and Build(paths[0]).patterns.is_file():
        from ..evaluate.data import load_patterns

        return [{"id": pid, "name": info.get("name", pid), "family": info.get("family", ""),
                 "where": str(Build(paths[0]).patterns), "aspects": {"checklist": list(info["checklist"])}}
                for pid, info in load_patterns(paths[0]).items()]
    from ..compiler.loader import parse_files

    modules, diagnostics, _, _ = parse_files(paths)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise StudyError("; ".join(f"{d.file}:{d.line}:{d.column}: {d.message}" for d in errors[:5]))
    units, seen = [], {}
    for module in modules:
        for item in module.items:
            if isinstance(item, ast.Pattern):
                unit = _from_ast(item, module.file)
                if unit["id"] in seen:
                    raise StudyError(f"{unit['where']}: pattern `{unit['id']}` is also defined at {seen[unit['id']]}")
                seen[unit["id"]] = unit["where"]
                units.append(unit)
    if not units:
        raise StudyError(f"{', '.join(map(str, paths))}: no pattern to review")
    return units
