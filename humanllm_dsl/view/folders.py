"""The folders `humanllm view` is given: builds (written by `compile`) and evaluations (by `eval`).

A folder is an evaluation when it holds `results.json` or `run.json`, a build when it holds
`records.jsonl` or `patterns.json`, a folder of drafts when it holds only drafts of `humanllm
draft` (`<id>.hpat` with `<id>.trace.json`); a `.hpat` or `.trace.json` file is that one draft.
Anything else is refused with a message naming it. Only the
small files (patterns.json, manifest.json, results.json) are kept in memory; records, rollouts
and verdicts are read by byte offset when a page needs them.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs

from ..runtime.layout import Build
from .drafts import DraftError, DraftFile, draft_of, find_drafts

EVAL_FILES = ("rollouts", "verdicts", "holistic", "failures")
ALIGN_FILES = ("alignment.json",)  # evaluate.align.REPORT_NAME, written by `align --report`


class FolderError(ValueError):
    """A folder that is neither a build, an evaluation nor drafts, or whose small files are unreadable."""


def _json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise FolderError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise FolderError(f"{path}: expected a JSON object")
    return data


@attrs.frozen
class Folder:
    key: int          # its number in URLs (/b/<key>/..., /e/<key>/...)
    kind: str         # "build", "eval" or "drafts"
    root: Path
    patterns: dict    # build: patterns.json; eval: its build's, when that build is on disk
    manifest: dict    # build: manifest.json
    results: dict     # eval: results.json
    build_root: Path | None  # eval: the build it evaluated, when on disk
    drafts: tuple[DraftFile, ...] = ()  # the drafts directly in the folder (any kind)
    only: tuple[Path, ...] = ()  # a draft given as a file: its two files are all that is served

    @property
    def label(self) -> str:
        if self.kind == "eval" and self.results.get("model"):
            return f"{self.root.name} ({self.results['model']})"
        if self.only:
            return self.drafts[0].spec.name
        return self.root.name or str(self.root)

    @property
    def build(self) -> Build:
        return Build(self.root if self.kind == "build" else (self.build_root or self.root))

    def file(self, name: str) -> Path:
        return self.root / f"{name}.jsonl"

    @property
    def alignment(self) -> dict | None:
        """The report `humanllm align --report` saved into the folder, if there is one."""
        for name in ALIGN_FILES:
            data = _json(self.root / name)
            if data:
                return data
        return None


def open_folder(path: Path, key: int) -> Folder:
    """A build or eval folder, its small files loaded.

    Args:
        path: the folder.
        key: its number among the folders given.
    Raises:
        FolderError: not a folder, or neither kind.
    """
    if path.is_file():
        try:
            draft = draft_of(path)
        except DraftError as exc:
            raise FolderError(str(exc)) from None
        return Folder(key, "drafts", draft.spec.parent, {}, {}, {}, None, (draft,), (draft.spec, draft.trace))
    root = path.resolve()
    if not root.is_dir():
        raise FolderError(f"{path}: no such folder")
    drafts = find_drafts(root)
    if (root / "results.json").is_file() or (root / "run.json").is_file():
        results = _json(root / "results.json")
        built = results.get("build") or _json(root / "run.json").get("build")
        build_root = Path(built).resolve() if built and Path(built).is_dir() else None
        patterns = _json(Build(build_root).patterns) if build_root else {}
        return Folder(key, "eval", root, patterns, {}, results, build_root, drafts)
    build = Build(root)
    if build.records.is_file() or build.patterns.is_file():
        return Folder(key, "build", root, _json(build.patterns), _json(build.manifest), {}, None, drafts)
    if drafts:
        return Folder(key, "drafts", root, {}, {}, {}, None, drafts)
    raise FolderError(f"{path}: neither a build folder (records.jsonl, patterns.json), "
                      "an evaluation folder (results.json, run.json) nor a folder of drafts (NAME.hpat with "
                      "NAME.trace.json)")


def read_at(path: Path, offset: int, length: int) -> dict:
    """The JSON object on one line of a JSON-lines file, read by its byte offset."""
    with path.open("rb") as f:
        f.seek(offset)
        return json.loads(f.read(length))


def lines_with_offsets(path: Path):
    """(line number, offset, length, row) for every non-blank line of a JSON-lines file; row is
    None where the line is not a JSON object (the index reports it: nothing is dropped silently)."""
    if not path.is_file():
        return
    offset = 0
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            size = len(line)
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    row = None
                yield number, offset, size, row if isinstance(row, dict) else None
            offset += size
