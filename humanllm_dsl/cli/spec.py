"""The commands that read specs and write no build: `check`, `fmt`, `dump`, `list`, `show`."""

from __future__ import annotations

import json
import sys

from ..compiler.loader import check_paths, display
from ..compiler.model import DIMENSIONS, FAMILIES, POLES
from ..syntax.diagnostics import HpatError
from ..syntax.diagnostics import plural
from .common import EXIT_OK, EXIT_SPEC, add_stdlib_option, load, print_diagnostics, spec_paths, use_stdlib


def add_commands(sub) -> None:
    p = sub.add_parser("check", help="check spec files for errors",
                       description="Parse and check .hpat files or folders; print every error and warning "
                                   "as PATH:LINE:COL. Exit 1 if there is any error (warnings do not fail).")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="spec files or folders (folders are searched for *.hpat); they add to the standard library")
    add_stdlib_option(p)
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
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument("--json", action="store_true", help="pretty-print (indented JSON; the default is one line)")
    add_stdlib_option(p)
    p.set_defaults(func=cmd_dump)

    p = sub.add_parser("list", help="list the patterns of a library",
                       description="List patterns (of the standard library and of the given specs), "
                                   "optionally filtered.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="spec files or folders that add to the standard library")
    p.add_argument("--family", choices=FAMILIES)
    p.add_argument("--dimension", choices=DIMENSIONS)
    p.add_argument("--pole", choices=POLES)
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--plain", action="store_true", help="one pattern per line, tab-separated, no header")
    shape.add_argument("--json", action="store_true", help="a JSON list of patterns")
    add_stdlib_option(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="show one pattern in full",
                       description="Show a pattern's definition, mechanisms, manifestations, checklist, "
                                   "sources and interactions. PATTERN is an id or a display name.")
    p.add_argument("pattern", metavar="PATTERN")
    p.add_argument("paths", nargs="*", metavar="PATH", help="spec files or folders that add to the standard library")
    add_stdlib_option(p)
    p.set_defaults(func=cmd_show)


def cmd_check(args) -> int:
    paths = spec_paths(args, "paths")
    result = load(paths, stdlib=use_stdlib(args))
    if result.errors:
        return EXIT_SPEC
    lib = result.library
    traits = sum(p.is_trait for p in lib.patterns)
    std = len(result.std_files)
    files = plural(len(result.files) - std, "file") + (f" (+{std} of the standard library)" if std else "")
    print(f"ok: {files}, {plural(len(lib.patterns), 'pattern')} "
          f"({len(lib.patterns) - traits} social-cognitive, {plural(traits, 'trait')}), "
          f"{plural(len(lib.interactions), 'interaction')}, {plural(len(lib.exclusions), 'exclusion')}, "
          f"{plural(len(lib.situations), 'situation')}, {plural(len(lib.domains), 'domain')}, "
          f"{plural(len(lib.datasets), 'dataset')}")
    return EXIT_OK


def cmd_fmt(args) -> int:
    from ..compiler.loader import spec_files
    from ..syntax.formatter import format_module
    from ..syntax.parser import parse_text
    from ..syntax.source import decode, style

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
        formatted = style(data).encode(format_module(module))  # the file's BOM and line ending are kept
        if formatted != data:
            changed.append(name)
            if not args.check:
                from ..runtime.store import write_text
                write_text(path, formatted.decode("utf-8"))
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
    from ..compiler.model import to_json

    paths = spec_paths(args, "paths")
    result = load(paths, stdlib=use_stdlib(args))
    if result.errors:
        return EXIT_SPEC
    data = to_json(result.library)
    data["spec_hash"] = result.library.spec_hash
    json.dump(data, sys.stdout, indent=2 if args.json else None, ensure_ascii=False)
    sys.stdout.write("\n")
    return EXIT_OK


def _browsable(args):
    """The library `list` and `show` browse (a warning does not stop them), or an exit code."""
    paths = spec_paths(args, "paths")
    result = check_paths(paths, stdlib=use_stdlib(args))
    if result.library is None:
        print_diagnostics(result)
        return EXIT_SPEC
    return result.library


def cmd_list(args) -> int:
    from ..browse import list_patterns

    library = _browsable(args)
    if isinstance(library, int):
        return library
    shape = "json" if args.json else "plain" if args.plain else "table"
    return list_patterns(library, family=args.family, dimension=args.dimension, pole=args.pole, shape=shape)


def cmd_show(args) -> int:
    from ..browse import show_pattern

    library = _browsable(args)
    return library if isinstance(library, int) else show_pattern(library, args.pattern)
