"""The reduce stage: every paper's notes -> a draft pattern (`DraftSynthesis`: definition,
mechanisms by kind, manifestations, each sentence citing note ids), then its checklist
(`ChecklistWriting`, shared with `humanllm draft checklist`). Both answers are kept in the work
folder (`draft.jsonl`), keyed by their inputs, so a re-run with the same notes asks nothing."""

from __future__ import annotations

import attrs

from ..compiler import model as m
from ..compiler.programs import pattern_brief
from ..runtime.store import JsonlStore
from .ask import Asker
from .checks import checklist_problems, synthesis_problems
from .notes import Target, digest, dumps
from .papers import Paper
from .programs import ChecklistWriting, DraftSynthesis


@attrs.frozen
class Draft:
    """A synthesised pattern with the notes each sentence rests on."""

    id: str
    target: Target
    definition: tuple[dict, ...]  # {"text", "notes"}
    mechanisms: tuple[dict, ...]  # {"kind", "text", "notes"}
    manifestations: tuple[dict, ...]
    tags: tuple[str, ...]
    checklist: tuple[str, ...]
    notes: dict  # note id -> {"paper", "aspect", "kind", "claim", "pointer"}

    def cited_papers(self) -> list[str]:
        """The papers the draft rests on: those a sentence cites, in order of first citation."""
        claims = [*self.definition, *self.mechanisms, *self.manifestations]
        return list(dict.fromkeys(self.notes[n]["paper"] for c in claims for n in c["notes"]))

    def as_pattern(self) -> m.Pattern:
        t = self.target
        return m.Pattern(self.id, t.name, t.family, t.dimension, t.pole, " ".join(c["text"] for c in self.definition),
                         tuple(m.Mechanism(c["kind"], c["text"]) for c in self.mechanisms),
                         tuple(c["text"] for c in self.manifestations), self.checklist, (), self.tags)


def numbered_notes(papers: list[Paper], notes: dict[str, list[dict]]) -> dict[str, dict]:
    """Every note with its id (`PAPER:N`), papers in the order given."""
    return {f"{p.id}:{k}": {"paper": p.id, **note} for p in papers for k, note in enumerate(notes.get(p.id, []), 1)}


class Synthesizer:
    def __init__(self, asker: Asker, store: JsonlStore, library: list[m.Pattern]):
        self.asker, self.store, self.library = asker, store, library

    async def _stored(self, name: str, key: str, program, inputs: dict, check) -> tuple[dict | None, list[str]]:
        row = self.store.get(name)
        if row is not None and row["key"] == key:
            return row["answer"], []
        out, problems = await self.asker.ask(program, inputs, check, rollout=f"draft/{name}/{key}")
        if out is not None:
            await self.store.commit({"id": name, "key": key, "answer": out})
        return out, problems

    async def draft(self, pattern_id: str, target: Target, notes: dict[str, dict]) -> tuple[Draft | None, list[str]]:
        listed = [{"id": nid, **note} for nid, note in notes.items()]
        inputs = dict(pattern=dumps(target.brief()), notes=dumps(listed))
        out, problems = await self._stored("synthesis", digest(inputs), DraftSynthesis(target.family), inputs,
                                           lambda o: synthesis_problems(o, notes, target.kinds))
        if out is None:
            return None, [f"the draft could not be written: {'; '.join(problems)}"]
        draft = Draft(pattern_id, target, tuple(_claim(c) for c in out["definition"]),
                      tuple(_claim(c) | {"kind": c["kind"]} for c in out["mechanisms"]),
                      tuple(_claim(c) for c in out["manifestations"]),
                      tuple(t.strip() for t in out["tags"]), (), notes)
        items, problems = await self.checklist(draft.as_pattern())
        if items is None:
            return None, [f"the checklist could not be written: {'; '.join(problems)}"]
        return attrs.evolve(draft, checklist=tuple(items)), []

    async def checklist(self, pattern: m.Pattern) -> tuple[list[str] | None, list[str]]:
        """A fresh checklist for `pattern`, checked against the library (its own old items aside)."""
        inputs = dict(pattern=dumps(pattern_brief(pattern)))
        out, problems = await self._stored(
            f"checklist:{pattern.id}", digest(inputs), ChecklistWriting(), inputs,
            lambda o: checklist_problems(o["checklist_items"], pattern.name, self.library, own_id=pattern.id))
        return (None, problems) if out is None else ([" ".join(i.split()) for i in out["checklist_items"]], [])


def _claim(c: dict) -> dict:
    return {"text": " ".join(c["text"].split()), "notes": list(dict.fromkeys(c["notes"]))}
