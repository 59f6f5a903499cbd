"""The .hpat front end: text -> syntax tree, diagnostics, and the formatter."""

from . import ast
from .diagnostics import Diagnostic, HpatError
from .parser import parse_text
from .span import Span

__all__ = ["Diagnostic", "HpatError", "Span", "ast", "parse_text"]
