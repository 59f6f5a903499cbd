"""Role-play rollouts: the evaluated model plays one target character of a scenario.

The model gets the character's SFT system prompt (`runtime.sft.system_prompt`) and, as user
messages, the other characters' reference turns as that character perceives them (thoughts
removed). At each of the character's turns it writes a new turn (thought / action / speech),
which stays in its own history. The rollout is the reference conversation with the character's
turns replaced by the generated ones.
"""

from __future__ import annotations

from ..runtime.channels import split_channels, visible
from ..runtime.sft import SCENE_START, system_prompt
from .data import Sample
from .lms import chat


def rollout(sample: Sample, lm, *, max_tokens: int | None = 300, seed: int = 0) -> dict:
    """Play `sample.character` through the scenario's conversation.

    Args:
        sample: the scenario and target character.
        lm: the evaluated model (a `dspy.LM`).
        max_tokens: the cap on each generated turn.
        seed: part of each call's rollout id, so different seeds sample anew.
    Returns:
        `{"id", "record", "character", "split", "turns": [{"char", "content", "thought", "action",
        "speech", "generated", "truncated" (only when cut off at max_tokens)}]}`.
    """
    record, name = sample.record, sample.character
    system = system_prompt(record, name)
    history: list[dict] = []
    pending: list[str] = []
    turns = []
    for i, turn in enumerate(record["conversation"]):
        if turn["char"] != name:
            seen = visible(turn["content"])
            pending.append(f"{turn['char']}: {seen}" if seen else f"{turn['char']}: (says nothing)")
            turns.append(_turn(turn["char"], turn["content"], generated=False))
            continue
        if not pending and history and history[-1]["role"] == "assistant":
            continue  # two own turns in a row: the previous generated turn speaks for both
        history.append({"role": "user", "content": "\n".join(pending) if pending else SCENE_START})
        pending = []
        text, truncated = chat(lm, system, history, max_tokens=max_tokens, rollout_id=f"{sample.id}/turn{i}/seed{seed}")
        history.append({"role": "assistant", "content": text})
        turns.append(_turn(name, text, generated=True, truncated=truncated))
    return {"id": sample.id, "record": sample.record_id, "character": name, "split": sample.split, "turns": turns}


def _turn(char: str, content: str, generated: bool, truncated: bool = False) -> dict:
    ch = split_channels(content)
    row = {"char": char, "content": content, "thought": ch.thought, "action": ch.action, "speech": ch.speech,
           "generated": generated}
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
    turns = [_turn(t["char"], t["content"], generated=False) for t in sample.record["conversation"]]
    return {"id": sample.id, "record": sample.record_id, "character": sample.character, "split": sample.split,
            "turns": turns}
