"""Document formatting: the text `humanllm fmt` would write, as one edit."""

from __future__ import annotations

from ..syntax.diagnostics import HpatError
from ..syntax.formatter import format_module
from ..syntax.parser import parse_text
from .workspace import normalise


def formatted(text: str) -> str | None:
    """The formatted text (with the file's line ends), or None if it does not parse."""
    try:
        module = parse_text(normalise(text))
    except HpatError:
        return None
    out = format_module(module)
    return out.replace("\n", "\r\n") if "\r\n" in text else out
