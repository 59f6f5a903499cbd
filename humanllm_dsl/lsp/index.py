"""Every name a file defines or refers to, with where it is: what hover, definition, references,
rename and completion look up."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from ..syntax import ast
from ..syntax.span import Span

# What a name stands for. `file` is the path of a `use`.
Kind = str  # pattern | situation | domain | dataset | family | file
INCLUDE_KINDS = {"patterns": "pattern", "situations": "situation", "domains": "domain"}


@attrs.frozen
class Ref:
    kind: Kind
    name: str
    span: Span
    definition: bool = False


@attrs.frozen
class FileIndex:
    refs: tuple[Ref, ...]
    definitions: dict[tuple[Kind, str], ast.Pattern | ast.Situation | ast.Domain | ast.Dataset]

    @classmethod
    def of(cls, module: ast.Module) -> "FileIndex":
        refs = tuple(r for r in _refs(module) if r.span is not None)
        defs = {(kind, item.id.value): item for item in module.items
                for kind in [_DECLARED.get(type(item))] if kind is not None}
        return cls(refs, defs)

    def at(self, line: int, column: int) -> Ref | None:
        """The name under a 1-based line and column (the column may sit just after the name)."""
        for ref in self.refs:
            s = ref.span
            if s.line == line and s.column <= column <= s.end_column:
                return ref
        return None


_DECLARED = {ast.Pattern: "pattern", ast.Situation: "situation", ast.Domain: "domain", ast.Dataset: "dataset"}


def _names(kind: Kind, names) -> Iterator[Ref]:
    for n in names or ():
        yield Ref(kind, n.value, n.span)


def _refs(module: ast.Module) -> Iterator[Ref]:
    for item in module.items:
        kind = _DECLARED.get(type(item))
        if kind is not None:
            yield Ref(kind, item.id.value, item.id.span, definition=True)
        if isinstance(item, ast.Use):
            yield Ref("file", item.path.value, item.path.span)
        elif isinstance(item, ast.Pattern):
            yield from (Ref("family", f.value.value, f.value.span) for f in item.fields if isinstance(f, ast.Family))
        elif isinstance(item, ast.Interaction):
            yield from _names("pattern", item.patterns)
            yield from _names("pattern", item.targets)
        elif isinstance(item, ast.Exclusion):
            yield from _names("pattern", item.patterns)
        elif isinstance(item, ast.Dataset):
            yield from _dataset_refs(item)


def _dataset_refs(item: ast.Dataset) -> Iterator[Ref]:
    for f in item.fields:
        if isinstance(f, ast.Include):
            yield from _names(INCLUDE_KINDS[f.kind], f.names)
        elif isinstance(f, ast.Bundle):
            yield from (Ref("family", r.family.value, r.family.span) for r in f.rules)
        elif isinstance(f, ast.Split):
            for hold in (x for x in f.fields if isinstance(x, ast.HoldOut)):
                yield from (Ref("family", q.family.value, q.family.span) for q in hold.quotas or ())
