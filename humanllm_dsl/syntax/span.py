"""Source positions."""

from __future__ import annotations

import attrs


@attrs.frozen
class Span:
    """Where a node sits in its file: 1-based line and column, end exclusive."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"
