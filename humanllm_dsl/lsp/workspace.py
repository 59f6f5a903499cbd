"""The server's view of the spec files: the standard library, every `.hpat` file of the
workspace folders and the editor's open buffers. Each file's parse is cached; an edit parses
that file alone and then repeats the cross-file check, which remembers per-pattern work."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs

from ..compiler.loader import UsageError, _resolve_use, spec_files, std_name
from ..compiler.model import Library
from ..syntax import ast
from ..syntax.diagnostics import Diagnostic, HpatError
from ..syntax.parser import parse_text
from ..syntax.source import BOM, decode
from ..syntax.span import Span
from .incremental import PatternMemo
from .index import FileIndex, Kind


@attrs.define
class FileState:
    path: Path  # resolved
    root: Path  # the spec root its `use` lines must stay inside
    text: str
    name: str = ""  # the file in its diagnostics and spans: the path, or `std:...` in the standard library
    module: ast.Module | None = None
    problems: list[Diagnostic] = attrs.Factory(list)  # reading, parsing and `use`
    index: FileIndex = attrs.Factory(lambda: FileIndex((), {}))
    stdlib: bool = False
    open: bool = False


def normalise(text: str) -> str:
    """Editor text as the loader reads a file: no BOM, LF line ends."""
    return text.removeprefix(BOM).replace("\r\n", "\n").replace("\r", "\n")


class Workspace:
    def __init__(self, stdlib: Iterable[Path] = ()) -> None:
        self.files: dict[Path, FileState] = {}
        self.paths: dict[str, Path] = {}  # file name in diagnostics -> path
        self.folders: list[Path] = []
        self.notes: list[Diagnostic] = []  # about folders (skipped links)
        self.library: Library | None = None
        self._memo = PatternMemo()
        for folder in stdlib:
            self._load_folder(folder, stdlib=True)

    # -- contents
    def add_folder(self, folder: Path) -> None:
        folder = folder.resolve()
        if folder not in self.folders:
            self.folders.append(folder)
            self._load_folder(folder, stdlib=False)

    def _load_folder(self, folder: Path, stdlib: bool) -> None:
        try:
            found = spec_files([folder], self.notes)
        except UsageError:  # a folder with no spec files yet
            return
        for file, root in found:
            real = file.resolve()
            known = self.files.get(real)
            if known is not None:
                known.stdlib = known.stdlib and stdlib
                continue
            name = std_name(real, root.resolve()) if stdlib else str(real)
            state = FileState(real, root.resolve(), "", name, stdlib=stdlib)
            self.files[real] = state
            self.paths[name] = real
            self._read(state)

    def _read(self, state: FileState) -> None:
        name = state.name
        try:
            data = state.path.read_bytes()
        except OSError as exc:
            state.text, state.module, state.index = "", None, FileIndex((), {})
            state.problems = [Diagnostic(name, 1, 1, f"cannot read the file: {exc.strerror or exc}")]
            return
        text, problems = decode(data, name)
        self._parse(state, text or "", problems if text is None else [])

    def open(self, path: Path, text: str) -> FileState:
        """The editor opened or changed `path`; its text is now `text`."""
        real = path.resolve()
        state = self.files.get(real)
        if state is None:
            root = next((f for f in self.folders if real.is_relative_to(f)), real.parent)
            state = self.files[real] = FileState(real, root, "", str(real))
            self.paths[state.name] = real
        state.open = True
        self._parse(state, normalise(text), [])
        return state

    def close(self, path: Path) -> None:
        """The editor closed `path`: it is read from disk again, or forgotten if it is gone or lies
        outside the workspace."""
        state = self.files.get(path.resolve())
        if state is None:
            return
        state.open = False
        if state.path.is_file() and (state.stdlib or any(state.path.is_relative_to(f) for f in self.folders)):
            self._read(state)
        else:
            del self.files[state.path]
            self.paths.pop(state.name, None)

    def _parse(self, state: FileState, text: str, problems: list[Diagnostic]) -> None:
        state.text, state.module, state.problems = text, None, problems
        if not problems:
            try:
                state.module = parse_text(text, state.name)
            except HpatError as exc:
                state.problems = list(exc.diagnostics)
        if state.module is not None:
            state.problems = _use_problems(state)
        state.index = FileIndex.of(state.module) if state.module else FileIndex((), {})

    # -- checking
    def ordered(self) -> list[FileState]:
        """The standard library first, so that a clash is reported in the user's file."""
        return sorted(self.files.values(), key=lambda s: (not s.stdlib, str(s.path)))

    def check(self) -> dict[Path, list[Diagnostic]]:
        """Every diagnostic `check` would give for these files, by file (every file has an entry)."""
        states = self.ordered()
        found = [d for s in states for d in s.problems] + list(self.notes)
        self.library = None
        if not any(d.severity == "error" for d in found):
            library, checked = self._memo.check(s.module for s in states if s.module is not None)
            found += checked
            if not any(d.severity == "error" for d in checked):
                self.library = library
        by_file: dict[Path, list[Diagnostic]] = {s.path: [] for s in states}
        for diag in sorted(found, key=lambda d: d.sort_key):
            by_file.setdefault(self.paths.get(diag.file, Path(diag.file)), []).append(diag)
        return by_file

    # -- look-ups
    def get(self, path: Path) -> FileState | None:
        return self.files.get(path.resolve())

    def definitions(self, kind: Kind, name: str) -> list[tuple[FileState, ast.Pattern | ast.Situation | ast.Domain | ast.Dataset]]:
        return [(s, node) for s in self.ordered() if (node := s.index.definitions.get((kind, name))) is not None]

    def names(self, kind: Kind) -> dict[str, tuple[FileState, object]]:
        """Every id of a kind defined anywhere, with its first definition."""
        found: dict[str, tuple[FileState, object]] = {}
        for s in self.ordered():
            for (k, name), node in s.index.definitions.items():
                if k == kind:
                    found.setdefault(name, (s, node))
        return found

    def references(self, kind: Kind, name: str) -> Iterator[tuple[FileState, Span, bool]]:
        """Every place `name` of `kind` is written: (file, span, is it the definition)."""
        for s in self.ordered():
            for ref in s.index.refs:
                if ref.kind == kind and ref.name == name:
                    yield s, ref.span, ref.definition


def _use_problems(state: FileState) -> list[Diagnostic]:
    """The loader's errors for `use` lines that name no file or one outside the spec root."""
    problems: list[Diagnostic] = []
    for use in (i for i in state.module.items if isinstance(i, ast.Use)):
        _resolve_use(use, state.path, state.root, problems)
    return problems


def use_target(state: FileState, use: ast.Use) -> Path | None:
    found = _resolve_use(use, state.path, state.root, [])
    return found[0] if found else None
