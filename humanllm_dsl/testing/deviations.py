"""What real models write instead of the exact answer format, as a transform for
FakeOpenAIServer: each answer of the offline engine is rewritten the way replayed real answers
were, chosen per request from a seed.

Harmless deviations (the parser must accept them at once): a ```json fence around the whole
answer or around each value, a JSON object instead of field markers, a preamble sentence, a
`<think>` block, no final completion marker, a turn with two actions; in role-play chats, the
character's own `Name:` (twice, or bold) before the turn and a `<think>` block.

Harmful ones, on first attempts only (each must cost exactly one retry): an answer cut off in the
middle of its last value with finish_reason "stop", a pattern name in a thought, and a pattern
name in the background.

    deviations = Deviations(pattern_names=["sunk cost fallacy"])
    with FakeOpenAIServer(transform=deviations) as server: ...
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from collections import Counter

import attrs

_SECTION = re.compile(r"\[\[ ## (\w+) ## \]\]\n(.*?)(?=\n\n\[\[ ## |\Z)", re.S)
COMPLETED = "[[ ## completed ## ]]"
HARMLESS = ("fence", "value_fence", "json", "preamble", "think", "no_marker", "two_actions")
HARMFUL = ("cut_stop", "pattern_in_thought", "pattern_in_background")


@attrs.define
class Deviations:
    """A `transform` for FakeOpenAIServer. `rate`: chance of each harmless deviation per answer;
    `harm`: chance of a harmful one per first attempt. `applied` counts what was done;
    `harmful_first_attempts` counts the answers that must be retried once."""

    pattern_names: list[str]
    seed: int = 0
    rate: float = 0.5
    harm: float = 0.35
    applied: Counter = attrs.field(factory=Counter)
    harmful_first_attempts: int = 0
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def __call__(self, request: dict, answer: str) -> tuple[str, str]:
        body = json.dumps(request.get("messages", []), sort_keys=True)
        rng = random.Random(int.from_bytes(hashlib.sha256(f"{self.seed}\n{body}".encode()).digest()[:8], "big"))
        fields = dict(_SECTION.findall(answer.replace(f"\n\n{COMPLETED}", "")))
        if not fields:
            return self._roleplay(request, answer, rng), "stop"
        first = "This is attempt" not in body  # retries carry the attempt in their feedback
        done: list[str] = []
        harmful = [k for k in HARMFUL if self._fits(k, fields)] if first and rng.random() < self.harm else []
        if harmful:
            with self._lock:  # the kind done least so far, so that a short run sees each
                kind = min(harmful, key=lambda k: (self.applied[k], k == "cut_stop"))
                self.applied[kind] += 1
                self.harmful_first_attempts += 1
            done.append(kind)
            if kind == "pattern_in_background":
                fields["background"] = f"{rng.choice(self.pattern_names).capitalize()} is in the air. " + fields["background"]
            elif kind == "pattern_in_thought":
                turns = json.loads(fields["turns"])
                turns[0]["content"] = f"[Classic {rng.choice(self.pattern_names)}, I know.] " + turns[0]["content"]
                fields["turns"] = json.dumps(turns)
        if "turns" in fields and rng.random() < self.rate:
            turns = json.loads(fields["turns"])
            for turn in turns[1::2]:
                turn["content"] = re.sub(r"\) ", ") Fine. (shrugs) ", turn["content"], count=1)
            fields["turns"] = json.dumps(turns)
            done.append("two_actions")
        wanted = {k for k in ("fence", "value_fence", "json", "preamble", "think", "no_marker") if rng.random() < self.rate}
        if "json" in wanted:
            text = json.dumps({k: _value(v) for k, v in fields.items()}, ensure_ascii=False)
            text = _cut(text) if "cut_stop" in done else "```json\n" + text + "\n```"
            done.append("json")
        else:
            if "value_fence" in wanted:
                fields = {k: f"```json\n{v}\n```" if v.lstrip()[:1] in "[{" else v for k, v in fields.items()}
                done.append("value_fence")
            text = "\n\n".join(f"[[ ## {k} ## ]]\n{v}" for k, v in fields.items())
            if "cut_stop" in done:
                text = text[:text.rfind("]]\n") + 3] + _cut(text[text.rfind("]]\n") + 3:])
            elif "no_marker" in wanted:
                done.append("no_marker")
            else:
                text += f"\n\n{COMPLETED}"
            if "fence" in wanted and "cut_stop" not in done:
                text = f"```\n{text}\n```"
                done.append("fence")
        if "preamble" in wanted:
            text = "Sure! Here is my answer, following the requested format.\n\n" + text
            done.append("preamble")
        if "think" in wanted:
            text = "<think>\nThe fields go in order; I will keep each one short.\n</think>\n\n" + text
            done.append("think")
        with self._lock:
            self.applied.update(k for k in done if k not in HARMFUL)
        return text, "stop"

    @staticmethod
    def _fits(kind: str, fields: dict) -> bool:
        return {"cut_stop": True, "pattern_in_thought": "turns" in fields,
                "pattern_in_background": "background" in fields}[kind]

    def _roleplay(self, request: dict, answer: str, rng: random.Random) -> str:
        system = " ".join(str(m.get("content", "")) for m in request.get("messages", []) if m.get("role") == "system")
        found = re.search(r"You are (.+?)\. ", system)
        name = found.group(1) if found else "Someone"
        done = []
        if rng.random() < self.rate:
            answer = f"{name}: {name}: {answer}" if rng.random() < 0.5 else f"**{name}:** {answer}"
            done.append("name_prefix")
        if rng.random() < self.rate:
            answer = f"<think>\nWhat would {name} do here?\n</think>\n\n{answer}"
            done.append("think")
        with self._lock:
            self.applied.update(f"roleplay_{k}" for k in done)
        return answer


def _cut(text: str) -> str:
    """`text` stopped at nine tenths, never at a point where it happens to be whole."""
    return text[: int(len(text) * 0.9)].rstrip('"]} \n')


def _value(raw: str):
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw
