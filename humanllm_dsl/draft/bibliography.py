"""Bibliographies: BibTeX (bibtexparser), RIS (rispy) and CSL-JSON (the standard library's json:
CSL-JSON is plain JSON with documented field names, so no parser package is needed).

Each entry keeps where it was written (`refs.bib:12`, `refs.json: item 3`) for messages, and the
paper files it names (BibTeX/biblatex `file`, RIS `L1`/`L4`, a non-standard CSL-JSON `file`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import attrs

BIB_SUFFIXES = (".bib", ".ris", ".json")


class BibliographyError(ValueError):
    """A bibliography file that cannot be read at all; the message names the file."""


@attrs.frozen
class Entry:
    key: str
    where: str  # "refs.bib:12" or "refs.json: item 3"
    authors: tuple[str, ...] = ()
    year: int | None = None
    title: str = ""
    venue: str = ""
    files: tuple[str, ...] = ()


def read_bibliography(path: Path) -> tuple[list[Entry], list[str]]:
    """The entries of one bibliography file and the problems of entries that cannot be read."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise BibliographyError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise BibliographyError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    reader = {".bib": _bibtex, ".ris": _ris, ".json": _csl_json}[path.suffix.lower()]
    return reader(path, text)


def _year(value) -> int | None:
    found = re.search(r"\b(1[5-9][0-9]{2}|20[0-9]{2})\b", str(value or ""))
    return int(found.group(1)) if found else None


def _clean(value) -> str:
    return " ".join(str(value or "").replace("{", "").replace("}", "").split())


# ---- BibTeX / biblatex -------------------------------------------------------------------------
def _bibtex(path: Path, text: str) -> tuple[list[Entry], list[str]]:
    import bibtexparser
    from bibtexparser import middlewares

    library = bibtexparser.parse_string(text, append_middleware=[middlewares.LatexDecodingMiddleware(),
                                                                 middlewares.SeparateCoAuthors()])
    problems = [f"{path}:{block.start_line + 1}: this entry cannot be read ({_failure(block)})"
                for block in library.failed_blocks]
    entries = []
    for e in library.entries:
        fields = {k.lower(): v for k, v in e.fields_dict.items()}
        value = lambda *keys: next((fields[k].value for k in keys if k in fields), "")  # noqa: E731
        authors = value("author", "editor")
        authors = authors if isinstance(authors, list) else [authors] if authors else []
        files = tuple(f for raw in _as_list(value("file", "pdf")) for f in _bibtex_files(raw))
        entries.append(Entry(e.key, f"{path}:{e.start_line + 1}", tuple(_clean(a) for a in authors),
                             _year(value("year", "date")), _clean(value("title")),
                             _clean(value("journal", "journaltitle", "booktitle", "publisher", "school", "institution")),
                             files))
    return entries, problems


def _failure(block) -> str:
    error = getattr(block, "error", None)
    name = type(block).__name__
    if "Duplicate" in name:
        return f"the key `{getattr(block, 'key', '?')}` is used twice"
    text = " ".join(str(error or "").split())
    return text or "a syntax error: unbalanced braces or quotes, or a missing comma"


def _as_list(value) -> list[str]:
    return value if isinstance(value, list) else [value] if value else []


def _bibtex_files(raw: str) -> list[str]:
    """JabRef/Zotero `file` fields: `Description:path:Type` entries joined by `;`; or a plain path."""
    out = []
    for part in str(raw).split(";"):
        part = part.strip()
        pieces = re.split(r"(?<!\\):", part)
        if len(pieces) == 3:  # description:path:type
            part = pieces[1]
        out.append(part.replace("\\:", ":").strip())
    return [p for p in out if p]


# ---- RIS ---------------------------------------------------------------------------------------
def _ris(path: Path, text: str) -> tuple[list[Entry], list[str]]:
    import rispy

    try:
        records = rispy.loads(text)
    except (IOError, ValueError, KeyError, IndexError) as exc:
        raise BibliographyError(f"{path}: not a readable RIS file ({' '.join(str(exc).split())})") from None
    entries = []
    for number, r in enumerate(records, 1):
        authors = tuple(r.get("authors") or r.get("first_authors") or ())
        year = _year(r.get("year") or r.get("publication_year") or r.get("date"))
        title = _clean(r.get("title") or r.get("primary_title"))
        venue = _clean(r.get("secondary_title") or r.get("journal_name") or r.get("alternate_title3")
                       or r.get("publisher"))
        files = tuple(str(r[k]) for k in sorted(r) if k.startswith("file_attachments"))
        key = _clean(r.get("id")) or _auto_key(authors, year, number)
        entries.append(Entry(key, f"{path}: record {number}", authors, year, title, venue, files))
    return entries, []


def _auto_key(authors, year, number: int) -> str:
    first = re.split(r"[,\s]+", authors[0].strip())[0].lower() if authors else "record"
    return f"{first}{year or ''}" if authors else f"record{number}"


# ---- CSL-JSON ----------------------------------------------------------------------------------
def _csl_json(path: Path, text: str) -> tuple[list[Entry], list[str]]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BibliographyError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
    if isinstance(items, dict) and isinstance(items.get("items"), list):
        items = items["items"]
    if not isinstance(items, list):
        raise BibliographyError(f"{path}: expected a CSL-JSON list of items, found a JSON {type(items).__name__}")
    entries, problems = [], []
    for number, item in enumerate(items, 1):
        where = f"{path}: item {number}"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a JSON object, found {type(item).__name__}")
            continue
        authors = []
        for person in item.get("author") or item.get("editor") or []:
            if isinstance(person, dict):
                name = person.get("literal") or ", ".join(x for x in (person.get("family"), person.get("given")) if x)
                if name:
                    authors.append(str(name))
        year = _issued_year(item.get("issued"))
        files = tuple(str(f) for f in _as_list(item.get("file")))
        key = str(item.get("id") or item.get("citation-key") or _auto_key(authors, year, number))
        entries.append(Entry(key, where, tuple(authors), year, _clean(item.get("title")),
                             _clean(item.get("container-title") or item.get("publisher")), files))
    return entries, problems


def _issued_year(issued) -> int | None:
    """A CSL date: `{"date-parts": [[1985, 3]]}`, `{"raw": "1985"}` or a plain value."""
    if isinstance(issued, dict):
        parts = issued.get("date-parts")
        if isinstance(parts, list) and parts and isinstance(parts[0], list) and parts[0]:
            return _year(parts[0][0])
        return _year(issued.get("raw") or issued.get("literal"))
    return _year(issued)
