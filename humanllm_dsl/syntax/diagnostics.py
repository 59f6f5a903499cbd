"""Diagnostics: what went wrong, where, and how it is shown to a person."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Literal

import attrs

from .span import Span

Severity = Literal["error", "warning"]


@attrs.frozen
class Diagnostic:
    """One message about a spec.

    `line` and `column` are 1-based; `source_line` is the text of that line (for the caret);
    `hint` says in plain words what was expected or how to fix it.
    """

    file: str
    line: int
    column: int
    message: str
    severity: Severity = "error"
    hint: str | None = None
    source_line: str | None = attrs.field(default=None, eq=False)

    @classmethod
    def at(cls, span: Span | None, message: str, *, severity: Severity = "error",
           hint: str | None = None, file: str = "<spec>") -> "Diagnostic":
        if span is None:
            return cls(file, 1, 1, message, severity, hint)
        return cls(span.file, span.line, span.column, message, severity, hint)

    @property
    def sort_key(self) -> tuple:
        return (self.file, self.line, self.column, self.severity != "error", self.message)

    def render(self, source_line: str | None = None, color: bool = False) -> str:
        source_line = source_line if source_line is not None else self.source_line
        label = self.severity
        if color:
            code = "31" if self.severity == "error" else "33"
            label = f"\033[1;{code}m{label}\033[0m"
        out = [f"{self.file}:{self.line}:{self.column}: {label}: {self.message}"]
        if source_line is not None:
            shown = source_line.rstrip("\r\n").replace("\t", " ")
            caret = max(self.column - 1, 0)
            if len(shown) > 100:  # show a window around the caret
                start = max(0, caret - 50)
                shown = ("..." if start else "") + shown[start:start + 100] + ("..." if start + 100 < len(shown) else "")
                caret = caret - start + (3 if start else 0)
            out.append(f"    {shown}")
            out.append("    " + " " * caret + "^")
        if self.hint:
            out.append(f"  {self.hint}")
        return "\n".join(out)


class HpatError(Exception):
    """Raised when specs have errors. Carries every diagnostic of the run, sorted by position."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = sorted(diagnostics, key=lambda d: d.sort_key)
        first = self.diagnostics[0] if self.diagnostics else None
        summary = (f"{first.file}:{first.line}:{first.column}: {first.message}" if first
                   else "invalid spec")
        more = len(self.errors) - 1
        if more > 0:
            summary += f" (and {more} more error{'s' if more > 1 else ''})"
        super().__init__(summary)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """'1 source', '2 sources' (`nouns` for an irregular plural)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a misspelt word, or None."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def suggestion(word: str, candidates: Iterable[str]) -> str:
    """'; did you mean `x`?' or ''."""
    best = did_you_mean(word, candidates)
    return f"; did you mean `{best}`?" if best else ""
