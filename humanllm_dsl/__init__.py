"""humanllm: simulate human psychology with language models, from `.hpat` pattern specs.

Public API:
    load(*paths) -> Library          parse and check spec files or folders (raises HpatError)
    check_paths(paths) -> LoadResult the same, returning diagnostics instead of raising
    parse_text(text, filename) -> syntax tree (ast.Module) of one file
    check_text(text, filename) -> Library, for a spec held in a string
    format_module(module) -> str     the canonical text of a syntax tree

Loaded on first use (PEP 562), so `import humanllm_dsl` stays light for `check`:
    ScenarioSynthesis, ConversationSynthesis, ScenarioChecklist, ScenarioVariation,
    ChecklistJudge, HolisticJudge, BundleVetting   the DSPy programs (plain `dspy.Module`s)
    pattern_brief(pattern) -> dict   what a generation program sees of a pattern
    make_lm(spec) -> dspy.LM         `offline`, `hf:PATH` or any model string dspy.LM accepts
    Record, load_record, dump_record the typed records of records.jsonl
    Build                            the paths of a build folder
See docs/python.md.
"""

from .compiler.loader import LoadResult, check_paths, load
from .compiler.model import (Dataset, Domain, Exclusion, Interaction, Library, Pattern, Situation,
                             converter, to_json)
from .syntax import ast
from .syntax.diagnostics import Diagnostic, HpatError
from .syntax.formatter import format_module
from .syntax.parser import parse_text


def check_text(text: str, filename: str = "<spec>") -> Library:
    """Parse and check one spec held in a string (no `use` imports); raise HpatError on errors."""
    from .compiler.checker import Checker

    checker = Checker([parse_text(text, filename)])
    library = checker.check()
    errors = [d for d in checker.diagnostics if d.severity == "error"]
    if errors:
        lines = text.split("\n")
        import attrs
        raise HpatError([attrs.evolve(d, source_line=lines[d.line - 1]) if d.line <= len(lines) else d
                         for d in errors])
    return library


_LAZY = {
    **dict.fromkeys(("ScenarioSynthesis", "ConversationSynthesis", "ScenarioChecklist", "ScenarioVariation",
                     "ChecklistJudge", "HolisticJudge", "BundleVetting", "pattern_brief", "dumps"),
                    "humanllm_dsl.compiler.programs"),
    "make_lm": "humanllm_dsl.runtime.backends",
    **dict.fromkeys(("Record", "RecordError", "load_record", "dump_record"), "humanllm_dsl.runtime.records"),
    "Build": "humanllm_dsl.runtime.layout",
}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'humanllm_dsl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    *_LAZY, "Dataset", "Diagnostic", "Domain", "Exclusion", "HpatError", "Interaction", "Library", "LoadResult",
    "Pattern", "Situation", "ast", "check_paths", "check_text", "converter", "format_module", "load",
    "parse_text", "to_json",
]
