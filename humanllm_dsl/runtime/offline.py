"""The offline engine: the embedded default LM.

It answers every program of `humanllm_dsl.compiler.programs` deterministically from the seed and
the request (which carries the slot's own patterns, names and situation), and builds its answers
from the spec's content: thoughts voice the mechanisms of the character's patterns, the design
analysis quotes the declared interactions, and so on. Like every generator, it never sees a
checklist: it writes the scenario-level checklist from the patterns' mechanisms. It speaks the
ChatAdapter's `[[ ## field ## ]]` format, so its answers pass through the same DSPy adapters and
validators as a real LM's.
Everything it writes is placeholder data for running and testing the pipeline, labelled
`offline` in the manifest and the dataset card.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading

from dspy.lm15 import Response

from .engines import AsyncEngine, Engine, message_text, response, text_of

MODEL = "humanllm/offline"
_OUTPUTS = re.compile(r"Your output fields are:\n(.*?)\n(?:All interactions|\Z)", re.S)
_FIELD = re.compile(r"^\d+\. `(\w+)`", re.M)
_SECTION = re.compile(r"\[\[ ## (\w+) ## \]\]\n(.*?)(?=\n\n\[\[ ## |\n\nRespond with|\Z)", re.S)

ACTIONS = [
    "leans forward", "folds arms", "glances at the door", "taps the table", "lets out a slow breath",
    "raises an eyebrow", "nods slowly", "shifts in the seat", "looks down at the notes", "smiles briefly",
    "rubs the back of the neck", "crosses the room", "sets the cup down", "frowns", "tilts the head",
]
FACTORS = [
    "a tight deadline is added", "an outsider is now watching", "the stakes are doubled",
    "the meeting moves to a public place", "one character has new information", "the characters are now strangers",
    "a trusted third party vouches for one side", "the conversation happens late at night",
]


def _phrase(item: str) -> str:
    """'Does the character ask X?' -> 'ask X'."""
    text = re.sub(r"^\s*(Does|Do|Is|Has)\s+the\s+character('s)?\s+", "", item.strip(), flags=re.I)
    return text.rstrip("?. ").strip()


def _mechanisms(pattern: dict) -> list[str]:
    """A pattern summary's mechanisms without their kinds: 'cognitive: X' -> 'X'."""
    return [m.split(": ", 1)[-1].rstrip(". ") for m in pattern.get("mechanisms", [])]


_NAMED = re.compile(r"names the pattern `([^`]+)`")


def _unnamed(texts: list[str], inputs: dict, patterns: list[dict]) -> list[str]:
    """`texts` without those that name a pattern: the request's own patterns (by name or id), and
    those a rejected attempt's feedback says were named (the offline engine takes feedback too)."""
    banned = {p.get("name", "").lower() for p in patterns} | {p.get("id", "").replace("_", " ") for p in patterns}
    banned |= {name.lower() for name in _NAMED.findall(inputs.get("feedback", ""))}
    banned.discard("")
    return [t for t in texts if not any(re.search(rf"\b{re.escape(b)}", t.lower().replace("_", " ")) for b in banned)]


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


class OfflineEngine(Engine):
    """A dspy engine: `dspy.LM("humanllm/offline", engine=OfflineEngine(seed))`."""

    calls_total = 0  # across instances: lets tests see that a resumed run made no call

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._lock = threading.Lock()
        self.calls = 0

    def dump_state(self) -> dict:
        return {"seed": self.seed}

    @classmethod
    def load_state(cls, state: dict) -> "OfflineEngine":
        return cls(state.get("seed", 0))

    def complete(self, request) -> Response:
        system = text_of(request.system)
        # The request is the last user message; earlier user/assistant pairs are demos.
        users = [message_text(msg) for msg in request.messages if msg.role == "user"]
        user = users[-1] if users else ""
        outputs = _OUTPUTS.search(system)
        fields = _FIELD.findall(outputs.group(1)) if outputs else []
        inputs = {k: v.strip() for k, v in _SECTION.findall(user)}
        digest = hashlib.sha256(f"{self.seed}\n{system}\n{user}".encode("utf-8")).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        if not fields:  # a plain chat, not a DSPy program: play the character the system prompt names
            body = _roleplay_turn(system, user, rng)
        else:
            generate = GENERATORS.get(frozenset(fields))
            if generate is None:
                raise ValueError(f"the offline engine has no answer for a program with outputs {sorted(fields)}")
            values = generate(inputs, rng)
            if set(values) != set(fields):
                raise ValueError(f"the offline engine answered fields {sorted(values)} for a program with outputs "
                                 f"{sorted(fields)}")
            body = "\n\n".join(f"[[ ## {k} ## ]]\n{v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}"
                               for k, v in values.items()) + "\n\n[[ ## completed ## ]]"
        with self._lock:
            self.calls += 1
            OfflineEngine.calls_total += 1
        prompt_tokens = (len(system) + len(user)) // 4
        out_tokens = len(body) // 4
        return response(MODEL, body, "stop", prompt_tokens, out_tokens)


class AsyncOfflineEngine(AsyncEngine):
    """The offline engine for `acall`: its answers take no I/O, so it just runs them."""


# ---- answers ----------------------------------------------------------------------------
def _json(inputs: dict, key: str, default=None):
    try:
        return json.loads(inputs.get(key, ""))
    except json.JSONDecodeError:
        return default


def _scenario(inputs: dict, rng: random.Random) -> dict:
    patterns = _json(inputs, "patterns", [])
    interactions = _json(inputs, "interactions", [])
    names = _json(inputs, "candidate_names", [])
    count = int(inputs.get("character_count", "2") or 2)
    names = names[:count]
    protagonist = rng.choice(names)
    others = [n for n in names if n != protagonist]
    order = [protagonist] + others
    char2pattern: dict[str, list[str]] = {n: [] for n in names}
    for i, p in enumerate(patterns):
        char2pattern[order[i % len(order)] if i else protagonist].append(p["id"])
    char2pattern = {k: v for k, v in char2pattern.items() if v}
    situation = inputs.get("situation", "")
    domain = inputs.get("domain", "")
    lines = [f"The scenario combines {', '.join(p['name'] for p in patterns)} in a {situation.split(':')[0]} "
             f"situation ({domain})."]
    for it in interactions:
        lines.append(f"{' and '.join(it['patterns'])} {it['type']}: {it.get('because', '')} "
                     f"Expected: {it.get('expect', '')}")
    for name, ids in char2pattern.items():
        lines.append(f"{name} carries {', '.join(ids)}.")
    by_id = {p["id"]: p for p in patterns}
    characters = []
    for name in names:
        own = [by_id[i] for i in char2pattern.get(name, [])]
        examples = [rng.choice(found) for p in own if (found := _unnamed(p.get("manifestations", []), inputs, patterns))]
        habits = " ".join(f"Once, {e[0].lower()}{e[1:]}" for e in examples)
        characters.append({
            "name": name,
            "about_self": f"{name} is {rng.randint(19, 71)} and {'the person at the centre of events' if name == protagonist else 'closely involved'}. {habits}".strip(),
            "about_others": {o: f"{name} sees {o} as {rng.choice(['reliable', 'hard to read', 'a rival', 'an old friend', 'well-meaning but pushy', 'someone to impress'])}."
                             for o in names if o != name},
        })
    background = (f"{situation} {domain.rstrip('.')}. It is {rng.choice(['early morning', 'a rainy afternoon', 'late evening', 'a busy weekday'])} "
                  f"and {', '.join(names[:-1])} and {names[-1]} have to settle something that matters to all of them.")
    return {"design_analysis": "\n".join(lines), "background": background, "characters": characters,
            "protagonist": protagonist, "char2pattern": char2pattern}


def _conversation(inputs: dict, rng: random.Random) -> dict:
    scenario = _json(inputs, "scenario", {})
    names = [c["name"] for c in scenario.get("characters", [])]
    protagonist = scenario.get("protagonist", names[0] if names else "")
    low, high = int(inputs.get("min_turns", 12)), int(inputs.get("max_turns", 20))
    n = rng.randint(low, high)
    if len(names) == 2 and n % 2:  # two speakers alternate: opening with the other one, n is even
        n = n + 1 if n < high else n - 1
    supporting = [x for x in names if x != protagonist] or names
    speakers = [rng.choice(supporting)]
    for i in range(1, n - 1):
        options = [x for x in names if x != speakers[-1] and (i < n - 2 or x != protagonist)]
        speakers.append(rng.choice(options or supporting))
    speakers.append(protagonist)
    patterns = scenario.get("patterns", [])
    reasons = {p["id"]: _unnamed(_mechanisms(p), inputs, patterns) for p in patterns}
    c2p = scenario.get("char2pattern", {})
    turns = []
    for i, who in enumerate(speakers):
        own = [r for pid in c2p.get(who, []) for r in reasons.get(pid, [])]
        other = speakers[i - 1] if i else rng.choice([x for x in names if x != who] or [who])
        thought = (f"{rng.choice(['It is the same as always:', 'I know how this goes:', 'Again I feel it:'])} "
                   f"{_lower_first(rng.choice(own))}." if own else f"Let me see where {other} is going with this.")
        speech = rng.choice([
            f"{other}, I hear you, but I see this differently.", f"Let's be honest about what is at stake here, {other}.",
            "I need a moment to think about that.", f"That is not how I remember it, {other}.",
            "Fine. Then tell me what you would do instead.", f"I am not leaving until we sort this out, {other}.",
        ])
        turns.append({"char": who, "content": f"[{thought}] ({rng.choice(ACTIONS)}) {speech}"})
    return {"turns": turns}


_PLAYED = re.compile(r"^You are (.+?)\. ", re.M)


def _roleplay_turn(system: str, user: str, rng: random.Random) -> str:
    """One in-character turn for a role-play chat (the SFT system prompt names the character)."""
    found = _PLAYED.search(system)
    name = found.group(1) if found else "the character"
    speakers = re.findall(r"^(\w[\w .'-]*?): ", user, re.M)
    other = speakers[-1] if speakers else "everyone"
    thought = rng.choice([f"What does {other} really want from me?", "I should not give in so easily.",
                          "This matters more to me than I let on.", f"I am {name}, and I know where I stand."])
    speech = rng.choice([f"{other}, I hear you, but I see this differently.", "I need a moment to think about that.",
                         f"Let's be honest about what is at stake here, {other}.", "Fine. Tell me what you would do instead."])
    return f"[{thought}] ({rng.choice(ACTIONS)}) {speech}"


def _checklist_for(scenario: dict, inputs: dict, rng: random.Random,
                   when: str = "in this scene") -> dict[str, list[str]]:
    """2-4 items per pattern carrier, each asking whether a mechanism of their patterns shows."""
    patterns = scenario.get("patterns", [])
    reasons = {p["id"]: _unnamed(_mechanisms(p), inputs, patterns) for p in patterns}
    result = {}
    for who, ids in scenario.get("char2pattern", {}).items():
        pool = list(dict.fromkeys(r for pid in ids for r in reasons.get(pid, [])))
        chosen = rng.sample(pool, min(len(pool), rng.randint(2, 4)))
        while len(chosen) < 2:
            chosen.append(chosen[0] if chosen else "their motives steer what they do")
        result[who] = [f"Does {who} act {when} as if {_lower_first(reason)}?" for reason in chosen]
    return result


def _checklist(inputs: dict, rng: random.Random) -> dict:
    return {"checklist": _checklist_for(_json(inputs, "scenario", {}), inputs, rng)}


def _variation(inputs: dict, rng: random.Random) -> dict:
    scenario = _json(inputs, "scenario", {})
    factors = rng.sample(FACTORS, rng.randint(1, 3))
    return {"changed_factors": factors,
            "analysis": "With " + "; ".join(factors) + ", each character's patterns show more sharply under the new pressure.",
            "varied_background": f"{scenario.get('background', '')} This time, {'; '.join(factors)}.",
            "varied_checklist": _checklist_for(scenario, inputs, rng, when="under the changed circumstances")}


_IGNORED = frozenset({"character", "characters", "scene", "their", "other", "others", "about", "someone",
                      "something", "while", "which", "there", "would", "could", "should"})


def _own_lines(transcript: str, character: str) -> list[str]:
    """The judged character's turns in a `Name: content` transcript (all lines if none match)."""
    lines = [ln.strip() for ln in transcript.splitlines() if ln.strip()]
    own = [ln[len(character) + 1:].strip() for ln in lines if character and ln.startswith(f"{character}:")]
    return own or lines


def _quote(line: str, word: str, width: int = 16) -> str:
    """A word-for-word window of `line` around the first word containing `word`."""
    tokens = line.split()
    at = next((i for i, t in enumerate(tokens) if word in t.lower()), 0)
    lo = max(0, at - width // 2)
    return " ".join(tokens[lo:lo + width])


def _judge(inputs: dict, rng: random.Random) -> dict:
    """Keyword matching: an item is satisfied (1) when at least half of its content words occur in
    the judged character's own turns; its evidence is a verbatim quote around the first match.
    Otherwise 0. Deterministic; a placeholder for a real judge."""
    items = _json(inputs, "items", [])
    character = inputs.get("character", "").strip()
    own = _own_lines(inputs.get("transcript", ""), character)
    text = "\n".join(own).lower()
    name_words = {w.lower() for w in character.split()}
    verdicts = []
    for i, item in enumerate(items, 1):
        words = [w for w in dict.fromkeys(re.findall(r"[a-z]{5,}", _phrase(item).lower()))
                 if w not in _IGNORED and w not in name_words]
        hits = [w for w in words if w in text]
        score = 1 if words and len(hits) >= max(1, (len(words) + 1) // 2) else 0
        evidence = ""
        if score:
            line = max(own, key=lambda ln: sum(w in ln.lower() for w in hits))
            evidence = _quote(line, hits[0])
        verdicts.append({"item": i, "score": score, "evidence": evidence})
    return {"verdicts": verdicts}


def _holistic(inputs: dict, rng: random.Random) -> dict:
    """Placeholder ratings, seeded by the request: 40-70, plus 10 on each scale when every turn of
    the character mixes all three channels ([thought], (action), speech)."""
    own = _own_lines(inputs.get("transcript", ""), inputs.get("character", "").strip())
    channels = bool(own) and all("[" in ln and "(" in ln and re.sub(r"\[.*?\]|\(.*?\)", "", ln).strip() for ln in own)
    bonus = 10 if channels else 0
    return {"anthropomorphism": rng.randint(40, 70) + bonus, "fidelity": rng.randint(40, 70) + bonus,
            "rationale": "Offline placeholder rating" + (" (every turn uses all three channels)." if bonus else ".")}


def _vetting(inputs: dict, rng: random.Random) -> dict:
    """The bundle screen, deterministic: veto when two trait markers of opposite poles are declared
    to `conflict` (one character could be asked for opposite dispositions); otherwise keep."""
    patterns = {p.get("id"): p for p in _json(inputs, "patterns", []) if isinstance(p, dict)}
    for it in _json(inputs, "interactions", []):
        ids = [i for i in it.get("patterns", []) if i in patterns]
        poles = {re.search(r"(\w+) pole", patterns[i].get("kind", "")).group(1)
                 for i in ids if re.search(r"(\w+) pole", patterns[i].get("kind", ""))}
        if it.get("type") == "conflict" and len(ids) >= 2 and poles == {"positive", "negative"}:
            return {"verdict": "veto", "reason": f"{' and '.join(ids)} are opposite-pole traits declared to conflict."}
    return {"verdict": "keep", "reason": f"No declared conflict between opposite-pole traits among {len(patterns)} patterns."}


def _answers() -> dict:
    """Each program's Signature -> its answer. The engine recognises a request by the Signature's
    output fields, taken from the Signature itself, so renaming a field cannot silently break the
    default LM: an answer whose fields differ from its Signature's is an error (see `complete`)."""
    from ..compiler import programs as P
    from ..draft.offline_answers import answers as draft_answers

    return {P.SynthesizeScenario: _scenario, P.SynthesizeConversation: _conversation,
            P.WriteScenarioChecklist: _checklist, P.VaryScenario: _variation,
            P.JudgeChecklist: _judge, P.JudgeHolistic: _holistic, P.VetBundle: _vetting, **draft_answers()}


GENERATORS = {frozenset(signature.output_fields): answer for signature, answer in _answers().items()}
