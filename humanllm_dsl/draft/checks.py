"""Validation of the draft programs' answers. Each returns the problems in plain words (empty:
valid); they go back to the LM as feedback on a retry, as in the compile pipeline."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..compiler import model as m
from ..compiler.checker import CHECKLIST_RANGE, _name_words, _norm
from ..runtime.validate import Vocabulary


DEFINITION_SENTENCES = (2, 4)
MAX_MECHANISM_SENTENCES = 2
# Words of praise or blame that a value-neutral item never uses (docs/writing-patterns.md).
JUDGING_WORDS = frozenset({
    "rudely", "foolishly", "admirably", "wisely", "stupidly", "irrationally", "unfairly", "wrongly", "naively",
    "selfishly", "lazily", "arrogantly", "pathetically", "shamefully", "cleverly", "bravely", "unreasonably",
    "inappropriately", "correctly", "properly", "sensibly", "childishly", "stubbornly", "recklessly",
})
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9\"'(])")


def sentences(text: str) -> list[str]:
    """`text` cut into sentences (at . ! ? before a capital)."""
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


def note_problems(notes: list[dict], pointers: Iterable[str], kinds: Iterable[str], limit: int | None = None) -> list[str]:
    """Notes must cite a pointer of the passage and, for a mechanism, an allowed kind."""
    pointers, kinds = set(pointers), tuple(kinds)
    problems = []
    if limit is not None and len(notes) > limit:
        problems.append(f"there are {len(notes)} notes; keep at most {limit}")
    for k, note in enumerate(notes, 1):
        if not note["claim"].strip():
            problems.append(f"note {k} has an empty claim")
        if note["pointer"].strip().strip("[]") not in pointers:
            shown = ", ".join(sorted(pointers)[:12])
            problems.append(f"note {k} cites the pointer `{note['pointer']}`, which is not in the passage "
                            f"(use one of: {shown})")
        if note["aspect"] == "mechanism" and note["kind"] not in kinds:
            problems.append(f"note {k} is a mechanism of kind `{note['kind'] or 'none'}`; give one of: {', '.join(kinds)}")
    return problems


def synthesis_problems(out: dict, note_ids: Iterable[str], kinds: Iterable[str]) -> list[str]:
    known, kinds = set(note_ids), tuple(kinds)
    problems = []

    def cited(where: str, claim: dict) -> None:
        if not claim["text"].strip():
            problems.append(f"{where} is empty")
        if not claim["notes"]:
            problems.append(f"{where} cites no note: give the ids of the notes it rests on")
        unknown = [n for n in claim["notes"] if n not in known]
        if unknown:
            problems.append(f"{where} cites unknown note ids {', '.join(unknown)}: use ids from the notes as given")

    n = sum(len(sentences(c["text"])) for c in out["definition"])
    if not DEFINITION_SENTENCES[0] <= n <= DEFINITION_SENTENCES[1] or not out["definition"]:
        problems.append(f"the definition has {n} sentences; write {DEFINITION_SENTENCES[0]} to "
                        f"{DEFINITION_SENTENCES[1]}")
    for k, claim in enumerate(out["definition"], 1):
        cited(f"definition sentence {k}", claim)
    if not out["mechanisms"]:
        problems.append("there is no mechanism; give at least one the notes support")
    seen = set()
    for k, mech in enumerate(out["mechanisms"], 1):
        if mech["kind"] not in kinds:
            problems.append(f"mechanism {k} has kind `{mech['kind']}`; use one of: {', '.join(kinds)}")
        if mech["kind"] in seen:
            problems.append(f"mechanism {k} repeats the kind `{mech['kind']}`: write one entry per kind")
        seen.add(mech["kind"])
        if len(sentences(mech["text"])) > MAX_MECHANISM_SENTENCES:
            problems.append(f"mechanism {k} has more than {MAX_MECHANISM_SENTENCES} sentences")
        cited(f"mechanism {k}", mech)
    if not out["manifestations"]:
        problems.append("there is no manifestation; give 3 to 6 real-world examples")
    for k, claim in enumerate(out["manifestations"], 1):
        if len(sentences(claim["text"])) > 1:
            problems.append(f"manifestation {k} has more than one sentence")
        cited(f"manifestation {k}", claim)
    tags = out["tags"]
    if not 1 <= len(tags) <= 4 or any(not re.fullmatch(r"[a-z][a-z0-9 '-]{0,29}", t) for t in tags):
        problems.append("give 1 to 4 tags, each a short lower-case keyword")
    return problems


def checklist_problems(items: list[str], name: str, library: Iterable[m.Pattern], own_id: str | None = None) -> list[str]:
    """The rules of docs/writing-patterns.md for checklist items, against the library: 12-15
    items; each a "Does the character ...?" question; value-neutral; naming neither its own
    pattern nor any other; repeating no item of its own list nor of another pattern."""
    patterns = [p for p in library if p.id != own_id]
    taken = {_norm(item): p.id for p in patterns for item in p.checklist}
    vocabulary = Vocabulary.of([*patterns, _Named(own_id or "", name)])
    own = _name_words(name)
    low, high = CHECKLIST_RANGE
    problems = [] if low <= len(items) <= high else [f"there are {len(items)} items; write {low} to {high}"]
    seen: dict[str, int] = {}
    for k, item in enumerate(items, 1):
        key = _norm(item)
        if not re.match(r"^Does the character\b", item.strip()) or not item.strip().endswith("?"):
            problems.append(f"item {k} is not a question of the form \"Does the character ...?\"")
        if key in seen:
            problems.append(f"item {k} repeats item {seen[key]}")
        seen.setdefault(key, k)
        if key in taken:
            problems.append(f"item {k} repeats an item of the pattern `{taken[key]}`: \"{item}\"; make it specific")
        if own and own in f" {key} ":
            problems.append(f"item {k} names the pattern itself (`{name}`)")
        problems += [f"item {k} names the pattern `{t}`" for t in vocabulary.pattern_terms(item)
                     if not (own and own in f" {_norm(t)} ")]
        judging = sorted(set(re.findall(r"[a-z]+", item.lower())) & JUDGING_WORDS)
        if judging:
            problems.append(f"item {k} judges the character (`{'`, `'.join(judging)}`): keep it value-neutral")
    return problems


class _Named:
    """The pattern being drafted, as the Vocabulary sees a pattern."""

    def __init__(self, pid: str, name: str):
        self.id, self.name, self.family = pid, name, "social_cognitive"


