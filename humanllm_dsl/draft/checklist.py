"""`humanllm draft checklist PATTERN_ID`: a fresh 12-15 item checklist for a pattern of the
library (the method's checklist generator), under the rules of a new draft: checked against
every other pattern's items and names. The result is the pattern's spec file with only its
checklist block replaced: written to a file, or shown as a unified diff to review and apply."""

from __future__ import annotations

import asyncio
import difflib
from pathlib import Path

import attrs

from ..compiler.checker import Checker
from ..compiler.loader import UsageError, display
from ..runtime.calls import CallPolicy, Limits, UsageMeter
from ..runtime.store import JsonlStore
from ..syntax import ast
from ..syntax.diagnostics import Diagnostic
from ..syntax.formatter import INDENT, quote
from ..syntax.parser import parse_text
from .ask import Asker
from .run import library_result
from .synthesis import Synthesizer


@attrs.frozen
class ChecklistResult:
    path: Path  # the pattern's spec file
    old: str
    new: str | None  # the file with the fresh checklist (None: no valid checklist came)
    problems: tuple[str, ...]
    diagnostics: tuple[Diagnostic, ...]
    usage: dict

    def diff(self) -> str:
        shown = display(self.path)
        return "".join(difflib.unified_diff(self.old.splitlines(True), (self.new or self.old).splitlines(True),
                                            f"a/{shown}", f"b/{shown}"))


def fresh_checklist(pattern_id: str, specs: tuple[Path, ...], lm: str = "offline", api_base: str | None = None,
                    limits: Limits = Limits(), max_attempts: int = 3, seed: int = 0,
                    cache_dir: Path | None = None) -> ChecklistResult:
    from ..runtime.backends import LMSpec, configure_cache, make_lm
    from ..runtime.pipeline import LMUnavailable

    result = library_result(specs)
    lib = result.library
    if pattern_id not in lib.by_id:
        from ..syntax.diagnostics import suggestion

        raise UsageError(f"no pattern `{pattern_id}` in {', '.join(map(str, specs))}"
                         f"{suggestion(pattern_id, list(lib.by_id))}")
    pattern = lib.by_id[pattern_id]
    file, module = _module_of(result.files, result.modules, pattern_id)
    old = Path(file).read_text("utf-8")
    meter = UsageMeter()
    try:
        model = make_lm(LMSpec(model=lm, api_base=api_base), seed, cache=cache_dir is not None)
    except (ValueError, ImportError) as exc:
        raise LMUnavailable(f"`{lm}`: {exc}") from None
    model.meter, model.keep_history = meter, False
    if cache_dir is not None:
        configure_cache(cache_dir, True)
    store = JsonlStore(Path(cache_dir or ".") / "checklists.jsonl") if cache_dir else _MemoryStore()
    asker = Asker(CallPolicy(limits), max_attempts)

    async def ask():
        import dspy

        from ..runtime.adapter import FastChatAdapter

        with dspy.context(lm=model, adapter=FastChatAdapter()):
            return await Synthesizer(asker, store, list(lib.patterns)).checklist(pattern)

    try:
        items, problems = asyncio.run(ask())
    finally:
        store.close()
    if items is None:
        return ChecklistResult(Path(file), old, None, tuple(problems), (), meter.as_dict())
    new = replace_checklist(old, module, pattern_id, items)
    shown = module.file
    checker = Checker([m if m is not module else parse_text(new, shown) for m in result.modules])
    checker.check()
    diagnostics = tuple(d for d in checker.diagnostics if d.file == shown or f"`{pattern_id}`" in d.message)
    return ChecklistResult(Path(file), old, new, (), diagnostics, meter.as_dict())


def _module_of(files, modules, pattern_id: str) -> tuple[Path, ast.Module]:
    for file, module in zip(files, modules):
        for item in module.items:
            if isinstance(item, ast.Pattern) and item.id.value == pattern_id:
                return file, module
    raise UsageError(f"pattern `{pattern_id}` was not found in a spec file")


def replace_checklist(text: str, module: ast.Module, pattern_id: str, items: list[str]) -> str:
    """`text` with the checklist block of `pattern_id` replaced by `items` (every other line as it
    was; comments inside the old block go with it). A pattern without a checklist gets one
    before its closing brace."""
    pattern = next(i for i in module.items if isinstance(i, ast.Pattern) and i.id.value == pattern_id)
    old = next((f for f in pattern.fields if isinstance(f, ast.Checklist)), None)
    lines = text.split("\n")
    if old is not None:
        start, end = old.span.line - 1, old.span.end_line
        indent = lines[start][:len(lines[start]) - len(lines[start].lstrip())]
    else:
        start = end = pattern.span.end_line - 1
        indent = INDENT
    block = [f"{indent}checklist {{", *(f"{indent}{INDENT}{quote(item)}" for item in items), f"{indent}}}"]
    return "\n".join(lines[:start] + block + lines[end:])


class _MemoryStore:
    """A work store that keeps nothing (no --cache-dir: one call, nothing to resume)."""

    def __init__(self):
        self.rows: dict[str, dict] = {}

    def get(self, key: str) -> dict | None:
        return self.rows.get(key)

    async def commit(self, row: dict) -> None:
        self.rows[row["id"]] = row

    def close(self) -> None:
        pass
