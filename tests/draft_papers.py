"""Small papers written by the draft tests: PDFs (with a text layer, or an image only, like a
scan), plain text, Markdown, and bibliographies in BibTeX, RIS and CSL-JSON."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path


def _pdf_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def write_pdf(path: Path, pages: list[str | None], title: str | None = None, author: str | None = None) -> Path:
    """A PDF whose pages hold `pages` as a Helvetica text layer; a None page holds only an image
    (what a scanner writes). Written by hand: objects, then an exact cross-reference table."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below
    pages_obj = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    image = add(b"<< /Type /XObject /Subtype /Image /Width 2 /Height 2 /ColorSpace /DeviceGray "
                b"/BitsPerComponent 8 /Length 4 >>\nstream\n\x00\xff\xff\x00\nendstream")
    kids = []
    for text in pages:
        if text is None:
            content = b"q 500 0 0 700 50 50 cm /Im1 Do Q"
        else:
            lines = [ln for para in text.split("\n") for ln in (textwrap.wrap(para, 90) or [""])]
            ops = ["BT /F1 10 Tf 12 TL 50 750 Td"] + [f"{_pdf_string(ln)} Tj T*" for ln in lines] + ["ET"]
            content = "\n".join(ops).encode("latin-1")
        stream = add(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
        kids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> "
                        b"/XObject << /Im1 %d 0 R >> >> /Contents %d 0 R >>" % (pages_obj, font, image, stream)))
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_obj
    objects[pages_obj - 1] = (b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % k for k in kids)
                              + b"] /Count %d >>" % len(kids))
    info_fields = [f"/Title {_pdf_string(title)}" if title else "", f"/Author {_pdf_string(author)}" if author else ""]
    info = add(f"<< {' '.join(f for f in info_fields if f)} >>".encode("latin-1"))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, catalog, info, xref)
    path.write_bytes(bytes(out))
    return path


GILOVICH_PAGES = [
    "The hot hand in basketball: On the misperception of random sequences\nThomas Gilovich, Robert Vallone and "
    "Amos Tversky\nCognitive Psychology, 1985\nThe hot hand is the belief that a player who has made several shots "
    "in a row is more likely to make the next one.",
    "People expect random sequences to alternate more than they do, because they judge randomness by how "
    "representative a short run looks. A streak of hits feels too orderly to be chance, which leads people to "
    "infer a cause. For example, fans say a shooter is on fire after three baskets in a row.",
    "Players pass the ball more often to a teammate who has just scored, for instance late in a close game. "
    "The excitement of a run makes the streak vivid, and this feeling strengthens the belief.",
]

AYTON_TEXT = """Two faces of subjective randomness

The hot hand fallacy is the tendency to expect a run of successes by a skilled performer to continue.

This expectation arises because people attribute the outcomes of human performance to a controllable cause such as momentum.

Players feel confident and hopeful after a run of successes, and that emotion fuels the belief that the run will go on.

In everyday life, for example, investors buy into funds that have beaten the market for a few years.

Gamblers raise their bets after a winning streak, such as at a roulette table, when they credit their own skill.
"""

BURNS_MD = """---
title: Heuristics as beliefs and as behaviors
---
# Heuristics as beliefs and as behaviors

## Adaptive value
The belief in streaks is adaptive because in many natural environments success really does cluster, so evolution favoured expecting runs to continue.

## Behaviour
For example, a coach leaves a player on the court longer after a few scores in a row.
"""

UNRELATED_TEXT = """Soil moisture in alpine meadows

We measured soil moisture at forty sites across three summers.

Moisture peaked in early July at most sites.
"""

BIBTEX = r"""@article{gilovich1985,
  author = {Gilovich, Thomas and Vallone, Robert and Tversky, Amos},
  title = {The hot hand in basketball: On the misperception of random sequences},
  journal = {Cognitive Psychology},
  year = {1985},
  file = {Full Text:gilovich.pdf:application/pdf}
}

@article{ayton2004,
  author = {Ayton, Peter and Fischer, Ilan},
  title = {The hot hand fallacy and the gambler's fallacy: Two faces of subjective randomness?},
  journal = {Memory \& Cognition},
  year = {2004},
  file = {ayton.txt}
}
"""

RIS = """TY  - JOUR
AU  - Burns, Bruce D.
TI  - Heuristics as beliefs and as behaviors: The adaptiveness of the hot hand
T2  - Cognitive Psychology
PY  - 2004
L1  - burns.md
ER  - 
"""

CSL = [{"id": "soil2019", "type": "article-journal", "title": "Soil moisture in alpine meadows",
        "author": [{"family": "Moser", "given": "Anna"}], "issued": {"date-parts": [[2019]]},
        "container-title": "Alpine Ecology"}]


def hot_hand_papers(folder: Path, bib: bool = True) -> Path:
    """Three papers on the hot hand (PDF, text, Markdown), one unrelated, and their bibliographies."""
    folder.mkdir(parents=True, exist_ok=True)
    write_pdf(folder / "gilovich.pdf", GILOVICH_PAGES, title="The hot hand in basketball", author="Thomas Gilovich")
    (folder / "ayton.txt").write_text(AYTON_TEXT, "utf-8")
    (folder / "burns.md").write_text(BURNS_MD, "utf-8")
    (folder / "soil2019.txt").write_text(UNRELATED_TEXT, "utf-8")
    if bib:
        (folder / "refs.bib").write_text(BIBTEX, "utf-8")
        (folder / "refs.ris").write_text(RIS, "utf-8")
        (folder / "refs.json").write_text(json.dumps(CSL), "utf-8")
    return folder
