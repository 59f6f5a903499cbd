"""Drafts from `humanllm draft`: a `<id>.hpat` and, beside it, its `<id>.trace.json` (which notes,
paper and pointer, each sentence of the definition, mechanisms and manifestations rests on).

A draft page pairs the spec as it is now with its trace: every sentence of the current file is
matched to the trace's row for the same field and text. A sentence edited since drafting has no
row and is shown as untraced; a trace row whose sentence is gone is listed apart, never dropped.
Both files are read when the page is asked for, so an edited draft shows on reload.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import attrs

from ..compiler.loader import SUFFIX as SPEC_SUFFIX
from ..draft.checks import sentences
from ..draft.layout import TRACE_SUFFIX, trace_path


class DraftError(ValueError):
    """A trace or draft file that cannot be shown; the message names the file."""


@attrs.frozen
class DraftFile:
    name: str    # the trace's name without `.trace.json`: the last part of the page's URL
    trace: Path
    spec: Path


def _pair(trace: Path) -> DraftFile:
    name = trace.name.removesuffix(TRACE_SUFFIX)
    return DraftFile(name, trace, trace.with_name(name + SPEC_SUFFIX))


def draft_of(path: Path) -> DraftFile:
    """The draft a `.hpat` or `.trace.json` file belongs to; DraftError when its partner is missing."""
    path = path.resolve()
    if path.name.endswith(TRACE_SUFFIX):
        found = _pair(path)
    elif path.suffix == SPEC_SUFFIX:
        found = _pair(trace_path(path))
    else:
        raise DraftError(f"{path}: neither a draft (.hpat) nor its trace ({TRACE_SUFFIX})")
    for p in (found.spec, found.trace):
        if not p.is_file():
            raise DraftError(f"{p}: no such file (a draft is viewed with its .hpat and {TRACE_SUFFIX} side by side)")
    return found


def find_drafts(root: Path) -> tuple[DraftFile, ...]:
    """The drafts directly in folder `root` (traces whose spec is beside them), by name."""
    return tuple(_pair(t) for t in sorted(root.glob("*" + TRACE_SUFFIX))
                 if t.is_file() and _pair(t).spec.is_file())


def _read_trace(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DraftError(f"{path}: not readable JSON ({exc})") from None
    shapes = {"sentences": list, "notes": dict, "papers": dict}
    if not isinstance(data, dict) or any(not isinstance(data.get(k), t) for k, t in shapes.items()):
        raise DraftError(f"{path}: not a draft trace (expected an object with sentences, notes and papers)")
    for n, row in enumerate(data["sentences"], 1):
        if not (isinstance(row, dict) and isinstance(row.get("field"), str) and isinstance(row.get("text"), str)
                and isinstance(row.get("rests_on"), list)):
            raise DraftError(f"{path}: sentence {n} lacks field, text or rests_on")
    return data


def _key(field: str, text: str) -> tuple[str, str]:
    return field, " ".join(text.split()).lower()


@attrs.define
class DraftPage:
    """What draft.html shows. Sentences are numbered in reading order (ids `s-N`, rows `t-N`)."""

    draft: DraftFile
    trace: dict
    pattern: object | None = None          # compiler.model.Pattern, when the spec checks
    problems: list[str] = attrs.Factory(list)
    definition: list[dict] = attrs.Factory(list)
    mechanisms: list[tuple[str, list[list[dict]]]] = attrs.Factory(list)  # kind -> mechanisms -> sentences
    manifestations: list[dict] = attrs.Factory(list)
    gone: list[dict] = attrs.Factory(list)  # trace rows whose sentence is no longer in the spec

    @property
    def traced(self) -> list[dict]:
        return [s for s in self.all_sentences if s["entries"]]

    @property
    def all_sentences(self) -> list[dict]:
        mech = [s for _, group in self.mechanisms for sents in group for s in sents]
        return [*self.definition, *mech, *self.manifestations]

    def papers(self, cited: bool) -> list[dict]:
        """The trace's papers the draft rests on (cited) or read and not cited, each with the
        numbers of the sentences that cite it."""
        by_paper: dict[str, list[int]] = {}
        for s in self.all_sentences:
            for e in s["entries"]:
                by_paper.setdefault(e["paper"], [])
                if s["n"] not in by_paper[e["paper"]]:
                    by_paper[e["paper"]].append(s["n"])
        out = []
        for pid, meta in self.trace["papers"].items():
            meta = meta if isinstance(meta, dict) else {}
            if bool(meta.get("cited")) == cited:
                out.append({"id": pid, **meta, "sentences": by_paper.get(pid, [])})
        return out


def load_page(draft: DraftFile) -> DraftPage:
    """The draft's spec and trace, matched sentence by sentence.

    Raises:
        DraftError: the trace is unreadable (the spec's own problems are listed on the page).
    """
    from ..compiler.loader import check_paths

    page = DraftPage(draft, _read_trace(draft.trace))
    rows: dict[tuple[str, str], list[dict]] = {}
    for row in page.trace["sentences"]:
        rows.setdefault(_key(row["field"], row["text"]), []).append(row)
    counter = itertools.count(1)

    def sentence(field: str, text: str) -> dict:
        matches = rows.get(_key(field, text)) or []
        row = matches.pop(0) if matches else None
        return {"n": next(counter), "field": field, "text": text, "line": row and row.get("line"),
                "entries": [_entry(page.trace, r) for r in row["rests_on"]] if row else [], "traced": row is not None}

    def mechanism_group(kind: str) -> list[list[dict]]:
        """The page's mechanisms of `kind`, added (in first-seen order) when new."""
        group = next((g for k, g in page.mechanisms if k == kind), None)
        if group is None:
            page.mechanisms.append((kind, group := []))
        return group

    result = check_paths([draft.spec])
    pattern = next((p for p in result.library.patterns), None) if result.library else None
    if pattern is None:
        page.problems = [d.render() for d in result.errors] or [f"{draft.spec}: holds no pattern"]
        page.problems.append("shown from the trace alone")
        for row in page.trace["sentences"]:
            s = sentence(row["field"], row["text"])
            if row["field"] == "definition":
                page.definition.append(s)
            elif row["field"].startswith("mechanism "):
                mechanism_group(row["field"].split(" ", 1)[1]).append([s])
            else:
                page.manifestations.append(s)
        return page
    page.pattern = pattern
    page.definition = [sentence("definition", s) for s in sentences(pattern.definition)]
    for m in pattern.mechanisms:
        mechanism_group(m.kind).append([sentence(f"mechanism {m.kind}", s) for s in sentences(m.text)])
    page.manifestations = [sentence("manifestation", x) for x in pattern.manifestations]
    page.gone = [{**row, "entries": [_entry(page.trace, r) for r in row["rests_on"]]}
                 for left in rows.values() for row in left]
    return page


def paper_file(draft: DraftFile, trace: dict, file: str) -> Path:
    """Where a paper of the trace is now. The trace names papers and the draft as they were given
    to `humanllm draft` (relative to where it ran), so that folder is the spec's, less the parts
    of the draft's own recorded name."""
    path = Path(file)
    if path.is_absolute():
        return path
    written = Path(str(trace.get("draft") or draft.spec.name))
    base = draft.spec.parent
    if not written.is_absolute():
        for _ in written.parts[:-1]:
            base = base.parent
    return (base / path).resolve()


def _entry(trace: dict, ref: dict) -> dict:
    """One note a sentence rests on, with its paper's metadata and the note's text."""
    ref = ref if isinstance(ref, dict) else {}
    note = trace["notes"].get(ref.get("note"))
    note = note if isinstance(note, dict) else {}
    pid = ref.get("paper") or note.get("paper") or ""
    paper = trace["papers"].get(pid)
    paper = paper if isinstance(paper, dict) else {}
    return {"note": ref.get("note", ""), "paper": pid, "pointer": ref.get("pointer") or note.get("pointer", ""),
            "claim": note.get("claim"), "aspect": note.get("aspect", ""), "kind": note.get("kind", ""),
            "title": paper.get("title"), "year": paper.get("year"), "authors": paper.get("authors") or []}
