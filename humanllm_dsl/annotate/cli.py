"""The `annotate` command: `add_commands(sub)` registers it on the humanllm parser; `main` runs
it alone (`python -m humanllm_dsl.annotate`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

PASSWORD_ENV = "HUMANLLM_ANNOTATE_PASSWORD"
EPILOG = """\
forms:
  humanllm annotate DIR --db study.sqlite [-n 100 --seed 0 --split all]   a study over an eval or build folder
  humanllm annotate patterns SPECS_OR_BUILD... --db review.sqlite           a pattern review (.hpat files/folders)
  humanllm annotate --db study.sqlite                                       reopen a study as it was made
  humanllm annotate export --db study.sqlite -o human.csv                   what `humanllm align --human` reads

The server binds 127.0.0.1 on a free port (--port, --host). Beyond 127.0.0.1 a shared password
is required: set HUMANLLM_ANNOTATE_PASSWORD or give --password-file. See docs/annotate.md.
"""


def add_commands(sub) -> None:
    """Register `annotate` on the subparsers `sub` of the humanllm parser."""
    p = sub.add_parser("annotate", help="the human study and the pattern review, in the browser",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                       description="Serve a human study (raters score sampled samples' checklist items and the "
                                   "holistic scales, judge verdicts hidden) or a pattern review; export the answers.")
    p.add_argument("what", nargs="*", metavar="DIR | patterns PATH... | export",
                   help="an eval or build folder; `patterns` and spec paths; or `export`")
    p.add_argument("--db", required=True, type=Path, metavar="FILE", help="the study's SQLite file (made if new)")
    p.add_argument("--mode", choices=("study", "patterns"), default=None, help="`patterns` as the first word does the same")
    p.add_argument("-n", type=int, default=100, help="samples in a study (default 100)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--split", default="all", help="splits to sample from, as in `eval --split` (default all)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--password-file", type=Path, metavar="FILE", help=f"the shared password (or ${PASSWORD_ENV})")
    p.add_argument("-o", dest="output", type=Path, metavar="FILE", help="export: the CSV to write")
    p.add_argument("--ipe-average", choices=("pooled", "pattern"), default="pooled",
                   help="export: how a rater's IPE averages over patterns (as `eval --ipe-average`)")
    p.set_defaults(func=cmd_annotate)


def _fail(message: str, code: int = 1) -> int:
    print(f"humanllm annotate: error: {message}", file=sys.stderr)
    return code


def cmd_annotate(args) -> int:
    from ..evaluate.data import EvalDataError
    from .db import StudyDb
    from .sampling import StudyError

    what = list(args.what)
    try:
        if what[:1] == ["export"]:
            return _export(args, what[1:])
        mode = "patterns" if what[:1] == ["patterns"] or args.mode == "patterns" else "study"
        paths = [Path(w) for w in (what[1:] if what[:1] == ["patterns"] else what)]
        if not paths:
            if not args.db.is_file():
                return _fail(f"--db {args.db}: no such study; give the folder to study", 2)
            db = StudyDb(args.db)
        else:
            db = _open(args, mode, paths)
        password = _password(args)
        return _serve(db, args.host, args.port, password, not args.no_browser)
    except (StudyError, EvalDataError) as exc:
        return _fail(str(exc))
    except ValueError as exc:  # the host/password rule
        return _fail(str(exc), 2)


def _open(args, mode: str, paths: list[Path]):
    from .db import StudyDb
    from .sampling import StudyError

    missing = [p for p in paths if not p.exists()]
    if missing:
        raise StudyError(f"{missing[0]}: no such file or folder")
    if mode == "study":
        if len(paths) != 1 or not paths[0].is_dir():
            raise StudyError("a study is over one eval or build folder")
        from .sampling import study_units

        identity = {"mode": mode, "source": str(paths[0].resolve()), "n": args.n, "seed": args.seed, "split": args.split}
        return StudyDb.open(args.db, identity, lambda: study_units(paths[0], args.n, args.seed, args.split))
    from .patterns import review_units

    identity = {"mode": mode, "source": json.dumps([str(p.resolve()) for p in paths]), "n": "", "seed": "", "split": ""}
    return StudyDb.open(args.db, identity, lambda: review_units(paths))


def _password(args) -> str | None:
    if args.password_file is not None:
        try:
            return args.password_file.read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise ValueError(f"--password-file {args.password_file}: {exc.strerror}") from None
    return os.environ.get(PASSWORD_ENV) or None


def _serve(db, host: str, port: int, password: str | None, browser: bool) -> int:
    from ..webserve import serve_until_interrupted, url_of
    from .app import make_server

    server = make_server(db, host, port, password)
    url = url_of(server)
    print(f"humanllm annotate: {db.mode} with {len(db.units())} units, stored in {db.path}; serving {url} "
          "(Ctrl-C stops)", flush=True)
    return serve_until_interrupted(server, url, browser)


def _export(args, rest: list[str]) -> int:
    from .db import StudyDb
    from .export import export

    if rest:
        return _fail(f"export takes no paths (got {' '.join(rest)}); give --db and -o", 2)
    if args.output is None:
        return _fail("export needs -o FILE", 2)
    if not args.db.is_file():
        return _fail(f"--db {args.db}: no such file")
    rows, summary = export(StudyDb(args.db), args.output, args.ipe_average)
    print(f"humanllm annotate: {rows} rows written to {args.output}")
    if summary:
        for aspect, s in summary.items():
            alpha = "n/a" if s["alpha"] is None else f"{s['alpha']:.2f}"
            print(f"  {aspect:<15} n {s['n']:>4}  mean {s['mean']:.2f}  raters {s['raters']}  alpha {alpha}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="humanllm")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["annotate", *(sys.argv[1:] if argv is None else argv)])
    return args.func(args)
