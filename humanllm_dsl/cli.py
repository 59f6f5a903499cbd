"""The `humanllm` command. Thin: parses arguments, calls the library, prints, sets the exit code.

Exit codes are in one table, `EXIT_CODES`; errors a command does not handle itself are mapped to
them by class in `ERROR_CODES`. Everything written on stderr passes through `redact`.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import sys
from collections.abc import Sequence

from .compiler.loader import LoadResult, UsageError, check_paths, display
from .redact import RedactingStream
from .syntax.diagnostics import HpatError

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_FAILURES, EXIT_IO, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_CODES = {
    EXIT_OK: "ok",
    EXIT_SPEC: "problems in the specs or in the data a command reads",
    EXIT_USAGE: "usage error: bad options, an LM that cannot be used, an output folder in use or not made by humanllm",
    EXIT_FAILURES: "compile finished, but some planned scenarios failed (see failures.jsonl; run again to retry them)",
    EXIT_IO: "a file could not be read or written (disk full, permissions); finished results are kept",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); run the same command again to resume",
}
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _color(stream) -> bool:
    return hasattr(stream, "isatty") and stream.isatty() and "NO_COLOR" not in os.environ


def print_diagnostics(result: LoadResult) -> None:
    color = _color(sys.stderr)
    for d in result.diagnostics:
        print(d.render(color=color), file=sys.stderr)
    if result.diagnostics:
        e, w = len(result.errors), len(result.warnings)
        print(f"{e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)}", file=sys.stderr)


def _load(paths: Sequence[str]) -> LoadResult:
    result = check_paths(paths)
    print_diagnostics(result)
    return result


# ---- commands ---------------------------------------------------------------------------
def cmd_check(args) -> int:
    result = _load(args.paths)
    if result.errors:
        return EXIT_SPEC
    lib = result.library
    traits = sum(p.is_trait for p in lib.patterns)
    print(f"ok: {len(result.files)} files, {len(lib.patterns)} patterns "
          f"({len(lib.patterns) - traits} social-cognitive, {traits} traits), "
          f"{len(lib.interactions)} interactions, {len(lib.exclusions)} exclusions, "
          f"{len(lib.situations)} situations, {len(lib.domains)} domains, {len(lib.datasets)} datasets")
    return EXIT_OK


def cmd_fmt(args) -> int:
    from .compiler.loader import spec_files
    from .syntax.formatter import format_module
    from .syntax.parser import parse_text
    from .syntax.source import decode

    changed, failed, notes = [], False, []
    files = spec_files(args.paths, notes)
    for d in notes:
        print(d.render(), file=sys.stderr)
        failed |= d.severity == "error"
    for path, _root in files:
        name = display(path)
        data = path.read_bytes()
        text, problems = decode(data, name)
        if text is None:
            for d in problems:
                print(d.render(), file=sys.stderr)
            failed = True
            continue
        try:
            module = parse_text(text, name)
        except HpatError as exc:
            lines = text.split("\n")
            for d in exc.diagnostics:
                print(d.render(lines[d.line - 1] if d.line <= len(lines) else None), file=sys.stderr)
            failed = True
            continue
        formatted = format_module(module)
        if formatted.encode("utf-8") != data:
            changed.append(name)
            if not args.check:
                from .runtime.store import write_text
                write_text(path, formatted)
    for name in changed:
        print(f"{'would reformat' if args.check else 'reformatted'} {name}")
    if failed:
        return EXIT_SPEC
    if args.check and changed:
        return EXIT_SPEC
    if not changed:
        print("all files already formatted")
    return EXIT_OK


def cmd_dump(args) -> int:
    from .compiler.model import to_json

    result = _load(args.paths)
    if result.errors:
        return EXIT_SPEC
    data = to_json(result.library)
    data["spec_hash"] = result.library.spec_hash
    json.dump(data, sys.stdout, indent=2 if args.json else None, ensure_ascii=False)
    sys.stdout.write("\n")
    return EXIT_OK


def cmd_list(args) -> int:
    from .browse import list_patterns

    result = check_paths(args.paths)
    if result.library is None:
        print_diagnostics(result)
        return EXIT_SPEC
    return list_patterns(result.library, family=args.family, dimension=args.dimension, pole=args.pole)


def cmd_show(args) -> int:
    from .browse import show_pattern

    result = check_paths(args.paths)
    if result.library is None:
        print_diagnostics(result)
        return EXIT_SPEC
    return show_pattern(result.library, args.pattern)


# ---- parser -----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="humanllm",
        description="Write psychological patterns in .hpat specs, check them, and compile them "
                    "into datasets, models and evaluations.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items())
               + "\n\nRun `humanllm COMMAND --help` for each command.")
    parser.add_argument("--version", action="version", version=f"humanllm {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("check", help="check spec files for errors",
                       description="Parse and check .hpat files or folders; print every error and warning "
                                   "as PATH:LINE:COL. Exit 1 if there is any error (warnings do not fail).")
    p.add_argument("paths", nargs="+", metavar="PATH", help="spec files or folders (folders are searched for *.hpat)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("fmt", help="format spec files canonically",
                       description="Rewrite .hpat files in the canonical layout (comments are kept). "
                                   "With --check, change nothing and exit 1 if any file would change.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--check", action="store_true", help="only report files that are not formatted")
    p.set_defaults(func=cmd_fmt)

    p = sub.add_parser("dump", help="print the checked spec as JSON",
                       description="Print the checked library as JSON on stdout: patterns, interactions, "
                                   "exclusions, situations, domains, datasets (shape documented in docs/language.md).")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="pretty-print (indented JSON; the default is one line)")
    p.set_defaults(func=cmd_dump)

    p = sub.add_parser("list", help="list the patterns of a library",
                       description="List patterns in a table, optionally filtered.")
    p.add_argument("paths", nargs="*", metavar="PATH", default=["specs"], help="spec files or folders (default: specs)")
    p.add_argument("--family", choices=["social_cognitive", "trait"])
    p.add_argument("--dimension", choices=["extraversion", "agreeableness", "conscientiousness",
                                           "emotional_stability", "openness"])
    p.add_argument("--pole", choices=["positive", "negative"])
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="show one pattern in full",
                       description="Show a pattern's definition, mechanisms, manifestations, checklist, "
                                   "sources and interactions. PATTERN is an id or a display name.")
    p.add_argument("pattern", metavar="PATTERN")
    p.add_argument("paths", nargs="*", metavar="PATH", default=["specs"], help="spec files or folders (default: specs)")
    p.set_defaults(func=cmd_show)

    from importlib import import_module
    for module in COMMAND_MODULES:  # commands of later stages register themselves
        import_module(f".{module}", __package__).add_commands(sub)
    return parser


# Each module has `add_commands(subparsers)` and imports its heavy dependencies only when run.
COMMAND_MODULES = ("cli_compile", "cli_train", "cli_eval")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("humanllm")
    except PackageNotFoundError:
        return "dev"


def _io_message(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    if exc.errno in DISK_FULL:
        return (f"{where}no space left on device. Nothing half-written was kept and finished results are "
                f"safe; free some space and run the same command again to resume.")
    return f"{where}{exc.strerror or exc}"


# Errors a command leaves to the top level, by class (the first match wins), and their exit codes.
ERROR_CODES = ((UsageError, EXIT_USAGE), (HpatError, EXIT_SPEC), (OSError, EXIT_IO))


def main(argv: Sequence[str] | None = None) -> int:
    stderr = sys.stderr
    sys.stderr = RedactingStream(stderr)  # no secret in any message, whoever prints it
    try:
        return _main(argv)
    finally:
        sys.stderr = stderr


def _main(argv: Sequence[str] | None) -> int:
    from .runtime.outdir import claim, refuse_file

    parser = build_parser()
    args = parser.parse_args(argv)
    out = getattr(args, "out", None)  # every command that writes takes -o/--out DIR
    kind = getattr(args, "out_kind", None)  # ... and says what kind of folder it makes there
    try:
        if out is not None:
            refuse_file(out)
        with claim(out, kind(args) if callable(kind) else kind) if kind and out is not None else contextlib.nullcontext():
            return args.func(args)
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except tuple(cls for cls, _ in ERROR_CODES) as exc:
        code = next(code for cls, code in ERROR_CODES if isinstance(exc, cls))
        if isinstance(exc, HpatError):
            for d in exc.diagnostics:
                print(d.render(), file=sys.stderr)
        else:
            message = _io_message(exc) if isinstance(exc, OSError) else str(exc)
            print(f"humanllm {args.command}: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
