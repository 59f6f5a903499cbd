"""SFT samples: one per character per scenario.

The system prompt says who the character is, how they see themselves and the others, and the
scene (pattern names are never given). The other characters' turns are the user side, with
their inner thoughts removed; the character's own turns, thoughts included, are the assistant
side. Consecutive turns of others are merged into one user message.
"""

from __future__ import annotations

from collections.abc import Callable

from ..compiler.templates import render
from .channels import visible
from .records import char2pattern, others_of

SCENE_START = "(The scene begins.)"


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate (about 4 characters a token) used for windowing."""
    return max(1, len(text) // 4)


def system_prompt(record: dict, name: str) -> str:
    profile = next(c for c in record["characters"] if c["name"] == name)
    return render("sft_system", name=name, about_self=profile["about_self"],
                  about_others=others_of(profile), background=record["background"])


def messages_for(record: dict, name: str) -> list[dict]:
    """Chat messages for one character: system, then alternating user/assistant, ending with assistant."""
    messages = [{"role": "system", "content": system_prompt(record, name)}]
    pending: list[str] = []
    for turn in record["conversation"]:
        if turn["char"] == name:
            if not pending and messages[-1]["role"] == "assistant":  # two own turns in a row: join them
                messages[-1]["content"] += "\n" + turn["content"]
            else:
                messages.append({"role": "user", "content": "\n".join(pending) if pending else SCENE_START})
                messages.append({"role": "assistant", "content": turn["content"]})
            pending = []
        else:
            seen = visible(turn["content"])
            pending.append(f"{turn['char']}: {seen}" if seen else f"{turn['char']}: (says nothing)")
    return messages if len(messages) > 1 else []


def windows(messages: list[dict], max_tokens: int | None,
            count: Callable[[str], int] = approx_tokens) -> list[list[dict]]:
    """Split a long sample into windows under `max_tokens`, each with the system prompt and
    whole user/assistant exchanges. An exchange longer than the budget becomes its own window."""
    if not messages or max_tokens is None:
        return [messages] if messages else []
    system, pairs = messages[0], [messages[i:i + 2] for i in range(1, len(messages), 2)]
    base = count(system["content"])
    out, current, size = [], [], base
    for pair in pairs:
        cost = sum(count(m["content"]) for m in pair)
        if current and size + cost > max_tokens:
            out.append([system, *current])
            current, size = [], base
        current.extend(pair)
        size += cost
    if current:
        out.append([system, *current])
    return out


def samples(record: dict, max_tokens: int | None = None) -> list[dict]:
    """All SFT samples of a record: `id`, `scenario`, `split`, `character`, `messages`."""
    result, carriers = [], char2pattern(record)
    for character in record["characters"]:
        name = character["name"]
        for k, msgs in enumerate(windows(messages_for(record, name), max_tokens)):
            suffix = f"#{k}" if k else ""
            result.append({"id": f"{record['id']}/{name}{suffix}", "scenario": record["id"],
                           "split": record["split"], "character": name,
                           "patterns": carriers.get(name, []), "messages": msgs})
    return result


def to_sharegpt(sample: dict) -> dict:
    roles = {"user": "human", "assistant": "gpt"}
    return {"id": sample["id"], "system": sample["messages"][0]["content"],
            "conversations": [{"from": roles[m["role"]], "value": m["content"]} for m in sample["messages"][1:]]}
