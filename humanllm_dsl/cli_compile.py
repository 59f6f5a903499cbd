"""The `compile` command (and, as they land, the other commands of later stages)."""

from __future__ import annotations

import sys
from pathlib import Path

from .compiler.loader import check_paths

STAGE_CHOICES = ("plan", "scenarios", "conversations", "checklists", "export")


def add_commands(sub) -> None:
    p = sub.add_parser(
        "compile", help="compile specs into a dataset",
        description="Plan scenarios from the specs, run the DSPy programs (scenario, conversation, "
                    "checklist, variation) with the chosen LM, validate every output, and export the "
                    "dataset: records, splits, SFT files (ShareGPT and chat messages), a Hugging Face "
                    "DatasetDict, a manifest and a dataset card. Re-running the same command resumes.")
    p.add_argument("specs", nargs="+", metavar="SPECS", help="spec files or folders")
    p.add_argument("-o", "--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument("--dataset", help="which dataset to build (default: the one marked `default`)")
    p.add_argument("--scenarios", type=int, metavar="N", help="override the number of scenarios")
    p.add_argument("--seed", type=int, metavar="S", help="override the dataset's seed")
    p.add_argument("--lm", default="offline", metavar="offline|MODEL",
                   help="`offline` (the default: a deterministic engine built from the specs; no network, "
                        "labelled offline) or any model string dspy.LM accepts, e.g. openai/gpt-4o-mini")
    p.add_argument("--api-base", metavar="URL", help="base URL of an OpenAI-compatible server")
    p.add_argument("--stage", choices=STAGE_CHOICES, default="export", help="stop after this stage (default: export)")
    p.add_argument("--max-attempts", type=int, default=3, metavar="K",
                   help="tries per output before it goes to failures.jsonl (default 3)")
    p.add_argument("--max-tokens", type=int, metavar="T", help="split SFT samples into windows of about T tokens")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_compile)


def cmd_compile(args) -> int:
    from .cli import EXIT_SPEC, EXIT_USAGE, print_diagnostics
    from .compiler.plan import PlanError
    from .runtime.compile import CompileOptions, compile_dataset

    result = check_paths(args.specs)
    if result.errors:
        print_diagnostics(result)
        return EXIT_SPEC
    lib = result.library
    if args.scenarios is not None and args.scenarios < 1:
        print("humanllm compile: error: --scenarios must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        lib.dataset(args.dataset)
    except KeyError as exc:
        print(f"humanllm compile: error: {exc.args[0]}", file=sys.stderr)
        return EXIT_USAGE
    options = CompileOptions(out=args.out, dataset=args.dataset, scenarios=args.scenarios, seed=args.seed,
                             lm=args.lm, api_base=args.api_base, stage=args.stage, max_attempts=args.max_attempts,
                             max_tokens=args.max_tokens, progress=not args.no_progress and sys.stderr.isatty())
    try:
        manifest = compile_dataset(lib, options)
    except PlanError as exc:
        print(f"humanllm compile: error: the dataset cannot be planned: {exc}", file=sys.stderr)
        return EXIT_SPEC
    t = manifest.pop("timings")
    print(f"{manifest['dataset']}: {manifest['scenarios']} scenarios planned "
          f"({', '.join(f'{k} {v}' for k, v in manifest['planned_splits'].items())}); "
          f"held out: {', '.join(manifest['held_out']) or 'none'}")
    if args.stage != "plan":
        print(f"LM `{manifest['lm']}`: {manifest['lm_calls']} calls, {manifest['prompt_tokens']} prompt + "
              f"{manifest['completion_tokens']} completion tokens, {manifest.get('retries', 0)} retries, "
              f"{manifest['failures']} failed scenarios (see failures.jsonl)")
    if args.stage == "export":
        print(f"wrote {manifest['records']} records and {sum(manifest['sft_samples'].values())} SFT samples to {args.out}/")
    print("time: " + ", ".join(f"{k} {v:.1f}s" for k, v in t.items()))
    return 0
