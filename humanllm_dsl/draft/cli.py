"""The `humanllm draft` command: `add_commands(subparsers)` registers it; `cmd_draft` runs it.

    humanllm draft NAME PAPERS -o FILE [--family social_cognitive | --trait DIMENSION POLE]
    humanllm draft checklist PATTERN_ID [-o FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..compiler import model as m
from ..compiler.loader import UsageError

USAGE = ("humanllm draft NAME PAPERS -o FILE [--family social_cognitive | --trait DIMENSION POLE] [options]\n"
         "       humanllm draft checklist PATTERN_ID [-o FILE] [options]")


def add_commands(sub) -> None:
    p = sub.add_parser(
        "draft", help="draft a pattern from its literature, or a fresh checklist for a pattern", usage=USAGE,
        description="NAME PAPERS: read the papers (PDF, .txt, .md, with an optional BibTeX, RIS or CSL-JSON "
                    "bibliography), take notes per paper, and synthesise a draft pattern into FILE, with the notes "
                    "each sentence rests on in FILE's .trace.json; notes are kept in FILE's .work folder, so a "
                    "re-run resumes. `checklist PATTERN_ID`: a fresh 12-15 item checklist for a pattern of the "
                    "library, as a diff of its spec file (or the whole file with -o). See docs/draft.md.")
    p.add_argument("words", nargs="+", metavar="NAME PAPERS | checklist PATTERN_ID", help=argparse.SUPPRESS)
    p.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="the draft (.hpat) to write; with `checklist`, the updated spec file (default: a diff on stdout)")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--family", choices=["social_cognitive"], help="a social-cognitive pattern (the default)")
    kind.add_argument("--trait", nargs=2, metavar=("DIMENSION", "POLE"),
                      help=f"a trait marker: DIMENSION one of {', '.join(m.DIMENSIONS)}; POLE positive or negative")
    p.add_argument("--specs", action="append", type=Path, metavar="PATH",
                   help="the library to check against (default: specs)")
    lm = p.add_argument_group("language models")
    lm.add_argument("--lm", default="offline", metavar="offline|hf:PATH|MODEL",
                    help="the LM (default: offline, the embedded deterministic engine)")
    lm.add_argument("--api-base", metavar="URL", help="base URL of an OpenAI-compatible server")
    lm.add_argument("--seed", type=int, default=0)
    limits = p.add_argument_group("throughput and limits")
    limits.add_argument("--concurrency", type=int, default=8, metavar="N", help="LM calls in flight at once")
    limits.add_argument("--rpm", type=float, metavar="N", help="at most N requests per minute")
    limits.add_argument("--tpm", type=float, metavar="N", help="at most about N tokens per minute")
    limits.add_argument("--timeout", type=float, default=120.0, metavar="S", help="seconds before a call is resent")
    limits.add_argument("--max-attempts", type=int, default=3, metavar="K",
                        help="tries per answer, retrying an unusable one with the problems as feedback")
    limits.add_argument("--chunk-tokens", type=int, default=3000, metavar="T",
                        help="about how many tokens of a paper one call reads (default 3000)")
    run = p.add_argument_group("running")
    run.add_argument("--keep-going", action="store_true",
                     help="draft from the papers that could be read even if others could not (exit code still 1)")
    run.add_argument("--no-cache", action="store_true", help="do not cache LM answers")
    run.add_argument("--cache-dir", type=Path, metavar="DIR", help="`checklist`: where to keep the LM's answers")
    run.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    p.set_defaults(func=cmd_draft)


def cmd_draft(args) -> int:
    words = args.words
    if words[0] == "checklist" and len(words) == 2 and not Path(words[1]).is_dir():
        return cmd_checklist(args, words[1])
    if len(words) != 2:
        raise UsageError(f"expected NAME PAPERS or `checklist PATTERN_ID`, got {len(words)} words; usage:\n  {USAGE}")
    if args.output is None:
        raise UsageError("-o FILE is required: the draft's file, for example -o hot_hand_fallacy.hpat")
    return _draft(args, *words)


def _limits(args):
    from ..runtime.calls import Limits

    try:
        return Limits(concurrency=args.concurrency, rpm=args.rpm, tpm=args.tpm, timeout=args.timeout)
    except ValueError as exc:
        raise UsageError(f"bad limit: {exc}") from None


def _target(args, name: str):
    from .notes import Target

    if args.trait:
        dimension, pole = args.trait
        if dimension not in m.DIMENSIONS or pole not in m.POLES:
            raise UsageError(f"--trait {dimension} {pole}: DIMENSION is one of {', '.join(m.DIMENSIONS)} and POLE "
                             f"one of {', '.join(m.POLES)}")
        return Target(name, "trait", dimension, pole)
    return Target(name)


def _draft(args, name: str, papers: str) -> int:
    from ..cli.common import EXIT_FAILURES, EXIT_OK, EXIT_SPEC, progress_mode
    from .run import DraftOptions, draft

    if args.chunk_tokens < 200 or args.max_attempts < 1:
        raise UsageError("--chunk-tokens must be at least 200 and --max-attempts at least 1")
    options = DraftOptions(name=name, papers=Path(papers), out=args.output, target=_target(args, name),
                           specs=tuple(args.specs or [Path("specs")]), lm=args.lm, api_base=args.api_base,
                           limits=_limits(args), max_attempts=args.max_attempts,
                           chunk_chars=args.chunk_tokens * 4,
                           cache=not args.no_cache, progress=progress_mode(args.no_progress),
                           keep_going=args.keep_going, seed=args.seed)
    result = draft(options)
    for problem in result.problems:
        print(f"humanllm draft: error: {problem}", file=sys.stderr)
    for failure in result.failures:
        print(f"humanllm draft: failed: {failure}", file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    for d in result.diagnostics:
        print(d.render(), file=sys.stderr)
    u = result.usage
    print(f"{u['calls']} LM calls ({u['cached']} from the cache), {u['prompt_tokens']:,}+{u['completion_tokens']:,} "
          f"tokens" + (f", ${u['cost']:.2f}" if u["cost"] else "") + f"; notes of {result.noted} of {result.papers} "
          f"papers in {result.work}", file=sys.stderr)
    if result.draft is None:
        print(f"no draft written: fix what is listed above and run the same command again (finished notes are "
              f"kept{'' if options.keep_going else '; --keep-going drafts from the papers that could be read'})",
              file=sys.stderr)
    else:
        print(f"wrote {result.draft} (resting on {result.cited} of {result.papers} papers) and its trace "
              f"{result.trace}")
    if result.problems or any(d.severity == "error" for d in result.diagnostics):
        return EXIT_SPEC
    return EXIT_FAILURES if result.failures or result.draft is None else EXIT_OK


def cmd_checklist(args, pattern_id: str) -> int:
    from ..cli.common import EXIT_FAILURES, EXIT_OK, EXIT_SPEC
    from ..runtime.store import write_text
    from .checklist import fresh_checklist

    result = fresh_checklist(pattern_id, tuple(args.specs or [Path("specs")]), args.lm, args.api_base,
                             _limits(args), args.max_attempts, args.seed, args.cache_dir)
    for d in result.diagnostics:
        print(d.render(), file=sys.stderr)
    u = result.usage
    print(f"{u['calls']} LM calls, {u['prompt_tokens']:,}+{u['completion_tokens']:,} tokens", file=sys.stderr)
    if result.new is None:
        print(f"humanllm draft: failed: no valid checklist for `{pattern_id}`: {'; '.join(result.problems)}",
              file=sys.stderr)
        return EXIT_FAILURES
    if args.output is not None:
        write_text(args.output, result.new)
        print(f"wrote {args.output}: {result.path} with a fresh checklist for `{pattern_id}`")
    else:
        sys.stdout.write(result.diff())
    return EXIT_SPEC if any(d.severity == "error" for d in result.diagnostics) else EXIT_OK
