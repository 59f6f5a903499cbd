"""The cross-file check, made cheap to repeat: the per-pattern checks (most of `Checker`'s time)
are remembered for every pattern whose syntax tree is unchanged, so after one file is edited
only its patterns are checked again; references, duplicates and datasets are checked in full."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from ..compiler import model as m
from ..compiler.checker import Checker
from ..syntax import ast
from ..syntax.diagnostics import Diagnostic


@attrs.frozen
class _Checked:
    node: ast.Pattern  # kept so that its id() is not reused while remembered
    pattern: m.Pattern
    diagnostics: tuple[Diagnostic, ...]
    item_keys: list[str] | None


class PatternMemo:
    """Per-pattern results keyed by the identity of the pattern's syntax tree (a file that was
    not parsed again keeps its trees, so identity means unchanged, spans included)."""

    def __init__(self) -> None:
        self._done: dict[int, _Checked] = {}

    def check(self, modules: Iterable[ast.Module]) -> tuple[m.Library, list[Diagnostic]]:
        checker = _MemoChecker(modules, self._done)
        library = checker.check()
        live = {id(item) for module in checker.modules for item in module.items}
        for key in [k for k in self._done if k not in live]:
            del self._done[key]
        return library, checker.diagnostics


class _MemoChecker(Checker):
    def __init__(self, modules: Iterable[ast.Module], done: dict[int, _Checked]):
        super().__init__(modules)
        self._done = done

    def pattern(self, node: ast.Pattern) -> m.Pattern:
        hit = self._done.get(id(node))
        if hit is None:
            before = len(self.diagnostics)
            result = super().pattern(node)
            self._done[id(node)] = _Checked(node, result, tuple(self.diagnostics[before:]),
                                            self.item_keys.get(node.id.value))
            return result
        self.diagnostics.extend(hit.diagnostics)
        if hit.item_keys is not None:
            self.item_keys[node.id.value] = hit.item_keys
        return hit.pattern
