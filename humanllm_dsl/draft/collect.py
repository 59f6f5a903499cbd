"""The PAPERS folder: every paper file read, every bibliography entry matched to its file.

An entry names its file (a `file` field) or is matched by its key (the file is `KEY.pdf`) or by
its title (the title the file itself gives). A file without an entry keeps the metadata read from
it. Every problem names its file (and line or record) and the rest is still read: the run keeps
going with what could be read, and reports the rest.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import attrs

from .bibliography import BIB_SUFFIXES, BibliographyError, Entry, read_bibliography
from .papers import PAPER_SUFFIXES, Meta, Paper, PaperError, read_paper, slug


class DraftInputError(Exception):
    """PAPERS cannot be used at all (missing, not a folder, nothing in it): a usage error."""


@attrs.frozen
class Collection:
    papers: tuple[Paper, ...]
    problems: tuple[str, ...]  # each names a file (and line or record)
    skipped: tuple[str, ...]  # files that are neither papers nor bibliographies


def collect(folder: Path, ignore: tuple[Path, ...] = ()) -> Collection:
    """Read every paper and bibliography under `folder` (hidden files and `ignore` left out)."""
    if not folder.exists():
        raise DraftInputError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise DraftInputError(f"{folder}: not a folder (PAPERS is a folder of PDF, .txt or .md files)")
    ignored = {p.resolve() for p in ignore}
    paper_files, bib_files, skipped = [], [], []
    for here, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (Path(here) / d).resolve() not in ignored)
        for name in sorted(names):
            path = Path(here) / name
            if name.startswith("."):
                continue
            suffix = path.suffix.lower()
            (paper_files if suffix in PAPER_SUFFIXES else bib_files if suffix in BIB_SUFFIXES else skipped).append(path)
    if not paper_files:
        raise DraftInputError(f"{folder}: no papers in this folder (looked for {', '.join(PAPER_SUFFIXES)} files)")
    problems: list[str] = []
    entries: list[Entry] = []
    for bib in bib_files:
        try:
            found, bad = read_bibliography(bib)
        except BibliographyError as exc:
            problems.append(str(exc))
            continue
        entries.extend(attrs.evolve(e, files=tuple(str(_locate(f, bib.parent, folder)) for f in e.files)) for e in found)
        problems.extend(bad)
    papers: list[Paper] = []
    ids: set[str] = set()
    for path in paper_files:
        paper_id = _unique(slug(path.stem), ids)
        try:
            papers.append(read_paper(path, paper_id))
        except PaperError as exc:
            problems.append(str(exc))
            papers.append(Paper(paper_id, path, Meta(), ()))  # unread: still matched, so its entry is not "missing"
    papers, more = _match(papers, entries, folder)
    problems.extend(more)
    return Collection(tuple(p for p in papers if p.units), tuple(problems), tuple(str(p) for p in skipped))


def _locate(name: str, bib_folder: Path, papers: Path) -> Path:
    """A file an entry names: relative to the bibliography, else to PAPERS, else by its name."""
    raw = Path(name)
    for base in (bib_folder, papers):
        if (base / raw).is_file():
            return (base / raw).resolve()
    return raw


def _unique(base: str, taken: set[str]) -> str:
    value, n = base, 2
    while value in taken:
        value, n = f"{base}_{n}", n + 1
    taken.add(value)
    return value


def _norm(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", title.lower()).strip()


def _match(papers: list[Paper], entries: list[Entry], folder: Path) -> tuple[list[Paper], list[str]]:
    """Each entry's metadata onto its paper (the entry's key becomes the paper's id)."""
    problems: list[str] = []
    by_path = {p.path.resolve(): i for i, p in enumerate(papers)}
    by_name = {}
    for i, p in enumerate(papers):
        by_name.setdefault(p.path.name, []).append(i)
    by_stem = {slug(p.path.stem): i for i, p in enumerate(papers)}
    by_title = {_norm(p.meta.title): i for i, p in enumerate(papers) if p.meta.title}
    owner: dict[int, Entry] = {}
    for e in entries:
        index = None
        if e.files:
            for f in e.files:
                path = Path(f)
                index = by_path.get(path.resolve()) if path.is_absolute() else None
                if index is None and len(by_name.get(path.name, [])) == 1:
                    index = by_name[path.name][0]
                if index is not None:
                    break
            if index is None:
                problems.append(f"{e.where}: entry `{e.key}` names the file {', '.join(Path(f).name for f in e.files)}, "
                                f"which is not in {folder}")
                continue
        else:
            index = by_stem.get(slug(e.key))
            if index is None and e.title:
                index = by_title.get(_norm(e.title))
            if index is None:
                problems.append(f"{e.where}: entry `{e.key}` (\"{e.title or 'no title'}\") has no file in {folder}: "
                                f"add a `file` field naming it, or name the file {e.key}.pdf")
                continue
        if index in owner:
            problems.append(f"{e.where}: entry `{e.key}` names {papers[index].path}, which entry `{owner[index].key}` "
                            f"({owner[index].where}) names too")
            continue
        owner[index] = e
    taken = {p.id for i, p in enumerate(papers) if i not in owner}
    for index, e in owner.items():
        p = papers[index]
        meta = Meta(e.title or p.meta.title, e.authors or p.meta.authors, e.year or p.meta.year, e.venue or p.meta.venue)
        papers[index] = attrs.evolve(p, id=_unique(slug(e.key), taken), meta=meta)
    return papers, problems
