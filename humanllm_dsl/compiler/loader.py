"""Paths -> files -> syntax trees -> a checked Library.

A folder given on the command line is a spec root: every `*.hpat` below it is loaded. A file
given alone has its own folder as root. `use "x.hpat"` is resolved against the using file's
folder and must stay inside the root.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from pathlib import Path

import attrs

from ..syntax import ast
from ..syntax.diagnostics import Diagnostic, HpatError
from ..syntax.parser import parse_text
from ..syntax.source import decode
from .checker import Checker
from .model import Library

SUFFIX = ".hpat"


class UsageError(Exception):
    """A problem with how the tool was called (missing path, no spec files): exit code 2."""


@attrs.frozen
class LoadResult:
    library: Library | None
    diagnostics: list[Diagnostic]
    files: tuple[Path, ...]
    modules: tuple[ast.Module, ...] = ()

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]


def display(path: Path, cwd: Path | None = None) -> str:
    """A path as shown in messages: relative to the working folder where possible."""
    try:
        return str(path.resolve().relative_to(cwd or Path.cwd().resolve()))
    except ValueError:
        return str(path)


def spec_files(paths: Sequence[str | Path], diagnostics: list[Diagnostic] | None = None) -> list[tuple[Path, Path]]:
    """(file, root) for every spec file named by `paths`, in a stable order.

    Inside a folder, a symbolic link to a file outside it is refused (an error, the file is
    never read) and a linked folder is skipped (a warning): the spec root is a boundary, as
    for `use`. Both go to `diagnostics` when given. A file named on the command line is read
    wherever it points: the user chose it.
    """
    found: list[tuple[Path, Path]] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"{raw}: no such file or folder")
        if path.is_dir():
            notes: list[Diagnostic] = []
            files = _walk(path, notes)
            if diagnostics is not None:
                diagnostics.extend(notes)
            if not files and not any(d.severity == "error" for d in notes):
                raise UsageError(f"{raw}: no {SUFFIX} files in this folder")
            found.extend((f, path) for f in files)
        else:
            found.append((path, path.parent))
    return found


def _shown(path: Path) -> str:
    """A link as shown in messages: its own name, never its target's."""
    return str(Path(display(path.parent)) / path.name)


def _walk(root: Path, notes: list[Diagnostic]) -> list[Path]:
    real_root = root.resolve()
    files = []
    for folder, dirs, names in os.walk(root):  # a linked folder is listed, never entered
        here = Path(folder)
        for name in sorted(dirs):
            if name.startswith(".") or (here / name).is_symlink():
                dirs.remove(name)
                if not name.startswith("."):
                    notes.append(Diagnostic(_shown(here / name), 1, 1, "skipped: this folder is a symbolic link",
                                            "warning", hint="spec files are read only from real folders inside "
                                                            f"{display(root)}; copy or move the files there"))
        for name in names:
            if name.startswith(".") or not name.endswith(SUFFIX):
                continue
            file = here / name
            if file.is_symlink() and not file.resolve().is_relative_to(real_root):
                notes.append(Diagnostic(_shown(file), 1, 1, "a symbolic link to a file outside the spec root; not read",
                                        hint=f"spec files must lie inside {display(root)}, as for `use`"))
            elif file.is_file():
                files.append(file)
    return sorted(files)


def parse_files(paths: Sequence[str | Path]):
    """Parse every file (and what they `use`). Returns modules, diagnostics, files, texts."""
    gc_was_on = gc.isenabled()
    gc.disable()  # the trees are kept, so collections during loading find nothing to free
    try:
        return _parse_files(paths)
    finally:
        if gc_was_on:
            gc.enable()


def _parse_files(paths: Sequence[str | Path]):
    cwd = Path.cwd().resolve()
    diagnostics: list[Diagnostic] = []
    modules: dict[Path, ast.Module] = {}
    texts: dict[str, list[str]] = {}
    uses: dict[Path, list[tuple[Path, ast.Use]]] = {}
    queue = [(f.resolve(), root.resolve(), f) for f, root in spec_files(paths, diagnostics)]
    while queue:
        real, root, shown = queue.pop(0)
        if real in modules or real in uses:
            continue
        name = display(shown, cwd)
        try:
            data = real.read_bytes()
        except OSError as exc:
            diagnostics.append(Diagnostic(name, 1, 1, f"cannot read the file: {exc.strerror or exc}"))
            uses[real] = []
            continue
        text, problems = decode(data, name)
        diagnostics.extend(problems)
        uses[real] = []
        if text is None:
            continue
        texts[name] = text.split("\n")
        try:
            module = parse_text(text, name)
        except HpatError as exc:
            diagnostics.extend(exc.diagnostics)
            continue
        modules[real] = module
        for use in (i for i in module.items if isinstance(i, ast.Use)):
            target = _resolve_use(use, real, root, diagnostics)
            if target is not None:
                uses[real].append((target, use))
                queue.append((target, root, target))
    diagnostics.extend(_cycles(uses))
    diagnostics = [_with_line(d, texts[d.file]) if d.file in texts else d for d in diagnostics]
    return list(modules.values()), diagnostics, tuple(modules), texts


def _resolve_use(use: ast.Use, file: Path, root: Path, diagnostics: list[Diagnostic]) -> Path | None:
    raw = use.path.value
    target = (file.parent / raw).resolve()
    if Path(raw).is_absolute() or not target.is_relative_to(root):
        diagnostics.append(Diagnostic.at(use.path.span, f"`use \"{raw}\"` points outside the spec root",
                                         hint=f"spec files may only use files inside {display(root)}"))
        return None
    if not target.is_file():
        diagnostics.append(Diagnostic.at(use.path.span, f"`use \"{raw}\"`: no such file",
                                         hint="the path is relative to the folder of this file"))
        return None
    return target


def _cycles(uses: dict[Path, list[tuple[Path, ast.Use]]]) -> list[Diagnostic]:
    """One error per import cycle, at the `use` that closes it."""
    found, state = [], {}

    def visit(node: Path, trail: list[Path]) -> None:
        state[node] = "open"
        for target, use in uses.get(node, []):
            if state.get(target) == "open":
                cycle = trail[trail.index(target):] + [target]
                found.append(Diagnostic.at(use.span, "import cycle: " + " -> ".join(display(p) for p in cycle),
                                           hint="remove one of these `use` lines"))
            elif target not in state:
                visit(target, trail + [target])
        state[node] = "done"

    for start in uses:
        if start not in state:
            visit(start, [start])
    return found


def _with_line(diag: Diagnostic, lines: list[str]) -> Diagnostic:
    if diag.source_line is None and 0 < diag.line <= len(lines):
        return attrs.evolve(diag, source_line=lines[diag.line - 1])
    return diag


def check_paths(paths: Sequence[str | Path]) -> LoadResult:
    """Parse and check; never raises for spec problems (they are in `diagnostics`)."""
    modules, diagnostics, files, texts = parse_files(paths)
    library = None
    if not any(d.severity == "error" for d in diagnostics):
        checker = Checker(modules)
        library = checker.check()
        diagnostics.extend(checker.diagnostics)
    diagnostics = [_with_line(d, texts[d.file]) if d.file in texts else d for d in diagnostics]
    diagnostics.sort(key=lambda d: d.sort_key)
    if any(d.severity == "error" for d in diagnostics):
        library = None
    return LoadResult(library, diagnostics, files, tuple(modules))


def load(*paths: str | Path) -> Library:
    """Load and check spec files or folders; raise HpatError with every error if any."""
    result = check_paths(paths)
    if result.library is None:
        raise HpatError(result.errors)
    return result.library
