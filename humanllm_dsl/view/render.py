"""Jinja2 for the viewer and the static `report.html`: one environment, autoescaped everywhere.

Record text only ever reaches a page through `{{ }}` (escaped) or the `highlight` filter (which
escapes and adds <mark>); no template marks record text safe.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from .evidence import highlight

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
SCORE_LABEL = {1: "+1 satisfied", 0: "0 not exhibited", -1: "-1 violated"}
CHANNEL_MARKS = {"thought": ("[", "]"), "action": ("(", ")"), "speech": ("", "")}


def fmt(value, digits: int = 1, sign: bool = True) -> str:
    """A number for a table cell (signed: scores in [-100, 100]); `–` for none."""
    if value is None:
        return "–"
    return f"{value:{'+' if sign else ''}.{digits}f}" if isinstance(value, float) else str(value)


def mean_std(entry: dict | None) -> str:
    if not entry or entry.get("mean") is None:
        return "–"
    return f"{entry['mean']:.1f} ± {entry.get('std') or 0:.1f}"


def segments_of(turn: dict) -> list[dict]:
    """A turn's segments in order; a turn without `segments` (older files) is split as records are."""
    segments = turn.get("segments") if isinstance(turn, dict) else turn.segments
    if segments:
        return [s if isinstance(s, dict) else s.as_dict() for s in segments]
    from ..runtime.channels import split_channels

    content = turn.get("content", "") if isinstance(turn, dict) else turn.content
    return [s.as_dict() for s in split_channels(content).segments]


def bar(value: float | None, lo: float = -100.0, hi: float = 100.0, width: int = 160) -> dict:
    """Geometry of one horizontal bar on a [lo, hi] axis with its zero line (for the SVG macros)."""
    scale = width / (hi - lo)
    zero = (0 - lo) * scale
    if value is None:
        return {"x": zero, "w": 0, "zero": zero, "width": width, "neg": False}
    v = max(lo, min(hi, value))
    x = min(zero, (v - lo) * scale)
    return {"x": round(x, 1), "w": round(abs(v) * scale, 1), "zero": round(zero, 1), "width": width, "neg": v < 0}


def breakdown_row(item: tuple[str, dict]) -> tuple[str, float | None, float | None]:
    key, g = item
    return g.get("name") or key, g["IPE"]["mean"], g["MPD"]["mean"]


@cache
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(fmt=fmt, mean_std=mean_std, highlight=highlight, breakdown_row=breakdown_row)
    env.globals.update(segments_of=segments_of, bar=bar, SCORE_LABEL=SCORE_LABEL, CHANNEL_MARKS=CHANNEL_MARKS)
    return env


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)


def stylesheet() -> str:
    return (STATIC / "view.css").read_text(encoding="utf-8")


def script() -> str:
    return (STATIC / "sort.js").read_text(encoding="utf-8")
