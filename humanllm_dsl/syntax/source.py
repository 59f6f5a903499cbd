"""Reading and writing spec files: bytes to text and back, with clear diagnostics for encoding
problems. A file keeps its byte-order mark and line ending when `fmt` writes it back."""

from __future__ import annotations

import attrs

from .diagnostics import Diagnostic

BOM = "\ufeff"


@attrs.frozen
class Style:
    """How a file is saved: with a UTF-8 byte-order mark or not, and its line ending."""

    bom: bool = False
    newline: str = "\n"

    def encode(self, text: str) -> bytes:
        """`text` (LF line endings) saved in this style."""
        if self.newline != "\n":
            text = text.replace("\n", self.newline)
        return ((BOM if self.bom else "") + text).encode("utf-8")


def style(data: bytes) -> Style:
    """The style of a file: its BOM, and the line ending of its first line (LF if it has none)."""
    first = data.find(b"\n")
    if first > 0 and data[first - 1:first] == b"\r":
        newline = "\r\n"
    elif first == -1 and b"\r" in data or 0 <= data.find(b"\r") < first:
        newline = "\r"
    else:
        newline = "\n"
    return Style(data.startswith(BOM.encode("utf-8")), newline)


def decode(data: bytes, file: str) -> tuple[str | None, list[Diagnostic]]:
    """Decode UTF-8 (a BOM is accepted and dropped; CRLF and CR become LF)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = max(data.rfind(b"\n", 0, exc.start), data.rfind(b"\r", 0, exc.start)) + 1
        head = data[:line_start].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        line_end = len(data)
        for stop in (b"\n", b"\r"):
            found = data.find(stop, exc.start)
            if found != -1:
                line_end = min(line_end, found)
        before = data[line_start:exc.start].decode("utf-8", "replace")
        if line_start == 0:
            before = before.removeprefix(BOM)
        bad = data[exc.start: exc.start + 1].hex()
        return None, [Diagnostic(
            file, head.count(b"\n") + 1, len(before) + 1,
            f"the file is not valid UTF-8 (byte 0x{bad} cannot be decoded)",
            hint="save the file as UTF-8 text; every spec file must be UTF-8",
            source_line=(before + data[exc.start:line_end].decode("utf-8", "replace")),
        )]
    if text.startswith(BOM):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n"), []
