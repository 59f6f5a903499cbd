"""Completion: what the grammar accepts at the cursor. The declaration around the cursor is fed
to the LALR parser; its acceptable keyword terminals are offered, and where it accepts a name,
the ids, families or values that fit there."""

from __future__ import annotations

import re

import attrs
from lark import Token
from lark.exceptions import LarkError

from ..compiler import model as m
from ..syntax.parser import TOP_LEVEL, keywords, raw_parser
from .workspace import Workspace

_TOP = re.compile(r"^(?:%s)\b" % "|".join(TOP_LEVEL), re.M)
_WORD_END = re.compile(r"[a-z0-9_]*$")
ALL_MECHANISMS = tuple(sorted({k for kinds in m.MECHANISM_KINDS.values() for k in kinds}))
_VALUES = {"FAMILY": m.FAMILIES, "DIMENSION": m.DIMENSIONS, "POLE": m.POLES, "MECHANISM": ALL_MECHANISMS}
_INCLUDED = {"PATTERNS": "pattern", "SITUATIONS": "situation", "DOMAINS": "domain"}


@attrs.frozen
class Choice:
    label: str
    kind: str  # keyword | pattern | situation | domain | family | value
    detail: str = ""


def completions(ws: Workspace, text: str, offset: int) -> list[Choice]:
    """What may be written at `offset` of `text` (the word being typed there is replaced)."""
    before = text[:offset]
    line = before[before.rfind("\n") + 1:]
    if "#" in line or line.count('"') % 2:
        return []  # in a comment or a string
    start = before[: len(before) - len(_WORD_END.search(before).group())]
    heads = list(_TOP.finditer(start))
    prefix = start[heads[-1].start():] if heads else start
    try:
        parser = raw_parser().parse_interactive(prefix)
        tokens = list(parser.iter_parse())
        accepted = parser.accepts()
    except LarkError:
        return [Choice(k.lower(), "keyword") for k in sorted(keywords())]
    found = [Choice(k.lower(), "keyword") for k in sorted(accepted & keywords())]
    if "NAME" in accepted:
        found += _names(ws, tokens)
    return found


def _names(ws: Workspace, tokens: list[Token]) -> list[Choice]:
    kinds = [tok.type for tok in tokens]
    if not kinds or kinds[0] in ("PATTERN", "SITUATION", "DOMAIN", "DATASET") and len(kinds) == 1:
        return []  # a new id
    if kinds[-1] in _VALUES:
        return [Choice(v, "value") for v in _VALUES[kinds[-1]]]
    if kinds[0] == "INTERACTION" and "COLON" in kinds:
        return [Choice(v, "value") for v in m.INTERACTION_TYPES]
    i = len(kinds) - 1
    while i >= 0 and kinds[i] in ("NAME", "COMMA", "ARROW"):
        i -= 1
    anchor = kinds[i] if i >= 0 else None
    if anchor in ("INTERACTION", "EXCLUDE"):
        return _ids(ws, "pattern")
    if anchor in _INCLUDED and i > 0 and kinds[i - 1] == "INCLUDE":
        return _ids(ws, _INCLUDED[anchor])
    if _open_block(kinds) in ("BUNDLE", "HOLD_OUT"):
        return [Choice(v, "family") for v in m.FAMILIES]
    return []


def _ids(ws: Workspace, kind: str) -> list[Choice]:
    return [Choice(name, kind, getattr(node, "name").value if hasattr(node, "name") else "")
            for name, (_, node) in sorted(ws.names(kind).items())]


def _open_block(kinds: list[str]) -> str | None:
    """The keyword that opened the innermost block still open after `kinds`."""
    stack: list[str] = []
    for i, kind in enumerate(kinds):
        if kind == "LBRACE":
            opener = next((k for k in reversed(kinds[:i]) if k not in ("INT", "NAME", "STRING")), "")
            stack.append(opener)
        elif kind == "RBRACE" and stack:
            stack.pop()
    return stack[-1] if stack else None
