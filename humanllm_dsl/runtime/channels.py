"""A turn as an ordered list of segments: [inner thought], (action) and speech.

The order and separation of the segments is what the characters did: "Fine. (shrugs) Whatever
you say." is speech, an action, speech; two actions are two actions. `visible` removes the
thoughts and changes nothing else, so what the others see (SFT user turns, rollouts, judge
transcripts) is exactly what was said and done.
"""

from __future__ import annotations

import re
from typing import Literal

import attrs

Kind = Literal["thought", "action", "speech"]
_OPEN = {"[": "]", "(": ")"}
_CLOSE = {"]": "[", ")": "("}
_KIND: dict[str, Kind] = {"[": "thought", "(": "action"}
_THINK = re.compile(r"<(think|thinking)>.*?</\1>", re.S | re.I)


@attrs.frozen
class Segment:
    kind: Kind
    text: str  # without its brackets, whitespace normalised

    def render(self) -> str:
        return {"thought": f"[{self.text}]", "action": f"({self.text})"}.get(self.kind, self.text)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text}


@attrs.frozen
class Channels:
    """The segments of a turn in order, and the three channels joined for records."""

    segments: tuple[Segment, ...]

    def _joined(self, kind: Kind) -> str:
        return " ".join(s.text for s in self.segments if s.kind == kind)

    @property
    def thought(self) -> str:
        return self._joined("thought")

    @property
    def action(self) -> str:
        return self._joined("action")

    @property
    def speech(self) -> str:
        return self._joined("speech")


_BRACKET = re.compile(r"[\[\]()]")
_OPENING = re.compile(r"[\[(]")


def _bracket_end(content: str, i: int) -> int:
    """The index of the bracket closing the one at `i` (brackets nested inside count), or
    len(content) when it is never closed."""
    stack = []
    for m in _BRACKET.finditer(content, i):
        c = m.group()
        if c in _OPEN:
            stack.append(_OPEN[c])
        elif stack and stack[-1] == c:
            stack.pop()
            if not stack:
                return m.start()
    return len(content)


def _spans(content: str) -> list[tuple[Kind, int, int, bool]]:
    """(kind, start, end, closed) of each top-level piece of `content`, in order, covering all of
    it; a bracketed piece's span includes its brackets (`closed`: it has its closing one)."""
    out: list[tuple[Kind, int, int, bool]] = []
    text_from, n = 0, len(content)
    while (m := _OPENING.search(content, text_from)) is not None:
        i = m.start()
        if text_from < i:
            out.append(("speech", text_from, i, True))
        end = _bracket_end(content, i)
        out.append((_KIND[content[i]], i, min(end + 1, n), end < n))
        text_from = min(end + 1, n)
    if text_from < n:
        out.append(("speech", text_from, n, True))
    return out


def segments(content: str) -> list[Segment]:
    """Top-level `[...]` is a thought and top-level `(...)` an action; brackets nested inside
    either stay part of it. An unclosed bracket runs to the end of the turn; a stray closing
    bracket is kept as text. Everything between them is speech. Empty segments are dropped."""
    out = []
    for kind, i, j, closed in _spans(content):
        piece = content[i:j]
        if kind != "speech":
            piece = piece[1:-1] if closed else piece[1:]
        text = _clean(piece)
        if text:
            out.append(Segment(kind, text))
    return out


def split_channels(content: str) -> Channels:
    return Channels(tuple(segments(content)))


def _clean(text: str) -> str:
    return " ".join(text.split())  # runs of whitespace (str.isspace, as regex \s) to one space


def visible(content: str) -> str:
    """The turn as the other characters perceive it: the text with each top-level [thought]
    removed and nothing else changed (every action and speech in its order and its own
    brackets), whitespace normalised."""
    return _clean("".join(" " if kind == "thought" else content[i:j] for kind, i, j, _ in _spans(content)))


def strip_thinking(text: str) -> str | None:
    """`text` without `<think>...</think>` blocks (a lone `</think>` ends reasoning whose opening
    tag was in the prompt). None when the text stops inside an unclosed `<think>` block."""
    text = _THINK.sub("", text)
    lower = text.lower()
    for tag in ("</think>", "</thinking>"):
        at = lower.rfind(tag)
        if at >= 0:
            text, lower = text[at + len(tag):], lower[at + len(tag):]
    for tag in ("<think>", "<thinking>"):
        at = lower.find(tag)
        if at >= 0:
            return None if at == 0 or not text[:at].strip() else text[:at]
    return text
