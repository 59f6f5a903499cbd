"""The `eval`, `align` and `optimize` commands. Heavy imports happen inside the command functions."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..compiler.loader import UsageError
from ..compiler.model import TRAIN_SPLIT
from ..runtime.stages import JUDGE_PROGRAMS, OFFLINE
from ..trackers import TRACKERS, flat_metrics, log_metrics, require
from .common import EXIT_OK, add_specs_option, progress_mode, spec_paths, use_stdlib
from .executor import add_executor_options

EVAL_EPILOG = """\
MODEL and --judge take `offline` (the deterministic engine: placeholder numbers, no network),
any model string dspy.LM accepts (e.g. openai/gpt-4o-mini; keys from the environment), or
`hf:PATH` (a local transformers model). MODEL may also be `reference`: judge the build's own
conversations instead of a model's rollouts.

Writes into DIR: results.json (IPE, MPD: mean and std over runs; holistic scores; breakdowns per
split, pattern, family and interaction type), rollouts.jsonl, verdicts.jsonl and holistic.jsonl
(appended as they finish: re-running the same command resumes), scores.csv (per-sample scores
for `humanllm align --judge`), report.html and plots/, and cache/ (LM answers; --no-cache,
--cache-dir). LM calls go through the policy `humanllm compile` uses: --concurrency, --rpm, --tpm,
--timeout; rate limits, server errors, timeouts and replies without an answer are resent with
backoff (honouring Retry-After) and never count as a bad answer. See docs/evaluation.md.
Exit codes: 0 ok, 1 bad input data (also: the chosen splits hold no samples), 2 usage error."""

ALIGN_EPILOG = """\
Both CSV files have a header row with the columns sample_id,metric,score (other columns are
ignored); rows are joined on (sample_id, metric). `humanllm eval` writes scores.csv in this form.
For each metric: n, Pearson r with a bootstrap 95% CI (2000 resamples, seed 0), Spearman rho,
the mean human and mean judge scores, and their gap (human - judge)."""

OPTIMIZE_EPILOG = """\
Targets:
  judge         ChecklistJudge against human ratings (--human CSV, metrics IPE/MPD); metric:
                agreement 1 - |judge - human| / 200 per (sample, metric)
  holistic      HolisticJudge against human ratings (metrics anthropomorphism/fidelity);
                metric: 1 - |judge - human| / 100
  conversation  ConversationSynthesis against the judge; metric: half format validity (the
                compiler's conversation checks), half the judge's checklist score mapped to [0, 1]
The optimised program is saved to -o DIR (meta.json + program.json); load it with
`humanllm eval --program DIR` (judge, holistic) or `humanllm compile --program DIR`."""


def add_commands(sub) -> None:
    from ..evaluate.data import SPLIT_CHOICES  # light: names only
    from ..evaluate.scores import IPE_AVERAGES

    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "eval", help="evaluate a model's role-play with the checklist judge (IPE / MPD)", formatter_class=fmt,
        description="Let MODEL play every target character (a character carrying patterns) of the evaluation "
                    "splits of BUILD_DIR, from the SFT system prompt and the other characters' reference turns; "
                    "judge each performance against the pattern-level checklists of the character's patterns "
                    "(IPE) and its scenario-level checklist (MPD), every item +1 / 0 / -1 with quoted evidence, "
                    "in K judge runs; rate it holistically too; write scores, verdicts and a report.",
        epilog=EVAL_EPILOG)
    p.add_argument("build", type=Path, metavar="BUILD_DIR", help="a folder written by `humanllm compile`")
    p.add_argument("--model", required=True, metavar="MODEL", help="the model to evaluate (see below)")
    p.add_argument("--judge", default=OFFLINE, metavar="MODEL",
                   help="the judge model (default: offline). The paper's judge is a small strong model "
                        "different from the evaluated one")
    p.add_argument("--split", default="all", choices=SPLIT_CHOICES,
                   help="which split to evaluate (default all: id_eval, ood_eval and mixed_eval)")
    p.add_argument("--runs", type=int, default=3, metavar="K", help="judge runs, for mean and std (default 3)")
    p.add_argument("-o", "--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument("--api-base", metavar="URL", help="base URL of an OpenAI-compatible server for MODEL")
    p.add_argument("--judge-api-base", metavar="URL", help="base URL of an OpenAI-compatible server for the judge")
    p.add_argument("--program", action="append", type=Path, default=[], metavar="PATH",
                   help="a saved judge or holistic program (from `humanllm optimize`) to use instead of the "
                        "default; repeatable")
    p.add_argument("--seed", type=int, default=0, help="seed of the offline engine and of rollout ids (default 0)")
    p.add_argument("--max-attempts", type=int, default=3, metavar="N",
                   help="judge tries per verdict set before it is recorded as failed (default 3)")
    p.add_argument("--max-tokens", type=int, default=300, metavar="T", help="cap on each generated turn (default 300)")
    add_call_options(p)
    where = p.add_argument_group("where rollouts and judge runs happen")
    add_executor_options(where, local="this process, --concurrency calls at once", workers="--ray-workers")
    where.add_argument("--ray-workers", type=int, metavar="N",
                       help="Ray workers for --executor ray (default 1); --concurrency, --rpm and --tpm are shared "
                            "out among them")
    p.add_argument("--ipe-average", default="pooled", choices=IPE_AVERAGES,
                   help="how a character's IPE averages its patterns' items: pooled (all items in one mean, "
                        "the default) or pattern (the mean of each pattern's item mean); in results.json")
    p.add_argument("--limit", type=int, metavar="N", help="evaluate only the first N samples (a quick look)")
    p.add_argument("--examples", type=int, default=3, metavar="N", help="example transcripts in the report (default 3)")
    p.add_argument("--no-holistic", action="store_true", help="skip the holistic judge")
    p.add_argument("--no-report", action="store_true", help="skip report.html and the plots")
    p.add_argument("--report-to", default="none", choices=TRACKERS,
                   help="also log the results' numbers to an experiment tracker (tensorboard: under DIR/tensorboard; "
                        "default none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_eval, out_kind="eval")  # cli.main claims -o (runtime/outdir.py)

    p = sub.add_parser(
        "align", help="agreement between human and judge scores", formatter_class=fmt,
        description="Join human and judge scores per (sample_id, metric) and report, per metric, how well "
                    "the judge agrees with people.", epilog=ALIGN_EPILOG)
    p.add_argument("--human", required=True, type=Path, metavar="HUMAN.csv", help="human scores")
    p.add_argument("--judge", required=True, type=Path, metavar="JUDGE.csv", help="judge scores")
    p.add_argument("--json", action="store_true", help="print a JSON object keyed by metric instead of a table")
    p.add_argument("--resamples", type=int, default=2000, metavar="B", help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--verdicts", type=Path, metavar="VERDICTS.jsonl",
                   help="the eval folder's verdicts.jsonl: adds item-level agreement (judge vs each rater and vs "
                        "the rater majority) and inter-rater Krippendorff's alpha, from a human file with item rows")
    p.add_argument("--report", type=Path, metavar="FILE.json",
                   help="also write the whole report as JSON (`humanllm view` shows EVALDIR/alignment.json)")
    p.set_defaults(func=cmd_align)

    from ..evaluate.optimize import OPTIMIZERS, TARGETS  # light: registries of names, no dspy import
    p = sub.add_parser(
        "optimize", help="optimise the judge or a generation program with a DSPy optimiser", formatter_class=fmt,
        description="Optimise a program with a DSPy optimiser and save it.", epilog=OPTIMIZE_EPILOG)
    p.add_argument("target", choices=TARGETS, help="which program to optimise")
    p.add_argument("build", type=Path, metavar="BUILD_DIR", help="a folder written by `humanllm compile`")
    p.add_argument("-o", "--out", required=True, type=Path, metavar="DIR", help="where to save the optimised program")
    p.add_argument("--optimizer", default="bootstrap", choices=OPTIMIZERS,
                   help="bootstrap (BootstrapFewShot, the default), mipro (MIPROv2, needs optuna) or gepa (GEPA)")
    p.add_argument("--human", type=Path, metavar="HUMAN.csv",
                   help="human ratings (sample_id,metric,score); needed for judge and holistic")
    p.add_argument("--rollouts", type=Path, metavar="EVAL_DIR",
                   help="an eval folder whose rollouts the human ratings are about (default: the build's own "
                        "conversations, sample ids RECORD_ID/CHARACTER)")
    p.add_argument("--lm", default=OFFLINE, metavar="MODEL", help="the LM running the program (default offline)")
    p.add_argument("--judge", default=OFFLINE, metavar="MODEL", help="the judge scoring `conversation` (default offline)")
    p.add_argument("--reflection-lm", metavar="MODEL", help="GEPA's reflection LM / MIPROv2's prompt model (default: --lm)")
    p.add_argument("--api-base", metavar="URL", help="base URL of an OpenAI-compatible server")
    add_specs_option(p, "conversation target: pattern definitions")
    p.add_argument("--split", default=TRAIN_SPLIT, choices=SPLIT_CHOICES,
                   help="scenarios to optimise on (conversation target; default train)")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N training examples (default 20)")
    p.add_argument("--val-fraction", type=float, default=0.25, metavar="F",
                   help="share of examples held out to score before and after (default 0.25)")
    p.add_argument("--max-demos", type=int, default=4, metavar="N", help="few-shot demos to keep (default 4)")
    p.add_argument("--budget", default="light", choices=["light", "medium", "heavy"],
                   help="MIPROv2 / GEPA search budget (default light)")
    p.add_argument("--seed", type=int, default=0)
    add_call_options(p)
    p.set_defaults(func=cmd_optimize, out_kind="program")


def add_call_options(p) -> None:
    """The LM-call options, named and meant as in `humanllm compile`."""
    calls = p.add_argument_group("LM calls")
    calls.add_argument("--concurrency", "--workers", dest="concurrency", type=int, default=8, metavar="N",
                       help="LM calls in flight at once (default 8)")
    calls.add_argument("--rpm", type=float, metavar="N", help="at most N requests per minute")
    calls.add_argument("--tpm", type=float, metavar="N", help="at most about N tokens per minute")
    calls.add_argument("--timeout", type=float, default=120.0, metavar="S",
                       help="seconds before a call is abandoned and resent (default 120)")
    calls.add_argument("--cache-dir", type=Path, metavar="DIR", help="where LM answers are cached (default: OUT/cache)")
    calls.add_argument("--no-cache", action="store_true", help="do not cache LM answers (ask the model afresh)")


def check_call_options(args) -> None:
    """Raise UsageError if an LM-call option is out of range."""
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    for flag in ("rpm", "tpm", "timeout"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise UsageError(f"--{flag} must be positive")


def cmd_eval(args) -> int:
    from ..evaluate.run import EvalOptions, evaluate

    for flag, value, low in (("--runs", args.runs, 1), ("--max-attempts", args.max_attempts, 1),
                             ("--max-tokens", args.max_tokens, 1), ("--examples", args.examples, 0)):
        if value < low:
            raise UsageError(f"{flag} must be at least {low}")
    check_call_options(args)
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if not args.build.is_dir():
        raise UsageError(f"{args.build}: no such folder")
    require(args.report_to)  # a missing tracker package fails before any LM call
    options = EvalOptions(
        build=args.build, out=args.out, model=args.model, judge=args.judge, split=args.split, runs=args.runs,
        api_base=args.api_base, judge_api_base=args.judge_api_base, seed=args.seed, max_attempts=args.max_attempts,
        max_tokens=args.max_tokens, concurrency=args.concurrency, rpm=args.rpm, tpm=args.tpm, timeout=args.timeout,
        limit=args.limit, holistic=not args.no_holistic, programs=tuple(args.program),
        progress=progress_mode(args.no_progress),
        report=not args.no_report, examples=args.examples, cache=not args.no_cache, cache_dir=args.cache_dir,
        ipe_average=args.ipe_average, executor=args.executor, ray_address=args.ray_address,
        ray_workers=args.ray_workers)
    results = evaluate(options)
    log_metrics(args.report_to, args.out, flat_metrics(results), run_name=f"eval {args.out.name}",
                config={"model": args.model, "judge": args.judge, "split": args.split, "runs": args.runs})
    print(summary_line(results))
    print(f"wrote {args.out}/results.json, verdicts.jsonl, scores.csv"
          + ("" if args.no_report else ", report.html"))
    return EXIT_OK


def _pm(entry) -> str:
    return "n/a" if not entry or entry.get("mean") is None else f"{entry['mean']:.1f} ± {entry['std']:.1f}"


def summary_line(results: dict) -> str:
    """The one-paragraph summary `humanllm eval` prints."""
    lines = [f"{results['model']} judged by {results['judge_model']} ({results['runs']} run{'s' * (results['runs'] != 1)}, "
             f"{results['samples']} samples): IPE {_pm(results['IPE'])}, MPD {_pm(results['MPD'])}"]
    if results.get("holistic"):
        h = results["holistic"]
        lines.append(f"holistic: anthropomorphism {_pm(h['anthropomorphism'])}, fidelity {_pm(h['fidelity'])}")
    j = results["judge"]
    lines.append(f"judge: {j['verdict_sets']} verdict sets, {j['failed']} failed, {j['retried']} retried; "
                 f"rollouts: {results['rollouts']['done']} done, {results['rollouts']['failed']} failed")
    if results["offline"]["model"] or results["offline"]["judge"]:
        lines.append("(offline engine involved: placeholder numbers)")
    return "\n".join(lines)


def cmd_align(args) -> int:
    from ..evaluate.align import alignment_report, format_report, write_report

    if args.resamples < 1:
        raise UsageError("--resamples must be at least 1")
    report = alignment_report(args.human, args.judge, args.verdicts, args.resamples, args.seed)
    if args.report is not None:
        write_report(report, args.report)
    if args.json:  # exactly the documented keys; the gap is mean_human - mean_judge
        keys = ("n", "pearson", "pearson_ci", "spearman", "mean_human", "mean_judge")
        json.dump({metric: {k: stats[k] for k in keys} for metric, stats in report["metrics"].items()}, sys.stdout,
                  indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print(format_report(report))
    return EXIT_OK


def cmd_optimize(args) -> int:
    from ..evaluate.optimize import OptimizeOptions, optimize

    if args.limit < 2:
        raise UsageError("--limit must be at least 2")
    if not 0 < args.val_fraction < 1:
        raise UsageError("--val-fraction must be between 0 and 1")
    check_call_options(args)
    if args.target in JUDGE_PROGRAMS and args.human is None:
        raise UsageError(f"the {args.target} target needs --human HUMAN.csv")
    options = OptimizeOptions(
        target=args.target, build=args.build, out=args.out, optimizer=args.optimizer, human=args.human,
        rollouts=args.rollouts, lm=args.lm, judge=args.judge, reflection_lm=args.reflection_lm,
        api_base=args.api_base, specs=tuple(spec_paths(args, what="--specs files or folders") if args.target == "conversation" else args.specs),
        stdlib=use_stdlib(args),
        split=args.split, limit=args.limit,
        val_fraction=args.val_fraction, max_demos=args.max_demos, budget=args.budget, seed=args.seed,
        concurrency=args.concurrency, rpm=args.rpm, tpm=args.tpm, timeout=args.timeout, cache=not args.no_cache,
        cache_dir=args.cache_dir)
    summary = optimize(options)
    print(f"{args.target} with {args.optimizer}: validation metric {summary['baseline']:.3f} -> "
          f"{summary['optimized']:.3f} on {summary['val']} examples ({summary['train']} to train)")
    print(f"saved to {args.out}/ (use it with --program {args.out})")
    return EXIT_OK
