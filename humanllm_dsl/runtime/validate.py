"""Validation of program outputs. Each validator returns the list of problems in plain words;
an empty list means valid. The messages are fed back to the LM on a retry."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..compiler.plan import Slot
from .channels import split_channels

CHECKLIST_ITEMS = (2, 6)


def scenario_problems(out: dict, slot: Slot, names: list[str]) -> list[str]:
    problems = []
    chars = [c.get("name", "") for c in out.get("characters", [])]
    if len(chars) != slot.characters:
        problems.append(f"there must be exactly {slot.characters} characters, not {len(chars)}")
    if len(set(chars)) != len(chars):
        problems.append("two characters share a name")
    unknown = [c for c in chars if c not in names]
    if unknown:
        problems.append(f"use the candidate names exactly as written; not: {', '.join(unknown)}")
    if not out.get("background", "").strip():
        problems.append("the background is empty")
    protagonist = out.get("protagonist", "")
    if protagonist not in chars:
        problems.append(f"the protagonist `{protagonist}` is not one of the characters")
    c2p = out.get("char2pattern", {})
    for who, ids in c2p.items():
        if who not in chars:
            problems.append(f"char2pattern names `{who}`, who is not a character")
        stray = [i for i in ids if i not in slot.patterns]
        if stray:
            problems.append(f"char2pattern uses patterns not in this scenario: {', '.join(stray)}")
    assigned = {i for ids in c2p.values() for i in ids}
    missing = [p for p in slot.patterns if p not in assigned]
    if missing:
        problems.append(f"every pattern must go to a character; unassigned: {', '.join(missing)}")
    if protagonist in chars and not c2p.get(protagonist):
        problems.append("the protagonist must carry at least one pattern")
    for c in out.get("characters", []):
        if not c.get("about_self", "").strip():
            problems.append(f"{c.get('name')} has no `about_self`")
    return problems


def conversation_problems(turns: list[dict], scenario: dict, turn_range: tuple[int, int],
                          pattern_names: Iterable[str]) -> list[str]:
    problems = []
    chars = [c["name"] for c in scenario["characters"]]
    protagonist = scenario["protagonist"]
    low, high = turn_range
    if not low <= len(turns) <= high:
        problems.append(f"the conversation has {len(turns)} turns; it needs {low} to {high}")
    if not turns:
        return problems
    for k, t in enumerate(turns, 1):
        who = t.get("char", "")
        if who not in chars:
            problems.append(f"turn {k}: `{who}` is not a character (use exactly: {', '.join(chars)})")
        if k > 1 and who == turns[k - 2].get("char"):
            problems.append(f"turn {k}: {who} speaks twice in a row")
        ch = split_channels(t.get("content", ""))
        if not ch.thought:
            problems.append(f"turn {k}: no [inner thought]")
        if not (ch.action or ch.speech):
            problems.append(f"turn {k}: neither an (action) nor speech")
        for name in pattern_names:
            if re.search(rf"\b{re.escape(name)}\b", ch.speech, re.I):
                problems.append(f"turn {k}: the character names the pattern `{name}`")
    if turns[0].get("char") == protagonist:
        problems.append("a supporting character must open; the protagonist opened")
    if turns[-1].get("char") != protagonist:
        problems.append(f"the protagonist ({protagonist}) must speak last")
    return problems


def checklist_problems(checklist: dict, scenario: dict) -> list[str]:
    problems = []
    carriers = [who for who, ids in scenario["char2pattern"].items() if ids]
    low, high = CHECKLIST_ITEMS
    for who in carriers:
        items = checklist.get(who)
        if items is None:
            problems.append(f"no checklist for {who}")
        elif not low <= len(items) <= high:
            problems.append(f"{who} has {len(items)} checklist items; give {low} to {high}")
        elif any(not str(i).strip() for i in items):
            problems.append(f"{who} has an empty checklist item")
    for who in checklist:
        if who not in carriers:
            problems.append(f"the checklist names `{who}`, who carries no pattern")
    return problems
