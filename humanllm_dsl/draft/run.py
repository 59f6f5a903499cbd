"""`humanllm draft NAME PAPERS -o FILE`: the whole construction stage in one run.

Papers are read and matched to the bibliography, chunked, and noted per chunk and per paper
(resumable, in `<out stem>.work/` beside the output); the notes are synthesised into a draft,
which is formatted, checked together with the library, and written with its trace. A bad input
is reported with its file and the run keeps every note it finished; the draft is written only
when every paper was read (or with `keep_going`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import attrs

from ..compiler.checker import Checker
from ..compiler.loader import UsageError, check_paths, display
from ..runtime.calls import CallPolicy, Limits, UsageMeter
from ..runtime.progress import Progress
from ..runtime.store import JsonlStore, read_json_object, write_json, write_text
from ..syntax.diagnostics import Diagnostic, HpatError
from ..syntax.parser import parse_text
from .ask import Asker
from .chunks import CHUNK_CHARS, chunk_paper
from .collect import DraftInputError, collect
from .layout import trace_path, work_path
from .notes import NoteTaker, Target
from .papers import slug
from .render import hpat_text, missing_metadata, trace
from .synthesis import Synthesizer, numbered_notes

DRAFT_HEADER = "# Drafted by `humanllm draft`"


@attrs.frozen
class DraftOptions:
    name: str
    papers: Path
    out: Path
    target: Target
    specs: tuple[Path, ...] = (Path("specs"),)
    lm: str = "offline"
    api_base: str | None = None
    limits: Limits = Limits()
    max_attempts: int = 3
    chunk_chars: int = CHUNK_CHARS
    cache: bool = True
    progress: str | None = "bar"
    keep_going: bool = False
    seed: int = 0


@attrs.frozen
class DraftResult:
    draft: Path | None
    trace: Path | None
    work: Path
    problems: tuple[str, ...]  # inputs that could not be used, each naming its file
    failures: tuple[str, ...]  # LM answers that stayed unusable
    notes: tuple[str, ...]  # things to review: missing metadata or mechanism kinds, skipped files
    diagnostics: tuple[Diagnostic, ...]  # `check` of the draft with the library
    usage: dict
    papers: int = 0
    noted: int = 0
    cited: int = 0


def pattern_id(name: str) -> str:
    """The id docs/writing-patterns.md gives a name; `_pattern` added if it is a keyword."""
    pid = slug(name)
    try:
        parse_text(f'pattern {pid} "x" {{}}\n', "<id>")
    except HpatError:
        pid = f"{pid}_pattern"
    return pid


def library_result(specs: tuple[Path, ...]):
    result = check_paths(specs)
    if result.library is None:
        first = result.errors[0] if result.errors else None
        raise UsageError(f"the library {', '.join(map(str, specs))} does not check cleanly"
                         + (f" ({first.file}:{first.line}: {first.message})" if first else "")
                         + "; run `humanllm check` on it first")
    return result


def draft(options: DraftOptions) -> DraftResult:
    pid = pattern_id(options.name)
    result = library_result(options.specs)
    lib = result.library
    if pid in lib.by_id:
        raise UsageError(f"the pattern id `{pid}` already exists in the library ({lib.by_id[pid].where}); choose "
                         f"another name, or run `humanllm draft checklist {pid}` for a fresh checklist")
    _refuse_foreign(options.out)
    work = work_path(options.out)
    try:
        found = collect(options.papers, ignore=(work,))
    except DraftInputError as exc:
        raise UsageError(str(exc)) from None
    papers = {p.id: p for p in found.papers}
    notes_to_review = [f"{path}: skipped (not a PDF, .txt, .md or bibliography file)" for path in found.skipped]
    meter = UsageMeter()
    asker = Asker(CallPolicy(options.limits), options.max_attempts)
    taker, synth_store, lm = _setup(options, work, meter, asker)
    chunked = {p.id: chunk_paper(p, options.chunk_chars) for p in found.papers}
    progress = Progress(("chunks", "papers"), {"chunks": sum(map(len, chunked.values())), "papers": len(papers)},
                        {"chunks": sum(taker.done_chunks(p, chunked[p.id]) for p in found.papers),
                         "papers": sum(1 for p in found.papers if taker.stored(p))}, mode=options.progress)
    taker.on_done = lambda stage: progress.advance(stage, meter, asker.policy.in_flight, asker.policy.transient_retries)
    noted: dict[str, list[dict]] = {}
    failures: list[str] = []
    draft_result = None
    try:
        with progress:
            noted = asyncio.run(_notes(taker, found.papers, lm))
        failures = [row["reason"] for pid_, row in sorted(taker.failures.items.items()) if pid_ not in noted]
        blocked = (found.problems or failures) and not options.keep_going
        if not blocked:
            draft_result = asyncio.run(_synthesise(asker, synth_store, list(lib.patterns), pid, options,
                                                   [p for p in found.papers if p.id in noted], noted, lm))
    finally:
        taker.close()
        synth_store.close()
        _add_usage(work, meter.as_dict())
    base = dict(work=work, problems=found.problems, failures=tuple(failures), usage=meter.as_dict(),
                papers=len(papers), noted=sum(1 for n in noted.values() if n))
    if draft_result is None:
        return DraftResult(None, None, notes=tuple(notes_to_review), diagnostics=(), **base)
    made, problems = draft_result
    if made is None:
        return DraftResult(None, None, notes=tuple(notes_to_review), diagnostics=(),
                           **base | {"failures": (*failures, *problems)})
    file_name = display(options.out)
    text = hpat_text(made, papers, trace_path(options.out).name, options.lm)
    diagnostics = _check(result.modules, text, file_name, pid)
    write_text(options.out, text)
    write_json(trace_path(options.out), trace(made, papers, text, file_name, options.lm))
    cited = made.cited_papers()
    notes_to_review += [f"{papers[c].path}: no {', '.join(missing_metadata(papers[c]))} found; its `source` line is "
                        f"left for you to write" for c in cited if missing_metadata(papers[c])]
    missing = [k for k in _expected_kinds(options.target) if k not in {m["kind"] for m in made.mechanisms}]
    if missing:
        notes_to_review.append(f"the notes support no {' or '.join(missing)} mechanism; add one only from the literature")
    return DraftResult(options.out, trace_path(options.out), notes=tuple(notes_to_review),
                       diagnostics=tuple(diagnostics), cited=len(cited), **base)


def _expected_kinds(target: Target) -> tuple[str, ...]:
    """The kinds docs/writing-patterns.md asks for in every pattern of the family."""
    return ("cognitive", "emotional", "behavioral") if target.family == "trait" else ("cognitive", "emotional")


def _refuse_foreign(out: Path) -> None:
    """Never overwrite a file that is not an earlier draft."""
    if out.is_dir():
        raise UsageError(f"-o {out}: is a folder; give the draft's file name (for example {out}/pattern.hpat)")
    if out.exists():
        try:
            head = out.read_text("utf-8")[:len(DRAFT_HEADER)]
        except (OSError, UnicodeDecodeError):
            head = ""
        if head != DRAFT_HEADER:
            raise UsageError(f"-o {out}: exists and is not a draft written by `humanllm draft`; choose another name")


def _setup(options: DraftOptions, work: Path, meter: UsageMeter, asker: Asker):
    from ..runtime.backends import OFFLINE, LMSpec, configure_cache, make_lm
    from ..runtime.pipeline import LMUnavailable

    try:
        lm = make_lm(LMSpec(model=options.lm, api_base=options.api_base), options.seed, cache=options.cache)
    except (ValueError, ImportError) as exc:
        raise LMUnavailable(f"`{options.lm}`: {exc}") from None
    lm.meter, lm.keep_history = meter, False
    offline = options.lm == OFFLINE
    if not offline:
        configure_cache(work / "cache", options.cache)
    taker = NoteTaker(options.target, work, asker, options.chunk_chars, durable=not offline)
    return taker, JsonlStore(work / "draft.jsonl", durable=not offline), lm


async def _notes(taker: NoteTaker, papers, lm) -> dict[str, list[dict]]:
    import dspy

    from ..runtime.adapter import FastChatAdapter

    with dspy.context(lm=lm, adapter=FastChatAdapter()):
        results = await asyncio.gather(*(taker.paper(p) for p in papers))
    return {p.id: notes for p, notes in zip(papers, results) if notes is not None}


async def _synthesise(asker, store, library, pid, options: DraftOptions, papers, noted, lm):
    import dspy

    from ..runtime.adapter import FastChatAdapter

    notes = numbered_notes(papers, noted)
    if not notes:
        return None, [f"the papers' notes say nothing about {options.name!r}; check that the papers are about it"]
    with dspy.context(lm=lm, adapter=FastChatAdapter()):
        return await Synthesizer(asker, store, library).draft(pid, options.target, notes)


def _check(modules, text: str, file_name: str, pid: str) -> list[Diagnostic]:
    """The draft's diagnostics when checked together with the library."""
    checker = Checker([*modules, parse_text(text, file_name)])
    checker.check()
    lines = text.split("\n")
    return [attrs.evolve(d, source_line=lines[d.line - 1]) if d.file == file_name and d.line <= len(lines) else d
            for d in checker.diagnostics if d.file == file_name or f"`{pid}`" in d.message]


def _add_usage(work: Path, run: dict) -> None:
    """Every run's calls and tokens, added up in `usage.json` of the work folder."""
    path = work / "usage.json"
    totals = read_json_object(path) if path.exists() else {}
    write_json(path, {k: totals.get(k, 0) + v for k, v in run.items()})
