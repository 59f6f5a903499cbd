"""Reading one paper: PDF (through pypdf), plain text or Markdown, into pointed pieces of text
(pages, sections or paragraphs) and the metadata the file itself gives (title, authors, year)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import attrs

PDF, TEXT, MARKDOWN = (".pdf",), (".txt", ".text"), (".md", ".markdown")
PAPER_SUFFIXES = PDF + TEXT + MARKDOWN
_YEAR = re.compile(r"\b(19[0-9]{2}|20[0-9]{2})\b")
_JUNK_TITLE = re.compile(r"^(untitled|microsoft word\b|document\d*$|\S+\.(docx?|tex|pdf|dvi)$)", re.I)


class PaperError(ValueError):
    """A paper that cannot be read; the message names the file."""


@attrs.frozen
class Unit:
    """A piece of a paper with the pointer a note cites: `p. 3`, `§ Method`, `¶ 4`."""

    pointer: str
    text: str


@attrs.frozen
class Meta:
    title: str = ""
    authors: tuple[str, ...] = ()  # each "Last, First" or "First Last", as found
    year: int | None = None
    venue: str = ""


@attrs.frozen
class Paper:
    id: str
    path: Path
    meta: Meta
    units: tuple[Unit, ...]

    @property
    def digest(self) -> str:
        """What the paper's notes depend on: its text and pointers."""
        data = "\n".join(f"{u.pointer}\n{u.text}" for u in self.units)
        return hashlib.sha256(data.encode("utf-8")).hexdigest()[:16]


def slug(text: str) -> str:
    """An id from a name: `&` as `and`, every run of other non-alphanumeric characters as `_`."""
    value = re.sub(r"[^a-z0-9]+", "_", text.lower().replace("&", " and ")).strip("_")
    return value if value[:1].isalpha() else f"p_{value}" if value else "p"


def read_paper(path: Path, paper_id: str) -> Paper:
    """The paper at `path`; raises PaperError naming the file."""
    suffix = path.suffix.lower()
    if suffix in PDF:
        units, meta = _read_pdf(path)
    else:
        text = _read_text(path)
        units, meta = (_markdown(text) if suffix in MARKDOWN else _plain(text))
    units = tuple(u for u in units if u.text.strip())
    if not units:
        raise PaperError(f"{path}: the file holds no text")
    return Paper(paper_id, path, meta, units)


# ---- PDF ----------------------------------------------------------------------------------
def _read_pdf(path: Path) -> tuple[list[Unit], Meta]:
    import pypdf
    from pypdf.errors import PdfReadError, PyPdfError

    try:
        reader = pypdf.PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise PaperError(f"{path}: the PDF is encrypted with a password; save an unprotected copy")
        pages = reader.pages
        labels = list(reader.page_labels) if len(pages) else []
    except OSError as exc:
        raise PaperError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError) as exc:  # what pypdf raises on a damaged file
        raise PaperError(f"{path}: not a readable PDF ({type(exc).__name__}: {exc})") from None
    units = []
    for number, page in enumerate(pages, 1):
        try:
            text = page.extract_text() or ""
        except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError) as exc:
            raise PaperError(f"{path}: page {number}: the text cannot be extracted ({type(exc).__name__}: {exc})") from None
        label = labels[number - 1] if number <= len(labels) else str(number)
        units.append(Unit(f"p. {label}", _tidy(text)))
    if not any(u.text for u in units):
        raise PaperError(f"{path}: no text layer on any of its {len(units)} pages (a scanned PDF?); run OCR on it "
                         "first (for example ocrmypdf), or put its text beside it as a .txt or .md file")
    info = reader.metadata or {}
    first = units[0].text if units else ""
    title = str(info.get("/Title") or "").strip()
    if not title or _JUNK_TITLE.match(title):
        title = _first_line(first)
    authors = _split_authors(str(info.get("/Author") or ""))
    year = _year(first) or _year(str(info.get("/CreationDate") or ""))
    return units, Meta(title, authors, year)


def _tidy(text: str) -> str:
    """PDF text: hyphenation at line ends joined, runs of spaces collapsed."""
    text = re.sub(r"(\w)-\n(\w)", r"\1\2", text)
    return "\n".join(" ".join(line.split()) for line in text.splitlines()).strip()


# ---- text and Markdown ----------------------------------------------------------------------
def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PaperError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as exc:
        raise PaperError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _plain(text: str) -> tuple[list[Unit], Meta]:
    """Form feeds (as pdftotext writes them) mark pages; otherwise paragraphs are the units."""
    if "\f" in text:
        units = [Unit(f"p. {n}", page.strip()) for n, page in enumerate(text.split("\f"), 1)]
    else:
        units = [Unit(f"¶ {n}", " ".join(p.split())) for n, p in enumerate(_paragraphs(text), 1)]
    head = text.lstrip()[:2000]
    authors = re.search(r"^\s*authors?\s*:\s*(.+)$", head, re.I | re.M)
    return units, Meta(_first_line(head), _split_authors(authors.group(1)) if authors else (), _year(head))


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def _markdown(text: str) -> tuple[list[Unit], Meta]:
    """Sections by heading (`§ Heading`); a YAML-like front matter gives title, author(s), year/date
    and venue/journal; otherwise the first `#` heading is the title."""
    front: dict[str, str] = {}
    found = re.match(r"\A---\n(.*?)\n---\n", text, re.S)
    if found:
        text = text[found.end():]
        for line in found.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep:
                front[key.strip().lower()] = value.strip().strip("'\"")
    units, heading, lines, seen = [], "(opening)", [], {}

    def close() -> None:
        body = "\n".join(lines).strip()
        if body:
            seen[heading] = seen.get(heading, 0) + 1
            name = heading if seen[heading] == 1 else f"{heading} ({seen[heading]})"
            units.append(Unit(f"§ {name}", body))

    title = ""
    for line in text.splitlines():
        head = _HEADING.match(line)
        if head:
            close()
            heading, lines = head.group(2)[:80], []
            title = title or (head.group(2) if len(head.group(1)) == 1 else "")
        else:
            lines.append(line)
    close()
    authors = front.get("authors") or front.get("author") or ""
    meta = Meta(front.get("title") or title or _first_line(text), _split_authors(authors.strip("[]")),
                _year(front.get("year") or front.get("date") or "") or _year(text[:2000]),
                front.get("venue") or front.get("journal") or front.get("publisher") or "")
    return units, meta


# ---- metadata helpers ------------------------------------------------------------------------
def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if len(line.split()) >= 2:
            return line[:200]
    return ""


def _year(text: str) -> int | None:
    found = _YEAR.search(text or "")
    return int(found.group(1)) if found else None


def _split_authors(text: str) -> tuple[str, ...]:
    """'A. One; B. Two', 'One, A. and Two, B.', 'A One, B Two' -> one name each."""
    text = text.strip()
    if not text:
        return ()
    if ";" in text or re.search(r"\band\b", text):
        parts = re.split(r"\s*;\s*|\s+and\s+|\s*&\s*", text)
    elif text.count(",") >= 1 and all(len(p.split()) >= 2 for p in text.split(",")):
        parts = text.split(",")  # "Ann One, Bo Two": whole names between commas
    else:
        parts = [text]
    return tuple(p.strip(" ,") for p in parts if p.strip(" ,"))
