"""Spans (1-based line and column, in characters) <-> LSP positions (0-based, in the code units
the client asked for)."""

from __future__ import annotations

import re

import attrs
from lsprotocol import types as t
from pygls.workspace.position_codec import PositionCodec

from ..syntax.diagnostics import Diagnostic
from ..syntax.span import Span
from .workspace import FileState

# The extent of what a diagnostic points at: a name, a one-line string, or one character.
_TOKEN = re.compile(r'[A-Za-z0-9_]+|"(?:[^"\\\n]|\\.)*"?|\S')


@attrs.frozen
class Positions:
    codec: PositionCodec

    def position(self, state: FileState, line: int, column: int) -> t.Position:
        """From a 1-based line and column."""
        lines = state.text.split("\n")
        return self.codec.position_to_client_units(lines, t.Position(max(line - 1, 0), max(column - 1, 0)))

    def range(self, state: FileState, span: Span) -> t.Range:
        return t.Range(self.position(state, span.line, span.column),
                       self.position(state, span.end_line, span.end_column))

    def location(self, state: FileState, span: Span) -> t.Location:
        return t.Location(state.path.as_uri(), self.range(state, span))

    def from_client(self, state: FileState, position: t.Position) -> tuple[int, int]:
        """A client position as a 1-based line and column."""
        at = self.codec.position_from_client_units(state.text.split("\n"), position)
        return at.line + 1, at.character + 1

    def diagnostic(self, state: FileState, diag: Diagnostic) -> t.Diagnostic:
        lines = state.text.split("\n")
        line = lines[diag.line - 1] if 0 < diag.line <= len(lines) else ""
        found = _TOKEN.match(line, diag.column - 1)
        end = found.end() + 1 if found else diag.column
        severity = t.DiagnosticSeverity.Error if diag.severity == "error" else t.DiagnosticSeverity.Warning
        return t.Diagnostic(
            range=t.Range(self.position(state, diag.line, diag.column), self.position(state, diag.line, end)),
            message=diag.message + (f"\n{diag.hint}" if diag.hint else ""),
            severity=severity, source="humanllm")
