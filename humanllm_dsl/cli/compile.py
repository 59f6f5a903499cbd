"""The `compile` and `merge` commands."""

from __future__ import annotations

import sys
from pathlib import Path

from ..compiler.loader import UsageError, check_paths
from ..runtime.stages import EXPORT, PLAN, STAGES
from .common import (DISK_FULL, EXIT_FAILURES, EXIT_OK, EXIT_SPEC, InputError, add_stdlib_option, print_diagnostics,
                     progress_mode, spec_paths, use_stdlib)
from .executor import add_executor_options


def add_commands(sub) -> None:
    p = sub.add_parser(
        "compile", help="compile specs into a dataset",
        description="Plan scenarios from the specs, run the DSPy programs (scenario, conversation, "
                    "checklist, variation) with the chosen LM, validate every output, and export the "
                    "dataset: records, splits, SFT files (ShareGPT and chat messages), a Hugging Face "
                    "DatasetDict, a manifest and a dataset card. Each finished result is saved as it "
                    "lands: re-running the same command resumes, and finished work makes no LM call.",
        epilog="API keys are read from the environment only (for example OPENAI_API_KEY); they are never "
               "written to any output. Ctrl-C stops cleanly; run the same command again to resume.")
    p.add_argument("specs", nargs="*", metavar="SPECS", help="spec files or folders (they add to the standard library)")
    add_stdlib_option(p)
    p.add_argument("-o", "--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument("--dataset", help="which dataset to build (default: the one marked `default`)")
    p.add_argument("--scenarios", type=int, metavar="N", help="override the number of scenarios")
    p.add_argument("--seed", type=int, metavar="S", help="override the dataset's seed")
    lm = p.add_argument_group("language models")
    lm.add_argument("--lm", metavar="offline|hf:PATH|MODEL",
                    help="`offline` (the default: a deterministic engine built from the specs; no network, "
                         "labelled offline), `hf:PATH` (a local transformers model, batched on the best device), "
                         "or any model string dspy.LM accepts, e.g. openai/gpt-4o-mini")
    lm.add_argument("--api-base", metavar="URL", help="base URL of an OpenAI-compatible server (vLLM, Ollama, ...)")
    lm.add_argument("--lm-config", type=Path, metavar="FILE",
                    help="TOML file: an LM per program and the call limits (see README); options override it")
    lm.add_argument("--program", action="append", default=[], type=Path, metavar="PATH",
                    help="use an optimised program saved by `humanllm optimize` (repeatable)")
    limits = p.add_argument_group("throughput and limits")
    limits.add_argument("--concurrency", type=int, metavar="N", help="LM calls in flight at once (default 8)")
    limits.add_argument("--rpm", type=float, metavar="N", help="at most N requests per minute")
    limits.add_argument("--tpm", type=float, metavar="N", help="at most about N tokens per minute")
    limits.add_argument("--workers", type=int, default=1, metavar="N",
                        help="generate in N processes (default 1); helps only when one process's CPU is the limit, "
                             "e.g. a fast local server with many calls in flight")
    add_executor_options(limits, local="this machine, --workers processes", workers="--workers")
    limits.add_argument("--timeout", type=float, metavar="S", help="seconds before a call is abandoned and resent (default 120)")
    limits.add_argument("--max-attempts", type=int, default=3, metavar="K",
                        help="tries per output (with the problems as feedback) before it goes to failures.jsonl (default 3)")
    run = p.add_argument_group("running")
    run.add_argument("--stage", choices=STAGES, default=EXPORT, help=f"stop after this stage (default: {EXPORT})")
    run.add_argument("--shard", metavar="I/N", help="compile only share I of N of the plan (join shares with `humanllm merge`)")
    run.add_argument("--cache-dir", type=Path, metavar="DIR", help="where DSPy caches LM answers (default: DIR/cache)")
    run.add_argument("--no-cache", action="store_true", help="do not cache LM answers")
    run.add_argument("--max-tokens", type=int, metavar="T", help="split SFT samples into windows of about T tokens")
    run.add_argument("--vet", action="store_true",
                     help="screen each planned bundle with the BundleVetting program (the method's contradiction "
                          "screen) and redraw vetoed ones; verdicts go to plan.jsonl and are reused on a re-run")
    run.add_argument("--batch", action="store_true",
                     help="send each stage's LM calls as provider batch jobs (OpenAI Batch API: about half the price, "
                          "answers within 24 h); needs an `openai/MODEL` LM; a re-run resumes polling (docs/batch.md)")
    run.add_argument("--batch-size", type=int, metavar="N", help="at most N requests per batch (default 5000)")
    run.add_argument("--batch-wait", type=float, metavar="S",
                     help="seconds a ready request waits for more before a smaller batch goes (default 60)")
    run.add_argument("--batch-poll", type=float, metavar="S", help="seconds between looks at a batch (default 30)")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress display (by default a live bar, or a line every 30 s where stderr is not a terminal)")
    p.set_defaults(func=cmd_compile, out_kind=lambda args: "shard" if args.shard else "build")

    p = sub.add_parser(
        "merge", help="join compiled shards into one dataset",
        description="Join the output folders of `humanllm compile --shard I/N` runs (every share of one "
                    "command) into one output, identical to what a one-machine run writes.")
    p.add_argument("shards", nargs="+", type=Path, metavar="DIR", help="shard output folders")
    p.add_argument("-o", "--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.set_defaults(func=cmd_merge, out_kind=_merge_kind)


def _merge_kind(args) -> str:
    """A merged folder is what one machine's compile writes: a build. Never one of the shards."""
    if args.out.resolve() in {folder.resolve() for folder in args.shards}:
        raise UsageError(f"-o {args.out}: is one of the shards; merge into a new folder")
    return "build"


def cmd_compile(args) -> int:
    """Errors of planning, the LM, the work files and the workers go up to the table in `cli`."""
    from ..runtime.compile import compile_dataset

    result = check_paths(spec_paths(args), stdlib=use_stdlib(args))
    if result.errors:
        print_diagnostics(result)
        return EXIT_SPEC
    try:
        options = _options(args, result.library)
    except KeyError as exc:  # an unknown dataset
        raise UsageError(exc.args[0]) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    manifest = compile_dataset(result.library, options)
    _print_summary(manifest, args)
    missing = manifest["scenarios"] - manifest["records"] if args.stage == EXPORT and not args.shard else 0
    return EXIT_FAILURES if _print_failures(args.out, missing) else EXIT_OK


def _options(args, lib):
    """CompileOptions from the command line; bad values raise KeyError (dataset) or ValueError."""
    from ..runtime.compile import CompileOptions
    from ..runtime.lmconfig import load_config
    from ..runtime.shards import Shard

    for flag in ("scenarios", "concurrency", "max_attempts", "workers"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be at least 1")
    for flag in ("rpm", "tpm", "timeout"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise ValueError(f"--{flag} must be positive")
    lib.dataset(args.dataset)
    limits = {k: getattr(args, k) for k in ("concurrency", "rpm", "tpm", "timeout") if getattr(args, k) is not None}
    options = CompileOptions(
        out=args.out, dataset=args.dataset, scenarios=args.scenarios, seed=args.seed, lm=args.lm,
        api_base=args.api_base, lm_config=load_config(args.lm_config) if args.lm_config else None, limits=limits,
        stage=args.stage, max_attempts=args.max_attempts, max_tokens=args.max_tokens,
        progress=progress_mode(args.no_progress), cache=not args.no_cache,
        cache_dir=args.cache_dir, shard=Shard.parse(args.shard) if args.shard else None,
        programs=_load_programs(args.program), workers=args.workers, vet=args.vet,
        executor=args.executor, ray_address=args.ray_address)
    if args.ray_address and args.executor != "ray":
        raise ValueError("--ray-address needs --executor ray")
    if args.batch:
        options = _with_batch(options, args)
    options.config().check_keys()
    return options


def _with_batch(options, args):
    """`--batch` and its thresholds; ValueError for an LM or option it cannot run with."""
    import attrs

    from ..runtime.batch import BatchOptions, check_batchable

    if options.workers > 1 or options.executor != "local":
        raise ValueError("--batch runs in this process: leave out --workers and --executor")
    given = {k: getattr(args, f"batch_{k}") for k in ("size", "wait", "poll") if getattr(args, f"batch_{k}") is not None}
    if given.get("size", 1) < 1 or given.get("wait", 0) < 0 or given.get("poll", 1) <= 0:
        raise ValueError("--batch-size must be at least 1, --batch-wait at least 0, --batch-poll positive")
    check_batchable(options.config())
    return attrs.evolve(options, batch=BatchOptions(**given))


def _print_summary(manifest: dict, args) -> None:
    t = manifest.pop("timings")
    print(f"{manifest['dataset']}: {manifest['scenarios']} scenarios planned "
          f"({', '.join(f'{k} {v}' for k, v in manifest['planned_splits'].items())}); "
          f"held out: {', '.join(manifest['held_out']) or 'none'}")
    if "run" in manifest:
        r = manifest["run"]
        print(f"this run: {r['calls']} LM calls, {r['prompt_tokens']} prompt + {r['completion_tokens']} completion "
              f"tokens" + (f", ${r['cost']:.2f}" if r['cost'] else "") + f", {r['retries']} retries")
    if args.stage == PLAN:
        from ..runtime.composition import summary

        print(summary(manifest["composition"]) + " (the full figures are in manifest.json)")
    if "shard" in manifest:
        i, n = manifest["shard"]
        print(f"shard {i}/{n} done; join all {n} shards with `humanllm merge DIR... -o OUT`")
    elif args.stage != PLAN:
        cost = f", ${manifest['cost_usd']:.2f}" if manifest["cost_usd"] else ""
        print(f"dataset: {manifest['lm_calls']} LM calls{cost}, {manifest['failures']} failed scenarios "
              f"(see failures.jsonl); every run so far: see work/usage.json")
        if args.stage == EXPORT:
            print(f"wrote {manifest['records']} records and {sum(manifest['sft_samples'].values())} SFT samples "
                  f"to {args.out}/")
    print("time: " + ", ".join(f"{k} {v:.1f}s" for k, v in t.items()))


def _print_failures(out: Path, missing: int = 0, shown: int = 3) -> int:
    """Say on stderr what failed where (stage, count, the first reasons) and how to retry; return
    the number of failed scenarios (at least `missing`: planned scenarios without a record)."""
    from ..runtime.store import FAILURES, JsonlStore

    path = out / FAILURES
    rows = list(JsonlStore(path, repair=False).items.values()) if path.exists() else []
    count = max(len(rows), missing)
    if not count:
        return 0
    by_stage: dict[str, list[dict]] = {}
    for row in rows:
        by_stage.setdefault(row.get("stage", "?"), []).append(row)
    lines = [f"finished with failures: {count} planned scenario{'s' * (count != 1)} did not become records:"]
    for stage, failed in by_stage.items():
        lines.append(f"  {stage}: {len(failed)} failed, for example")
        lines += [f"    {row['id']}: {str(row.get('reason', ''))[:300]}" for row in failed[:shown]]
    lines.append(f"every failure and its reason: {path}\n"
                 f"run the same command again to retry them (finished work is kept and costs nothing)")
    print("\n".join(lines), file=sys.stderr)
    return len(rows)


def _load_programs(paths) -> dict:
    """name -> folder for each `--program PATH` (the last one given for a program wins); each is
    loaded once here, so a bad folder is reported before any work starts."""
    if not paths:
        return {}
    from ..compiler.saved_programs import load_program
    from ..runtime.stages import GENERATION_PROGRAMS

    return {load_program(path, expect=GENERATION_PROGRAMS)[0]: path for path in paths}


def cmd_merge(args) -> int:
    from ..runtime.shards import merge_shards

    try:
        manifest = merge_shards(args.shards, args.out)
    except (ValueError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            raise  # the top level says what to do
        raise InputError(str(exc)) from exc
    print(f"merged {len(args.shards)} shards: {manifest['records']} records, "
          f"{manifest['failures']} failed scenarios, written to {args.out}/")
    missing = manifest["scenarios"] - manifest["records"] if manifest["stage"] == EXPORT else 0
    return EXIT_FAILURES if _print_failures(args.out, missing) else EXIT_OK
