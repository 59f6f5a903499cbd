"""Long papers in pieces a model's context holds: pointed units packed into chunks of at most
`max_chars` characters (about a quarter as many tokens), a unit longer than that split at
paragraphs, then sentences. Each piece keeps its pointer, written as a `[p. 3]` line before it."""

from __future__ import annotations

import re

import attrs

from .papers import Paper, Unit

CHUNK_CHARS = 12_000  # about 3,000 tokens: a 30-page paper is about 8 calls
_POINTER_LINE = re.compile(r"^\[(.+)\]$", re.M)


@attrs.frozen
class Chunk:
    paper: str
    index: int
    pointers: tuple[str, ...]
    text: str

    @property
    def id(self) -> str:
        return f"{self.paper}#{self.index}"


def pieces(unit: Unit, max_chars: int) -> list[Unit]:
    if len(unit.text) <= max_chars:
        return [unit]
    parts = [p for p in re.split(r"\n\s*\n", unit.text) if p.strip()]
    if len(parts) == 1:
        parts = re.split(r"(?<=[.!?])\s+", unit.text)
    out, current = [], ""
    for part in parts:
        while len(part) > max_chars:  # one sentence longer than a chunk: cut it
            out.append(part[:max_chars])
            part = part[max_chars:]
        if current and len(current) + len(part) + 1 > max_chars:
            out.append(current)
            current = ""
        current = f"{current}\n{part}" if current else part
    if current:
        out.append(current)
    return [Unit(unit.pointer, text.strip()) for text in out]


def chunk_paper(paper: Paper, max_chars: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    body: list[str] = []
    pointers: list[str] = []
    size = 0

    def close() -> None:
        nonlocal body, pointers, size
        if body:
            chunks.append(Chunk(paper.id, len(chunks), tuple(dict.fromkeys(pointers)), "\n\n".join(body)))
        body, pointers, size = [], [], 0

    for unit in paper.units:
        for piece in pieces(unit, max_chars):
            block = f"[{piece.pointer}]\n{piece.text}"
            if size and size + len(block) + 2 > max_chars + len(piece.pointer) + 3:
                close()
            body.append(block)
            pointers.append(piece.pointer)
            size += len(block) + 2
    close()
    return chunks


def pointed(passage: str) -> list[tuple[str, str]]:
    """A chunk's text back as (pointer, text) pieces."""
    marks = list(_POINTER_LINE.finditer(passage))
    return [(m.group(1), passage[m.end():marks[i + 1].start() if i + 1 < len(marks) else len(passage)].strip())
            for i, m in enumerate(marks)]
