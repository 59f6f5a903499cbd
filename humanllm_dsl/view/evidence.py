"""Verdicts beside turns: which turn a verdict's evidence quotes, and the quote marked in it.

The judge reads `Name: content` lines (`evaluate.rollout.transcript`) and quotes them; a quote
may keep the name, the brackets of a thought or action, or skip words with an ellipsis. A
verdict goes beside the first turn holding the longest of its quoted fragments; one whose quote
is in no turn (or that quotes nothing) is listed under the transcript, never dropped.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

_QUOTES = "\"'“”‘’«»"
_BREAK = re.compile(r"\.\.\.|…|\n|\s/\s")
_BRACKETS = re.compile(r"[\[\]()]")
MIN_FRAGMENT = 4


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def fragments(evidence: str, names: tuple[str, ...] = ()) -> list[str]:
    """The quoted pieces of an evidence string, longest first, names and quotes removed."""
    out = []
    for piece in _BREAK.split(evidence or ""):
        piece = piece.strip().strip(_QUOTES).strip()
        for name in names:
            if piece.lower().startswith(name.lower() + ":"):
                piece = piece[len(name) + 1:].strip()
        piece = norm(piece.strip(_QUOTES))
        if len(piece) >= MIN_FRAGMENT:
            out.append(piece)
    return sorted(set(out), key=len, reverse=True)


def place(turns: list[dict], verdicts: list[dict]) -> tuple[list[list[dict]], list[dict]]:
    """Verdicts per turn (in the turns' order) and those placed nowhere.

    Args:
        turns: the transcript's turns (`char`, `content`).
        verdicts: `{..., "evidence": str}`; each placed one gets `quote` (the fragment found).
    """
    names = tuple(sorted({t["char"] for t in turns}, key=len, reverse=True))
    texts = [norm(t.get("content", "")) for t in turns]
    flat = [norm(_BRACKETS.sub(" ", t.get("content", ""))) for t in turns]
    beside: list[list[dict]] = [[] for _ in turns]
    nowhere = []
    for v in verdicts:
        spot = None
        for frag in fragments(v.get("evidence", ""), names):
            loose = norm(_BRACKETS.sub(" ", frag))
            spot = next((i for i, (t, f) in enumerate(zip(texts, flat, strict=True)) if frag in t or loose in f), None)
            if spot is not None:
                beside[spot].append({**v, "quote": frag})
                break
        if spot is None:
            nowhere.append(v)
    return beside, nowhere


def highlight(text: str, quotes: list[str]) -> Markup:
    """`text` escaped, with every stretch that a quote (or a bracket-free piece of one) covers in <mark>."""
    low = text.lower()
    spans = []
    for quote in quotes:
        for piece in [quote, *_BRACKETS.split(quote)]:
            piece = piece.strip(" .,;:!?")
            if len(piece) < MIN_FRAGMENT:
                continue
            pattern = r"\s+".join(re.escape(w) for w in piece.split())
            spans += [(m.start(), m.end()) for m in re.finditer(pattern, low)]
    if not spans:
        return escape(text)
    spans.sort()
    merged = [list(spans[0])]
    for a, b in spans[1:]:
        if a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out, at = Markup(), 0
    for a, b in merged:
        out += escape(text[at:a]) + Markup("<mark>") + escape(text[a:b]) + Markup("</mark>")
        at = b
    return out + escape(text[at:])
