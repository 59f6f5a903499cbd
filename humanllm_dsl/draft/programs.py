"""The DSPy programs of the construction stage: typed Signatures and the Modules that run them,
instructed by `humanllm_dsl/templates/draft_*.jinja`. Ordinary `dspy.Module`s, like those of
`compiler.programs`: import, run, optimise, save and load them.

Map: `ChunkReading` (a passage -> notes with pointers), `NoteCondensing` (a long paper's chunk
notes -> at most `limit` notes). Reduce: `DraftSynthesis` (every paper's notes -> definition,
mechanisms, manifestations, each sentence citing note ids). `ChecklistWriting` (a pattern
summary -> 12-15 checklist items) serves both a new draft and `humanllm draft checklist`.
"""

from __future__ import annotations

from typing import Literal

import dspy
import pydantic

from ..compiler.checker import CHECKLIST_RANGE
from ..compiler.programs import _FEEDBACK, _Program

ASPECTS = ("definition", "mechanism", "manifestation")


class Note(pydantic.BaseModel):
    """One thing a paper says about the pattern, where it says it."""

    aspect: Literal["definition", "mechanism", "manifestation"]
    kind: str = pydantic.Field(default="", description="for a mechanism: its kind (one of the kinds given); else empty")
    claim: str = pydantic.Field(description="what the paper says, in one sentence of your own words")
    pointer: str = pydantic.Field(description="where it says it: one of the [pointer] marks of the passage, as written")

    @pydantic.field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value):
        return "" if value is None else str(value).strip().lower()


class Claim(pydantic.BaseModel):
    """One sentence of the draft and the notes it rests on."""

    text: str = pydantic.Field(description="one sentence")
    notes: list[str] = pydantic.Field(description="the ids of the notes it rests on, as given (e.g. `smith1999:3`)")


class MechanismClaim(pydantic.BaseModel):
    kind: str = pydantic.Field(description="one of the mechanism kinds given")
    text: str = pydantic.Field(description="one or two sentences")
    notes: list[str] = pydantic.Field(description="the ids of the notes it rests on")

    @pydantic.field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value):
        return str(value).strip().lower()


_PATTERN = "the pattern, JSON: name, family (and for a trait its dimension and pole), mechanism_kinds allowed"
_PAPER = "the paper, JSON: id, title, authors, year"


class ReadChunk(dspy.Signature):
    """Take notes on one passage of a paper (templates/draft_read.jinja)."""

    pattern: str = dspy.InputField(desc=_PATTERN)
    paper: str = dspy.InputField(desc=_PAPER)
    passage: str = dspy.InputField(desc="a passage of the paper; each piece starts with its [pointer] line")
    feedback: str = dspy.InputField(desc=_FEEDBACK)
    chunk_notes: list[Note] = dspy.OutputField(
        desc="what the passage says about the pattern's definition, mechanisms and manifestations; an empty list "
             "when it says nothing about them")


class CondenseNotes(dspy.Signature):
    """Merge a long paper's notes (templates/draft_condense.jinja)."""

    pattern: str = dspy.InputField(desc=_PATTERN)
    paper: str = dspy.InputField(desc=_PAPER)
    notes: str = dspy.InputField(desc="the notes taken on the paper's passages, JSON: aspect, kind, claim, pointer")
    limit: int = dspy.InputField(desc="the most notes to keep")
    feedback: str = dspy.InputField(desc=_FEEDBACK)
    paper_notes: list[Note] = dspy.OutputField(
        desc="the paper's notes merged: repeats joined, the most informative kept, each with a pointer it came with")


class SynthesizeDraft(dspy.Signature):
    """Write a draft pattern from the notes (templates/draft_synthesis.jinja)."""

    pattern: str = dspy.InputField(desc=_PATTERN)
    notes: str = dspy.InputField(desc="every paper's notes, JSON: id, paper, aspect, kind, claim, pointer")
    feedback: str = dspy.InputField(desc=_FEEDBACK)
    definition: list[Claim] = dspy.OutputField(desc="2 to 4 sentences saying what the pattern is")
    mechanisms: list[MechanismClaim] = dspy.OutputField(desc="why it happens: one entry per kind the notes support")
    manifestations: list[Claim] = dspy.OutputField(desc="3 to 6 concrete real-world examples, one sentence each")
    tags: list[str] = dspy.OutputField(desc="1 to 4 short lower-case keywords")


class WritePatternChecklist(dspy.Signature):
    """Write a pattern-level checklist (templates/draft_checklist.jinja)."""

    pattern: str = dspy.InputField(desc="the pattern, JSON: name, kind, definition, mechanisms (kind: text), "
                                        "manifestations")
    feedback: str = dspy.InputField(desc=_FEEDBACK)
    checklist_items: list[str] = dspy.OutputField(desc="12 to 15 yes/no questions, each starting "
                                                       "\"Does the character\"")


class ChunkReading(_Program):
    """pattern, paper, passage -> chunk_notes."""

    signature, template = ReadChunk, "draft_read"


class NoteCondensing(_Program):
    """pattern, paper, notes, limit -> paper_notes."""

    signature, template = CondenseNotes, "draft_condense"


class DraftSynthesis(_Program):
    """pattern, notes -> definition, mechanisms, manifestations, tags (each sentence citing notes)."""

    signature, template = SynthesizeDraft, "draft_synthesis"

    def __init__(self, family: str = "social_cognitive"):
        super().__init__(family=family)


class ChecklistWriting(_Program):
    """pattern summary -> checklist_items (12-15)."""

    signature, template = WritePatternChecklist, "draft_checklist"

    def __init__(self, low: int = CHECKLIST_RANGE[0], high: int = CHECKLIST_RANGE[1]):
        super().__init__(low=low, high=high)
