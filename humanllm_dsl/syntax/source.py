"""Reading spec files: bytes to text, with clear diagnostics for encoding problems."""

from __future__ import annotations

from .diagnostics import Diagnostic

BOM = "\ufeff"


def decode(data: bytes, file: str) -> tuple[str | None, list[Diagnostic]]:
    """Decode UTF-8 (a BOM is accepted and dropped; CRLF and CR become LF)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        head = data[: exc.start]
        line = head.count(b"\n") + 1
        column = exc.start - (head.rfind(b"\n") + 1) + 1
        bad = data[exc.start: exc.start + 1].hex()
        return None, [Diagnostic(
            file, line, column,
            f"the file is not valid UTF-8 (byte 0x{bad} cannot be decoded)",
            hint="save the file as UTF-8 text; every spec file must be UTF-8",
        )]
    if text.startswith(BOM):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n"), []
