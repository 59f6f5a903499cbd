"""The map stage: per chunk, notes on the pattern with pointers (`ChunkReading`); per paper, the
chunk notes merged (`NoteCondensing`, for a paper of several chunks or many notes). Finished
chunks and papers are lines in the work folder (`chunks.jsonl`, `notes.jsonl`), keyed by the
pattern and the paper's text, so a re-run makes no LM call for them."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import attrs

from ..compiler import model as m
from ..runtime.store import FAILURES, JsonlStore
from .ask import Asker
from .checks import note_problems
from .chunks import Chunk, chunk_paper
from .papers import Paper
from .programs import ChunkReading, NoteCondensing

MAX_PAPER_NOTES = 12  # 50 papers x 12 notes keep the synthesis prompt near 30k tokens


@attrs.frozen
class Target:
    """The pattern being drafted, as the programs see it."""

    name: str
    family: str = "social_cognitive"
    dimension: str | None = None
    pole: str | None = None

    @property
    def kinds(self) -> tuple[str, ...]:
        return m.MECHANISM_KINDS[self.family]

    def brief(self) -> dict:
        extra = {"dimension": self.dimension, "pole": self.pole} if self.family == "trait" else {}
        return {"name": self.name, "family": self.family, **extra, "mechanism_kinds": list(self.kinds)}


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def digest(*parts) -> str:
    return hashlib.sha256(dumps(parts).encode("utf-8")).hexdigest()[:16]


def paper_json(paper: Paper) -> dict:
    return {"id": paper.id, "title": paper.meta.title, "authors": list(paper.meta.authors), "year": paper.meta.year}


class NoteTaker:
    def __init__(self, target: Target, work: Path, asker: Asker, chunk_chars: int, durable: bool = False):
        self.target, self.asker, self.chunk_chars = target, asker, chunk_chars
        self.chunks = JsonlStore(work / "chunks.jsonl", durable=durable)
        self.papers = JsonlStore(work / "notes.jsonl", durable=durable)
        self.failures = JsonlStore(work / FAILURES)
        self.reader, self.condenser = ChunkReading(), NoteCondensing()
        self.on_done: Callable[[str], None] = lambda stage: None

    def key(self, paper: Paper) -> str:
        return digest(self.target.brief(), paper_json(paper), paper.digest, self.chunk_chars)

    def stored(self, paper: Paper) -> dict | None:
        row = self.papers.get(paper.id)
        return row if row is not None and row["key"] == self.key(paper) else None

    def chunk_key(self, paper: Paper, chunk: Chunk) -> str:
        return digest(self.target.brief(), paper_json(paper), chunk.text)

    def done_chunks(self, paper: Paper, chunks: list[Chunk]) -> int:
        if self.stored(paper):
            return len(chunks)
        return sum(1 for c in chunks if (self.chunks.get(c.id) or {}).get("key") == self.chunk_key(paper, c))

    async def paper(self, paper: Paper) -> list[dict] | None:
        """The paper's notes (from the work folder when finished before), or None if it failed."""
        row = self.stored(paper)
        if row is not None:  # rows come back with sorted keys: tidy them, so prompts are the same as in the first run
            return [_tidy(n) for n in row["notes"]]
        chunks = chunk_paper(paper, self.chunk_chars)
        results = await asyncio.gather(*(self.chunk(paper, c) for c in chunks))
        if any(r is None for r in results):
            return None
        notes = [n for r in results for n in r]
        if len(chunks) > 1 or len(notes) > MAX_PAPER_NOTES:
            notes = await self.condense(paper, notes, {p for c in chunks for p in c.pointers}) if notes else []
            if notes is None:
                return None
        await self.papers.commit({"id": paper.id, "key": self.key(paper), "notes": notes, "chunks": len(chunks)})
        self.on_done("papers")
        return notes

    async def chunk(self, paper: Paper, chunk: Chunk) -> list[dict] | None:
        key = self.chunk_key(paper, chunk)
        row = self.chunks.get(chunk.id)
        if row is not None and row["key"] == key:
            return [_tidy(n) for n in row["notes"]]
        inputs = dict(pattern=dumps(self.target.brief()), paper=dumps(paper_json(paper)), passage=chunk.text)
        out, problems = await self.asker.ask(
            self.reader, inputs, lambda o: note_problems(o["chunk_notes"], chunk.pointers, self.target.kinds),
            rollout=f"draft/{chunk.id}")
        if out is None:
            self.fail(paper, f"{paper.path}: the notes on {_span(chunk)} could not be taken: {'; '.join(problems)}")
            return None
        notes = [_tidy(n) for n in out["chunk_notes"]]
        await self.chunks.commit({"id": chunk.id, "key": key, "notes": notes})
        self.on_done("chunks")
        return notes

    async def condense(self, paper: Paper, notes: list[dict], pointers: set[str]) -> list[dict] | None:
        inputs = dict(pattern=dumps(self.target.brief()), paper=dumps(paper_json(paper)), notes=dumps(notes),
                      limit=MAX_PAPER_NOTES)
        out, problems = await self.asker.ask(
            self.condenser, inputs,
            lambda o: note_problems(o["paper_notes"], pointers, self.target.kinds, MAX_PAPER_NOTES),
            rollout=f"draft/{paper.id}/condense")
        if out is None:
            self.fail(paper, f"{paper.path}: its notes could not be merged: {'; '.join(problems)}")
            return None
        return [_tidy(n) for n in out["paper_notes"]]

    def fail(self, paper: Paper, reason: str) -> None:
        self.failures.append({"id": paper.id, "reason": reason})
        self.on_done("failures")

    def close(self) -> None:
        for store in (self.chunks, self.papers, self.failures):
            store.close()


def _tidy(note: dict) -> dict:
    return {"aspect": note["aspect"], "kind": note["kind"] if note["aspect"] == "mechanism" else "",
            "claim": " ".join(note["claim"].split()), "pointer": note["pointer"].strip().strip("[]")}


def _span(chunk: Chunk) -> str:
    first, last = chunk.pointers[0], chunk.pointers[-1]
    return first if first == last else f"{first} to {last}"
