"""The judges' own wording of their scales, read from the judge templates (one source)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
VERDICTS = (1, 0, -1)
HOLISTIC = ("anthropomorphism", "fidelity")
# the method's 4-point scale for pattern summaries (1 poor .. 4 excellent)
REVIEW_SCALE = {1: "poor: wrong or misleading", 2: "fair: recognisable, with real gaps or errors",
                3: "good: accurate, minor gaps", 4: "excellent: accurate, complete and clear"}
REVIEW_ASPECTS = ("definition", "mechanisms", "manifestations", "checklist")


@cache
def verdict_definitions() -> dict[int, str]:
    """`{1: "(satisfied): ...", 0: ..., -1: ...}` from judge_checklist.jinja."""
    text = (TEMPLATES / "judge_checklist.jinja").read_text(encoding="utf-8")
    found = {int(m[1]): f"{m[2]}: {m[3].rstrip(';.')}"
             for m in re.finditer(r"^- `(-?1|0)` \(([^)]+)\): (.+)$", text, re.M)}
    if set(found) != set(VERDICTS):
        raise RuntimeError(f"{TEMPLATES / 'judge_checklist.jinja'}: cannot find the definitions of 1, 0 and -1")
    return found


@cache
def holistic_definitions() -> dict[str, str]:
    """`{"anthropomorphism": "how human-like ...", "fidelity": ...}` from judge_holistic.jinja."""
    text = (TEMPLATES / "judge_holistic.jinja").read_text(encoding="utf-8")
    found = {m[1]: m[2].rstrip(";.") for m in re.finditer(r"^- `(\w+)`: (.+)$", text, re.M)}
    if set(found) != set(HOLISTIC):
        raise RuntimeError(f"{TEMPLATES / 'judge_holistic.jinja'}: cannot find the definitions of {', '.join(HOLISTIC)}")
    return found
