"""Hover: what a name under the cursor stands for."""

from __future__ import annotations

from ..syntax import ast
from .index import Ref
from .workspace import FileState, Workspace


def hover_text(ws: Workspace, ref: Ref) -> str | None:
    if ref.kind == "family":
        count = sum(1 for s in ws.files.values() for (k, _), node in s.index.definitions.items()
                    if k == "pattern" and _field(node, ast.Family) == ref.name)
        return f"family `{ref.name}`: {count} pattern{'s' if count != 1 else ''} in the workspace and library"
    if ref.kind == "file":
        return f"`use \"{ref.name}\"`: the patterns of that file join this one"
    found = ws.definitions(ref.kind, ref.name)
    if not found:
        return None
    state, node = found[0]
    if isinstance(node, ast.Pattern):
        return _pattern(state, node)
    described = next((f for f in getattr(node, "fields", ()) if isinstance(f, ast.Describe)), None) \
        or getattr(node, "describe", None)
    title = f"**{node.name.value}** " if hasattr(node, "name") else ""
    text = f"{ref.kind} {title}`{node.id.value}`"
    if described is not None:
        text += f"\n\n{described.text.value}"
    return text + _where(state, node)


def _field(node, kind) -> str | None:
    found = next((f for f in node.fields if isinstance(f, kind)), None)
    if found is None:
        return None
    return found.text.value if isinstance(found, ast.Definition) else found.value.value


def _pattern(state: FileState, node: ast.Pattern) -> str:
    facts = [f"family `{_field(node, ast.Family) or '?'}`"]
    for label, kind in (("dimension", ast.Dimension), ("pole", ast.Pole)):
        value = _field(node, kind)
        if value:
            facts.append(f"{label} `{value}`")
    text = f"**{node.name.value}** `{node.id.value}`\n\n" + " · ".join(facts)
    definition = _field(node, ast.Definition)
    if definition:
        text += f"\n\n{definition}"
    return text + _where(state, node)


def _where(state: FileState, node) -> str:
    origin = "standard library" if state.stdlib else "workspace"
    return f"\n\n*{state.path.name}:{node.id.span.line}* ({origin})"
