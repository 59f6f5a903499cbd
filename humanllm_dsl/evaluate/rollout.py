"""Role-play rollouts: the evaluated model plays one target character of a scenario.

The model gets the character's SFT system prompt and, as user messages, the other characters'
reference turns as that character perceives them, thoughts removed (both as `runtime.sft.messages_for`
gives them for training). At each of the character's turns it writes a new turn (thought / action / speech),
which stays in its own history. The rollout is the reference conversation with the character's
turns replaced by the generated ones.
"""

from __future__ import annotations

import re

from ..runtime.channels import split_channels, strip_thinking, visible
from ..runtime.sft import messages_for
from .data import Sample
from .lms import THINK_TOKENS, chat


def rollout(sample: Sample, lm, *, max_tokens: int | None = 300, seed: int = 0,
            think_tokens: int = THINK_TOKENS) -> dict:
    """Play `sample.character` through the scenario's conversation.

    Args:
        sample: the scenario and target character.
        lm: the evaluated model (a `dspy.LM`).
        max_tokens: the cap on each generated turn (its visible part: see `lms.chat`).
        seed: part of each call's rollout id, so different seeds sample anew.
        think_tokens: the extra room per turn for a model seen thinking.
    Returns:
        `{"id", "record", "character", "split", "turns": [{"char", "content", "thought", "action",
        "speech", "segments", "generated", "truncated" (only when cut off at max_tokens), "raw" (only
        when the model's text had a <think> block or a name prefix, removed from `content`)}]}`.
    """
    record, name = sample.record, sample.character
    conversation = record["conversation"]
    reference = messages_for(record, name)  # the system prompt, then one user message per own exchange
    prompts = iter(m["content"] for m in reference if m["role"] == "user")
    history: list[dict] = []
    turns = []
    cap = max_tokens
    for i, turn in enumerate(conversation):
        if turn["char"] != name:
            turns.append(_turn(turn["char"], turn["content"], generated=False))
            continue
        if i and conversation[i - 1]["char"] == name:
            continue  # two own turns in a row: the previous generated turn speaks for both
        history.append({"role": "user", "content": next(prompts)})
        reply = chat(lm, reference[0]["content"], history, max_tokens=cap, think_tokens=think_tokens,
                     rollout_id=f"{sample.id}/turn{i}/seed{seed}")
        if reply.thinking and cap is not None and cap == max_tokens:
            cap = max_tokens + think_tokens  # a thinking model: room to think from now on
        text = clean_turn(reply.text, name)
        history.append({"role": "assistant", "content": text})
        turns.append(_turn(name, text, generated=True, truncated=reply.truncated)
                     | ({"raw": reply.text} if text != reply.text else {}))
    return _rollout_row(sample, turns)


def _rollout_row(sample: Sample, turns: list[dict]) -> dict:
    return {"id": sample.id, "record": sample.record_id, "character": sample.character, "split": sample.split,
            "turns": turns}


def clean_turn(text: str, name: str) -> str:
    """A generated turn as the others see it and the judge reads it: no `<think>...</think>`
    block (nothing at all when the text stops inside one) and no leading `Name:` of the
    character's own name (full or first, possibly repeated, possibly bold)."""
    text = strip_thinking(text) or ""
    names = sorted({name, *name.split()[:1]}, key=len, reverse=True)
    prefix = re.compile(rf"^\s*(?:\*\*|__)?\s*(?:{'|'.join(map(re.escape, names))})\s*(?:\*\*|__)?\s*:\s*(?:\*\*|__)?",
                        re.I)
    previous = None
    while previous != text:
        previous, text = text, prefix.sub("", text, count=1)
    return text.strip()


def _turn(char: str, content: str, generated: bool, truncated: bool = False) -> dict:
    ch = split_channels(content)
    row = {"char": char, "content": content, "thought": ch.thought, "action": ch.action, "speech": ch.speech,
           "segments": [s.as_dict() for s in ch.segments], "generated": generated}
    return row | {"truncated": True} if truncated else row


def has_three_channels(turn: dict) -> bool:
    """Whether a turn mixes a [thought], an (action) and speech.

    Args:
        turn: a rollout turn (with `thought`, `action`, `speech`).
    """
    return bool(turn["thought"] and turn["action"] and turn["speech"])


def transcript(turns: list[dict], character: str) -> str:
    """The judge's view: one `Name: content` line per turn; the judged character's turns in full
    (thoughts included), the others' as the character perceived them (no thoughts).

    Args:
        turns: rollout turns (or the record's conversation turns).
        character: the judged character.
    """
    lines = []
    for t in turns:
        content = t["content"] if t["char"] == character else visible(t["content"])
        lines.append(f"{t['char']}: {' '.join(content.split()) or '(says nothing)'}")
    return "\n".join(lines)


def reference_rollout(sample: Sample) -> dict:
    """The record's own conversation as a rollout (to judge the reference data itself).

    Args:
        sample: the scenario and target character.
    """
    return _rollout_row(sample, [_turn(t["char"], t["content"], generated=False) for t in sample.record["conversation"]])
