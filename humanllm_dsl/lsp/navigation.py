"""Go to definition, find references and rename, for ids of patterns, situations, domains and
datasets wherever they are written (declarations, interactions, excludes, `include` lists), and
for the file of a `use`."""

from __future__ import annotations

import re

from lsprotocol import types as t

from ..syntax import ast
from ..syntax.parser import keywords
from .index import Ref
from .positions import Positions
from .workspace import FileState, Workspace, use_target

RENAMED = ("pattern", "situation", "domain", "dataset")
ID = re.compile(r"[a-z][a-z0-9_]*")


class RenameError(Exception):
    """Why a rename cannot be done, in words for the editor."""


def definition(ws: Workspace, pos: Positions, state: FileState, ref: Ref) -> list[t.Location]:
    if ref.kind == "file":
        use = next((i for i in state.module.items if isinstance(i, ast.Use) and i.path.span == ref.span), None)
        target = use_target(state, use) if use is not None else None
        return [t.Location(target.as_uri(), t.Range(t.Position(0, 0), t.Position(0, 0)))] if target else []
    return [pos.location(s, node.id.span) for s, node in ws.definitions(ref.kind, ref.name)]


def references(ws: Workspace, pos: Positions, ref: Ref, include_declaration: bool) -> list[t.Location]:
    return [pos.location(s, span) for s, span, is_def in ws.references(ref.kind, ref.name)
            if include_declaration or not is_def]


def check_renamable(ws: Workspace, ref: Ref) -> None:
    if ref.kind not in RENAMED:
        raise RenameError(f"only the id of a {', '.join(RENAMED[:-1])} or {RENAMED[-1]} can be renamed")
    if not ws.definitions(ref.kind, ref.name):
        raise RenameError(f"`{ref.name}` is not defined anywhere")
    shipped = sorted({s.path.name for s, _, _ in ws.references(ref.kind, ref.name) if s.stdlib})
    if shipped:
        raise RenameError(f"`{ref.name}` is written in the standard library ({', '.join(shipped)}), "
                          "which is not edited; define your own id instead")


def rename(ws: Workspace, pos: Positions, ref: Ref, new_name: str) -> t.WorkspaceEdit:
    check_renamable(ws, ref)
    if not ID.fullmatch(new_name) or new_name.upper() in keywords():
        raise RenameError(f"`{new_name}` cannot be an id: use lower-case letters, digits and _, starting "
                          "with a letter, and no keyword")
    if ws.definitions(ref.kind, new_name):
        raise RenameError(f"a {ref.kind} `{new_name}` already exists")
    changes: dict[str, list[t.TextEdit]] = {}
    for s, span, _ in ws.references(ref.kind, ref.name):
        changes.setdefault(s.path.as_uri(), []).append(t.TextEdit(pos.range(s, span), new_name))
    return t.WorkspaceEdit(changes=changes)

