"""`humanllm annotate export`: a study's answers as the CSV `humanllm align --human` reads, or a
pattern review's ratings with their means and Krippendorff's alpha per aspect.

Study CSV (one row per rater and answer, each rater's latest answer):

    sample_id,metric,score,rater,item,text
    rec1/Ann,item,1,alice,3,Does the character ...      one checklist item (-1, 0, 1)
    rec1/Ann,anthropomorphism,70,alice,,                  a holistic scale (0-100)
    rec1/Ann,IPE,38.4615,alice,,                          the rater's sample scores (x100, as the judge's
    rec1/Ann,MPD,50.0000,alice,,                          scores.csv), once every checklist item is answered
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..evaluate import scores as S
from ..runtime.store import write_text
from .db import StudyDb
from .definitions import HOLISTIC, REVIEW_ASPECTS

STUDY_COLUMNS = ("sample_id", "metric", "score", "rater", "item", "text")
REVIEW_COLUMNS = ("rater", "pattern", "aspect", "score", "comment", "time")


def study_rows(db: StudyDb, ipe_average: str = "pooled") -> list[dict]:
    """The export's rows, in rater then unit order."""
    units = {u["id"]: u for u in db.units()}
    by: dict[tuple[str, str], dict[str, int]] = {}
    for a in db.answers():
        by.setdefault((a["rater"], a["unit"]), {})[a["item"]] = a["score"]
    rows = []
    for (rater, uid), got in by.items():
        unit = units[uid]
        for it in unit["items"]:
            if it["key"] in got:
                rows.append({"sample_id": uid, "metric": "item", "score": got[it["key"]], "rater": rater,
                             "item": it["key"], "text": it["text"]})
        for key in HOLISTIC:
            if key in got:
                rows.append({"sample_id": uid, "metric": key, "score": got[key], "rater": rater, "item": "", "text": ""})
        if all(it["key"] in got for it in unit["items"]):
            scored = S.Scored(uid, 1, ipe=tuple((it["pattern"], got[it["key"]]) for it in unit["items"] if it["kind"] == "ipe"),
                              mpd=tuple(got[it["key"]] for it in unit["items"] if it["kind"] == "mpd"))
            for metric, value in S.per_sample_means([scored], ipe_average).get(uid, {}).items():
                rows.append({"sample_id": uid, "metric": metric, "score": f"{value:.4f}", "rater": rater,
                             "item": "", "text": ""})
    return rows


def review_rows(db: StudyDb) -> list[dict]:
    return [{"rater": a["rater"], "pattern": a["unit"], "aspect": a["item"], "score": a["score"],
             "comment": a["comment"], "time": a["time"]} for a in db.answers()]


def review_summary(rows: list[dict]) -> dict:
    """Per aspect: `{n, mean, alpha}` (alpha: Krippendorff's, ordinal, patterns as units; None
    with fewer than two raters or one value only), and `all` over every aspect."""
    from ..evaluate.align import krippendorff_alpha

    out = {}
    for aspect in (*REVIEW_ASPECTS, "all"):
        chosen = [r for r in rows if aspect == "all" or r["aspect"] == aspect]
        if not chosen:
            continue
        table = {}
        for r in chosen:
            table.setdefault(r["rater"], {})[(r["pattern"], r["aspect"])] = float(r["score"])
        out[aspect] = {"n": len(chosen), "mean": sum(float(r["score"]) for r in chosen) / len(chosen),
                       "raters": len(table), "alpha": krippendorff_alpha(table, "ordinal")}
    return out


def _csv(columns, rows) -> str:
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return text.getvalue()


def export(db: StudyDb, out: Path, ipe_average: str = "pooled") -> tuple[int, dict | None]:
    """Write the CSV; return (rows, the review summary or None for a study)."""
    if db.mode == "patterns":
        rows = review_rows(db)
        write_text(out, _csv(REVIEW_COLUMNS, rows))
        return len(rows), review_summary(rows)
    rows = study_rows(db, ipe_average)
    write_text(out, _csv(STUDY_COLUMNS, rows))
    return len(rows), None
