"""The offline engine's answers to the draft programs: deterministic functions of the request.

Notes are sentences of the passage picked by cue words (\"is the tendency\", \"because\", \"for
example\") and cited with the pointer they sit under; the synthesis quotes the notes it cites;
the checklist turns the summary's sentences into questions. Placeholder data, like every offline
answer: it lets the command run and be tested with no network, and its drafts say `offline`."""

from __future__ import annotations

import json
import random
import re

from .checks import sentences
from .chunks import pointed

_DEFINITION = re.compile(r"\b(is|are) (the|a|an) (\w+ )?(tendency|belief|bias|inclination|error|disposition|"
                         r"pattern|illusion|expectation|habit|trait)\b|\brefers? to\b|\bdefined as\b|\bis "
                         r"characteri[sz]ed by\b|\bdescribes? (the|a|how)\b", re.I)
_EXAMPLE = re.compile(r"\bfor (example|instance)\b|\be\.g\.|\bin (everyday|daily|real) life\b|\breal-world\b", re.I)
_SUCH_AS = re.compile(r"\bsuch as\b|\bin practice\b|\bin the field\b", re.I)
_MECHANISM = re.compile(r"\bbecause\b|\bdue to\b|\bdriven by\b|\bresults? from\b|\bstems? from\b|\barises?\b|"
                        r"\bmechanism|\bleads? (people )?to\b|\bcauses?\b|\bexplained by\b|\breflects?\b|\bfeels?\b|\bfuels?\b|"
                        r"\bmakes?\b|\bemotion", re.I)
_KINDS = (("evolutionary", r"evolution|ancestr|adaptive|surviv|natural selection"),
          ("emotional", r"\bfeel|emotion|affect|anxi|fear|pleasure|excite|comfort|regret|mood|hope"),
          ("motivational", r"motivat|\bgoals?\b|desire|\bwants?\b|need for|reward"),
          ("social", r"\bsocial|\bgroups?\b|\bpeers?\b|others'"),
          ("behavioral", r"behav|\bhabit|\bacts?\b|\bactions?\b"))
MAX_NOTES = 8
_COMMON = frozenset({"because", "people", "person", "others", "believe", "belief", "tendency", "example", "instance",
                     "everyday", "should", "without", "through", "before", "after", "between", "during", "something"})
_LEAD = re.compile(r"^(for (example|instance)|in (everyday|daily|real) life|in practice|e\.g\.)\s*,?\s*", re.I)
STEMS = ("Does the character act as if {}?", "Does the character's inner thought show that {}?",
         "Does the character say something that shows that {}?")


def _json(inputs: dict, key: str, default):
    try:
        return json.loads(inputs.get(key, ""))
    except json.JSONDecodeError:
        return default


def _kind(sentence: str, allowed: list[str]) -> str:
    for kind, cue in _KINDS:
        if kind in allowed and re.search(cue, sentence, re.I):
            return kind
    return "cognitive"


def read_chunk(inputs: dict, rng: random.Random) -> dict:
    pattern = _json(inputs, "pattern", {})
    allowed = pattern.get("mechanism_kinds") or ["cognitive"]
    notes = {"definition": [], "mechanism": [], "manifestation": []}
    for pointer, text in pointed(inputs.get("passage", "")):
        for s in sentences(text):
            if not 5 <= len(s.split()) <= 45:
                continue
            aspect = ("definition" if _DEFINITION.search(s) else "manifestation" if _EXAMPLE.search(s)
                      else "mechanism" if _MECHANISM.search(s) else "manifestation" if _SUCH_AS.search(s) else None)
            if aspect and len(notes[aspect]) < 3:
                notes[aspect].append({"aspect": aspect, "kind": _kind(s, allowed) if aspect == "mechanism" else "",
                                      "claim": s[:400], "pointer": pointer})
    ordered = [n for group in zip(*(notes[a] + [None] * 3 for a in notes)) for n in group if n]
    return {"chunk_notes": ordered[:MAX_NOTES]}


def condense(inputs: dict, rng: random.Random) -> dict:
    notes = [n for n in _json(inputs, "notes", []) if isinstance(n, dict)]
    limit = int(inputs.get("limit", "12") or 12)
    unique = list({n.get("claim", ""): n for n in notes}.values())
    by_aspect = {a: [n for n in unique if n.get("aspect") == a] for a in ("definition", "mechanism", "manifestation")}
    merged = [n for group in zip(*(v + [None] * limit for v in by_aspect.values())) for n in group if n]
    return {"paper_notes": merged[:limit]}


def synthesis(inputs: dict, rng: random.Random) -> dict:
    notes = [n for n in _json(inputs, "notes", []) if isinstance(n, dict)]
    kinds = _json(inputs, "pattern", {}).get("mechanism_kinds") or ["cognitive"]
    of = lambda aspect: [n for n in notes if n.get("aspect") == aspect]  # noqa: E731
    pool = of("definition") + of("mechanism") + of("manifestation")
    definition = [{"text": n["claim"], "notes": [n["id"]]} for n in pool[:3]]
    mechanisms = []
    for kind in kinds:
        found = [n for n in of("mechanism") if n.get("kind") == kind]
        if found:
            mechanisms.append({"kind": kind, "text": found[0]["claim"], "notes": [n["id"] for n in found[:3]]})
    manifestations = [{"text": n["claim"], "notes": [n["id"]]} for n in of("manifestation")[:5]]
    words = [w for w in re.findall(r"[a-z]{6,}", " ".join(n.get("claim", "") for n in notes).lower())
             if w not in _COMMON]
    common = sorted(set(words), key=lambda w: (-words.count(w), w))
    return {"definition": definition, "mechanisms": mechanisms, "manifestations": manifestations,
            "tags": common[:2] or ["draft"]}


def checklist(inputs: dict, rng: random.Random) -> dict:
    """Questions from the summary's sentences, leaving out those holding a term the feedback
    refused (`...`) or the pattern's own name."""
    pattern = _json(inputs, "pattern", {})
    refused = {t.lower() for t in re.findall(r"`([^`]+)`", inputs.get("feedback", ""))}
    refused |= {w for w in re.findall(r"[a-z]{4,}", pattern.get("name", "").lower())}
    texts = [*sentences(pattern.get("definition", "")), *(m.split(": ", 1)[-1] for m in pattern.get("mechanisms", [])),
             *pattern.get("manifestations", [])]
    clauses = []
    for text in texts:
        for s in sentences(text):
            clause = _LEAD.sub("", _LEAD.sub("", s.rstrip(".!? ")))
            if clause and not any(t in clause.lower() for t in refused):
                clauses.append(clause[:1].lower() + clause[1:])
    items = [stem.format(c) for stem in STEMS for c in clauses]
    return {"checklist_items": list(dict.fromkeys(items))[:13]}


def answers() -> dict:
    """Each draft Signature -> its answer (registered in runtime.offline._answers)."""
    from . import programs as P

    return {P.ReadChunk: read_chunk, P.CondenseNotes: condense, P.SynthesizeDraft: synthesis,
            P.WritePatternChecklist: checklist}
