"""Paths -> files -> syntax trees -> a checked Library.

A folder given on the command line is a spec root: every `*.hpat` below it is loaded. A file
given alone has its own folder as root. `use "x.hpat"` is resolved against the using file's
folder and must stay inside the root; `use std "traits/extraversion"` names a file of the
standard library (the shipped `specs/`), shown in messages as `std:traits/extraversion.hpat`.

With `stdlib=True` the whole standard library is loaded first and the user's files add to it: an
id that collides is an error unless the user's declaration starts with `override`. A stdlib file
whose bytes equal a user's file is not loaded twice (`check specs/` in the repository).
"""

from __future__ import annotations

import gc
import hashlib
import os
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import attrs

from ..syntax import ast
from ..syntax.diagnostics import Diagnostic, HpatError, did_you_mean
from ..syntax.parser import parse_text
from ..syntax.source import decode
from .checker import STD_PREFIX, Checker
from .model import Library

SUFFIX = ".hpat"
_PACKAGE = Path(__file__).resolve().parents[1]


class UsageError(Exception):
    """A problem with how the tool was called (missing path, no spec files): exit code 2."""


def stdlib_path() -> Path | None:
    """The standard library's folder: `humanllm_dsl/stdlib` in an installed package, the
    repository's `specs/` in a source checkout (an editable install); None if neither exists."""
    installed = _PACKAGE / "stdlib"
    if installed.is_dir():
        return installed
    source = _PACKAGE.parent / "specs"
    if source.is_dir() and (_PACKAGE.parent / "pyproject.toml").is_file():
        return source
    return None


def _stdlib_root() -> Path:
    root = stdlib_path()
    if root is None:
        raise UsageError("the standard library is missing from this installation; reinstall humanllm, "
                         "or pass --no-stdlib")
    return root


def stdlib_file(name: str) -> Path | None:
    """The real path of a stdlib file as messages name it (`std:traits/openness.hpat`), or None."""
    root = stdlib_path()
    if root is None or not name.startswith(STD_PREFIX):
        return None
    path = (root / name[len(STD_PREFIX):]).resolve()
    return path if path.is_relative_to(root.resolve()) and path.is_file() else None


@attrs.frozen
class LoadResult:
    library: Library | None
    diagnostics: list[Diagnostic]
    files: tuple[Path, ...]
    modules: tuple[ast.Module, ...] = ()
    std_files: tuple[Path, ...] = ()  # those of `files` that come from the standard library

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


def parse_files(paths: Sequence[str | Path], stdlib: bool = False):
    """Parse every file (and what they `use`), after the standard library's files when `stdlib`.
    Returns modules, diagnostics, files, texts (texts keyed by the name messages use)."""
    gc_was_on = gc.isenabled()
    gc.disable()  # the trees are kept, so collections during loading find nothing to free
    try:
        return _parse_files(paths, stdlib)
    finally:
        if gc_was_on:
            gc.enable()


def std_name(path: Path, root: Path) -> str:
    """How messages name a file of the standard library: `std:traits/openness.hpat`."""
    return STD_PREFIX + path.relative_to(root).as_posix()


def _parse_files(paths: Sequence[str | Path], stdlib: bool = False):
    cwd = Path.cwd().resolve()
    diagnostics: list[Diagnostic] = []
    modules: dict[Path, ast.Module] = {}
    texts: dict[str, list[str]] = {}
    uses: dict[Path, list[tuple[Path, ast.Use]]] = {}
    user = [(f.resolve(), root.resolve(), display(f, cwd)) for f, root in spec_files(paths, diagnostics)]
    queue = deque(user)
    if stdlib:
        queue.extendleft(reversed(_stdlib_files({real for real, _, _ in user})))
    while queue:
        real, root, name = queue.popleft()
        if real in modules or real in uses:
            continue
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
            found = _resolve_use(use, real, root, diagnostics)
            if found is not None:
                target, target_root, target_name = found
                uses[real].append((target, use))
                queue.append((target, target_root, target_name))
    diagnostics.extend(_cycles(uses, {real: module.file for real, module in modules.items()}))
    diagnostics = [_with_line(d, texts[d.file]) if d.file in texts else d for d in diagnostics]
    return list(modules.values()), diagnostics, tuple(modules), texts


def _stdlib_files(user: set[Path]) -> list[tuple[Path, Path, str]]:
    """(real path, root, name) of the stdlib's files, less those the user's files already are
    (the same file, or the same bytes: the repository's specs/ is the stdlib's source)."""
    root = _stdlib_root().resolve()
    files = [f.resolve() for f in _walk(root, [])]
    if user & set(files):
        files = [f for f in files if f not in user]
    if files and user:
        std_sizes = {f.stat().st_size for f in files}
        digests = {_digest(f) for f in user if f.is_file() and f.stat().st_size in std_sizes}
        if digests:
            files = [f for f in files if _digest(f) not in digests]
    return [(f, root, std_name(f, root)) for f in files]


def _digest(path: Path) -> bytes:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).digest()


def _std_target(use: ast.Use, diagnostics: list[Diagnostic]) -> tuple[Path, Path, str] | None:
    raw = use.path.value
    root = stdlib_path()
    if root is None:
        diagnostics.append(Diagnostic.at(use.path.span, f"`use std \"{raw}\"`: the standard library is missing "
                                                        "from this installation", hint="reinstall humanllm"))
        return None
    root = root.resolve()
    target = (root / (raw if raw.endswith(SUFFIX) else raw + SUFFIX)).resolve()
    if Path(raw).is_absolute() or not target.is_relative_to(root) or not target.is_file():
        names = [f.relative_to(root).as_posix()[:-len(SUFFIX)] for f in _walk(root, [])]
        best = did_you_mean(raw.removesuffix(SUFFIX), names)
        diagnostics.append(Diagnostic.at(
            use.path.span, f"`use std \"{raw}\"`: the standard library has no such file"
                           + (f"; did you mean `{best}`?" if best else ""),
            hint="name a file of the shipped library by its path without .hpat, as in "
                 "`use std \"social_cognitive/anchoring\"` (`humanllm list` shows the library)"))
        return None
    return target, root, std_name(target, root)


def _resolve_use(use: ast.Use, file: Path, root: Path, diagnostics: list[Diagnostic]) -> tuple[Path, Path, str] | None:
    """(file, its root, its name in messages) that a `use` names, or None after an error."""
    if use.std:
        return _std_target(use, diagnostics)
    raw = use.path.value
    target = (file.parent / raw).resolve()
    if Path(raw).is_absolute() or not target.is_relative_to(root):
        diagnostics.append(Diagnostic.at(use.path.span, f"`use \"{raw}\"` points outside the spec root",
                                         hint=f"spec files may only use files inside {display(root)}; for a file of "
                                              "the shipped library write `use std \"social_cognitive/anchoring\"`"))
        return None
    if not target.is_file():
        diagnostics.append(Diagnostic.at(use.path.span, f"`use \"{raw}\"`: no such file",
                                         hint="the path is relative to the folder of this file"))
        return None
    if root == _stdlib_dir():
        return target, root, std_name(target, root)
    return target, root, display(target)


def _stdlib_dir() -> Path | None:
    root = stdlib_path()
    return root.resolve() if root is not None else None


def _cycles(uses: dict[Path, list[tuple[Path, ast.Use]]], names: dict[Path, str]) -> list[Diagnostic]:
    """One error per import cycle, at the `use` that closes it. Iterative: a chain of thousands
    of `use` lines is an ordinary input."""
    found, state = [], {}
    for start in uses:
        if start in state:
            continue
        state[start] = "open"
        trail = [start]
        stack = [iter(uses.get(start, []))]
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[trail.pop()] = "done"
                stack.pop()
                continue
            target, use = step
            if state.get(target) == "open":
                cycle = trail[trail.index(target):] + [target]
                found.append(Diagnostic.at(use.span, "import cycle: " + " -> ".join(names.get(p, display(p)) for p in cycle),
                                           hint="remove one of these `use` lines"))
            elif target not in state:
                state[target] = "open"
                trail.append(target)
                stack.append(iter(uses.get(target, [])))
    return found


def _with_line(diag: Diagnostic, lines: list[str]) -> Diagnostic:
    if diag.source_line is None and 0 < diag.line <= len(lines):
        return attrs.evolve(diag, source_line=lines[diag.line - 1])
    return diag


def check_paths(paths: Sequence[str | Path], stdlib: bool = False) -> LoadResult:
    """Parse and check; never raises for spec problems (they are in `diagnostics`). With
    `stdlib`, the standard library is loaded too and its own warnings are not reported."""
    modules, diagnostics, files, texts = parse_files(paths, stdlib)
    library = None
    if not any(d.severity == "error" for d in diagnostics):
        checker = Checker(modules)
        library = checker.check()
        diagnostics.extend(checker.diagnostics)
    if stdlib:
        diagnostics = [d for d in diagnostics if d.severity == "error" or not d.file.startswith(STD_PREFIX)]
    diagnostics = [_with_line(d, texts[d.file]) if d.file in texts else d for d in diagnostics]
    diagnostics.sort(key=lambda d: d.sort_key)
    if any(d.severity == "error" for d in diagnostics):
        library = None
    std_files = tuple(f for f, m in zip(files, modules) if m.file.startswith(STD_PREFIX))
    return LoadResult(library, diagnostics, files, tuple(modules), std_files)


def load(*paths: str | Path, stdlib: bool = False) -> Library:
    """Load and check spec files or folders; raise HpatError with every error if any."""
    result = check_paths(paths, stdlib)
    if result.library is None:
        raise HpatError(result.errors)
    return result.library
