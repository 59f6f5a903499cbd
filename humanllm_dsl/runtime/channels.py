"""Splitting a turn into its three channels: [inner thought], (action) and speech."""

from __future__ import annotations

import re

import attrs

_OPEN = {"[": "]", "(": ")"}
_CLOSE = {"]": "[", ")": "("}


@attrs.frozen
class Channels:
    thought: str
    action: str
    speech: str


def split_channels(content: str) -> Channels:
    """Top-level `[...]` is thought and top-level `(...)` is action; brackets nested inside
    either stay part of it. An unclosed bracket runs to the end of the turn; a stray closing
    bracket is kept as text. Everything else is speech."""
    thought, action, speech = [], [], []
    i, n = 0, len(content)
    while i < n:
        ch = content[i]
        if ch in _OPEN:
            j, stack = i, []
            while j < n:
                c = content[j]
                if c in _OPEN:
                    stack.append(_OPEN[c])
                elif c in _CLOSE and stack and stack[-1] == c:
                    stack.pop()
                    if not stack:
                        break
                j += 1
            inner = content[i + 1:j]
            (thought if ch == "[" else action).append(inner.strip())
            i = j + 1
            continue
        speech.append(ch)
        i += 1
    return Channels(_join(thought), _join(action), _clean("".join(speech)))


def _join(parts: list[str]) -> str:
    return " ".join(p for p in parts if p)


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def visible(content: str) -> str:
    """The turn as the other characters perceive it: actions and speech, no thoughts."""
    ch = split_channels(content)
    parts = ([f"({ch.action})"] if ch.action else []) + ([ch.speech] if ch.speech else [])
    return " ".join(parts)
