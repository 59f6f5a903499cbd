"""`humanllm lsp`: registered with the other commands; pygls is imported only when it runs."""

from __future__ import annotations

import argparse


def add_commands(sub) -> None:
    p = sub.add_parser("lsp", help="run the .hpat language server (for editors) on stdin and stdout",
                       description="A language server for .hpat files: the diagnostics of `check` while typing, "
                                   "hover, go to definition, references, completion, formatting and rename. "
                                   "Editors start it; see docs/editor.md.")
    p.add_argument("--stdio", action="store_true", help="talk over stdin and stdout (the default; accepted "
                                                         "because editors pass it)")
    p.add_argument("--no-stdlib", action="store_true", help="do not load the standard library of patterns")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from .server import serve
    except ImportError as exc:
        from ..compiler.loader import UsageError

        raise UsageError(f"the language server needs pygls: pip install 'humanllm[lsp]' ({exc})") from exc
    from importlib.metadata import PackageNotFoundError, version

    from .stdlib import stdlib_folders

    try:
        release = version("humanllm")
    except PackageNotFoundError:
        release = "dev"
    serve([] if args.no_stdlib else stdlib_folders(), release)
    return 0
