"""The language server's incremental check gives exactly what a full check gives."""

from __future__ import annotations

from pathlib import Path

from humanllm_dsl.compiler.checker import Checker
from humanllm_dsl.lsp.incremental import PatternMemo
from humanllm_dsl.syntax.parser import parse_text

SPECS = Path(__file__).resolve().parents[1] / "specs"


def _full(modules):
    checker = Checker(modules)
    library = checker.check()
    return library, sorted(checker.diagnostics, key=lambda d: d.sort_key)


def test_remembered_patterns_give_the_full_checks_result_after_each_edit():
    files = sorted(SPECS.rglob("*.hpat"))[:40]
    modules = [parse_text(f.read_text(), str(f)) for f in files]
    memo = PatternMemo()
    memo.check(modules)
    edits = [("family ", "family socal_"),
             ("checklist {", 'checklist {\n    "Does the character sleep?"\n    "Does the character sleep?"'),
             ("definition", "manifestation")]
    for i, (old, new) in enumerate(edits):
        target = next(j for j, f in enumerate(files[i:], i) if old in f.read_text())
        modules[target] = parse_text(files[target].read_text().replace(old, new, 1), str(files[target]))
        library, diagnostics = memo.check(modules)
        expected_library, expected = _full(modules)
        assert sorted(diagnostics, key=lambda d: d.sort_key) == expected
        assert library == expected_library
        assert any(d.file == str(files[target]) for d in expected)  # the edit is seen
