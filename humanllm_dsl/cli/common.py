"""What the command root and the command modules share: exit codes and small printing helpers.

Command modules import from here, never from the root, so the package has no import cycle.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Sequence

from ..compiler.loader import LoadResult, UsageError, check_paths

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


class InputError(Exception):
    """Bad data a command reads, found by the command itself (exit 1); the message says where."""


def _color(stream) -> bool:
    return hasattr(stream, "isatty") and stream.isatty() and "NO_COLOR" not in os.environ


def print_diagnostics(result: LoadResult) -> None:
    color = _color(sys.stderr)
    for d in result.diagnostics:
        print(d.render(color=color), file=sys.stderr)
    if result.diagnostics:
        e, w = len(result.errors), len(result.warnings)
        print(f"{e} error{'s' * (e != 1)}, {w} warning{'s' * (w != 1)}", file=sys.stderr)


NO_STDLIB_ENV = "HUMANLLM_NO_STDLIB"


def add_stdlib_option(parser) -> None:
    """`--no-stdlib`, for every command that reads specs."""
    parser.add_argument("--no-stdlib", action="store_true",
                        help="read only the given specs, without the shipped standard library "
                             f"(also: {NO_STDLIB_ENV}=1)")


def use_stdlib(args) -> bool:
    return not getattr(args, "no_stdlib", False) and os.environ.get(NO_STDLIB_ENV, "") in ("", "0")


def add_specs_option(parser, what: str) -> None:
    """`--specs` and `--no-stdlib`, for a command whose specs are an option: by default the
    standard library alone, so the command works from any folder."""
    parser.add_argument("--specs", default=[], nargs="+", metavar="SPECS",
                        help=f"spec files or folders ({what}) that add to the standard library "
                             "(default: the standard library alone)")
    add_stdlib_option(parser)


def spec_paths(args, attr: str = "specs", what: str = "spec files or folders") -> list[str]:
    """The spec paths in `args.<attr>`; a usage error when there are none and no standard library."""
    paths = getattr(args, attr)
    if not paths and not use_stdlib(args):
        raise UsageError(f"give {what} with --no-stdlib")
    return list(paths)


def load(paths: Sequence[str], stdlib: bool = False) -> LoadResult:
    """Check the specs at `paths` (after the standard library when `stdlib`) and print every diagnostic."""
    result = check_paths(paths, stdlib=stdlib)
    print_diagnostics(result)
    return result


def progress_mode(no_progress: bool) -> str | None:
    """A live bar on a terminal, a plain line every 30 s elsewhere, or nothing."""
    return None if no_progress else "bar" if sys.stderr.isatty() else "log"
