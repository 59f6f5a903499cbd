"""`humanllm view DIR...`: the argparse registration and the command (the lead's CLI calls `add_commands`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_commands(sub) -> None:
    """Register `view` on an argparse subparsers object."""
    p = sub.add_parser("view", help="browse builds and evaluations in a local web app",
                       description="Open build folders (from compile) and evaluation folders (from eval) in the browser: "
                                   "scenarios with filters and search, transcripts with verdicts beside turns, patterns, "
                                   "breakdowns, two evaluations side by side, and drafts of `humanllm draft` with each sentence's "
                                   "papers and pointers. Read-only; binds 127.0.0.1 by default.")
    p.add_argument("folders", nargs="+", type=Path, metavar="DIR",
                   help="build or evaluation folders, folders of drafts, or a draft (NAME.hpat or NAME.trace.json)")
    p.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--no-browser", action="store_true", help="print the address without opening a browser")
    p.add_argument("--specs", type=Path, action="append", default=[], metavar="DIR",
                   help="the .hpat specs, to show each pattern's definition, mechanisms and interactions")
    p.add_argument("--cache-dir", type=Path, default=None, help="where the search index is kept "
                   "(default: the user's cache folder)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, serve: bool = True) -> int:
    """Open the folders and serve until interrupted. Exit 2 for folders that cannot be viewed.

    Args:
        args: the parsed arguments.
        serve: False to open, print the address and return (tests).
    """
    from ..webserve import serve_until_interrupted, url_of
    from .app import make_server, open_app
    from .folders import FolderError

    try:
        app = open_app(args.folders, args.specs or None, args.cache_dir)
    except (FolderError, ValueError) as exc:
        print(f"humanllm view: {exc}", file=sys.stderr)
        return 2
    try:
        server = make_server(app, args.host, args.port)
    except OSError as exc:
        print(f"humanllm view: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    url = url_of(server)
    print(f"humanllm view: serving {len(app.folders)} folder(s) at {url} (Ctrl-C to stop)", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print("humanllm view: warning: reachable from other machines; anyone who can reach it can read the folders",
              file=sys.stderr)
    if not serve:
        server.server_close()
        return 0
    return serve_until_interrupted(server, url, not args.no_browser)
