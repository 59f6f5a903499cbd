"""`humanllm eval` end to end: rollouts -> judge runs -> scores -> results.json and report.

Every finished piece of work is appended to a JSON-lines file in the output folder as soon as it
is done, so an interrupted evaluation loses at most the calls in flight, and re-running the same
command resumes (finished rollouts and verdicts cost no LM call; failed ones are tried again):

    DIR/run.json            what is being evaluated (a re-run must match it)
    DIR/rollouts.jsonl      one rollout per sample (scenario x target character)
    DIR/verdicts.jsonl      one checklist verdict set per sample and judge run
    DIR/holistic.jsonl      one holistic rating per sample and judge run
    DIR/failures.jsonl      rollouts that could not be produced
    DIR/results.json        the scores (written at the end of every run)
    DIR/scores.csv          per-sample judge scores in `humanllm align` form
    DIR/report.html, DIR/plots/*.png
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import attrs

from ..runtime.executors import EXECUTORS
from ..runtime.stages import OFFLINE
from ..runtime.store import JsonFileError, JsonlStore, read_json_object, write_json
from . import data as D
from .results import build_results, examples, write_scores_csv
from .work import HOLISTIC, JUDGE, ROLLOUT, JudgeJob


class EvalUsageError(Exception):
    """A command-line choice that cannot work (exit 2)."""


@attrs.frozen
class EvalOptions:
    build: Path
    out: Path
    model: str
    judge: str = OFFLINE
    split: str = "all"
    runs: int = 3
    api_base: str | None = None
    judge_api_base: str | None = None
    seed: int = 0
    max_attempts: int = 3
    max_tokens: int | None = 300
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    timeout: float = 120.0
    max_retries: int = 6
    limit: int | None = None
    holistic: bool = True
    programs: tuple[Path, ...] = ()
    progress: str | None = None  # "bar", "log" (a line every 30 s) or None
    report: bool = True
    examples: int = 3
    cache: bool = True
    cache_dir: Path | None = None  # default: OUT/cache
    ipe_average: str = "pooled"  # or "pattern": see scores.sample_score
    executor: str = "local"  # or "ray": rollouts and judge runs on Ray workers (ray_eval.py)
    ray_address: str | None = None  # default: a local Ray instance
    ray_workers: int | None = None  # Ray workers (None: 1)

    def limits(self):
        from ..runtime.calls import Limits

        return Limits(concurrency=self.concurrency, rpm=self.rpm, tpm=self.tpm, timeout=self.timeout,
                      max_retries=self.max_retries)


def _identity(o: EvalOptions) -> dict:
    return {"build": str(o.build.resolve()), "model": o.model, "judge": o.judge, "seed": o.seed,
            "max_tokens": o.max_tokens, "programs": [str(p.resolve()) for p in o.programs]}


def check_identity(o: EvalOptions) -> None:
    """Refuse to mix two evaluations in one folder (a re-run must evaluate the same thing).

    Args:
        o: the options.
    """
    path = o.out / "run.json"
    mine = _identity(o)
    if path.exists():
        try:
            theirs = read_json_object(path)
        except JsonFileError as exc:
            raise D.EvalDataError(f"{exc}; delete {o.out} to start over") from None
        differ = [k for k in mine if theirs.get(k) != mine[k]]
        if differ:
            raise EvalUsageError(f"{o.out} holds another evaluation ({', '.join(f'{k}: {theirs.get(k)!r}' for k in differ)}); "
                                 f"use another -o folder, or delete it to start over")
    write_json(path, mine)


def load_judges(paths: Iterable[Path]) -> dict:
    """The judge programs: defaults, replaced by saved ones (`--program PATH`).

    Args:
        paths: saved-program folders holding a `judge` or `holistic` program.
    """
    from ..compiler import programs as P
    from ..compiler.saved_programs import SavedProgramError, load_program

    judges = {"judge": P.ChecklistJudge(), "holistic": P.HolisticJudge()}
    for path in paths:
        try:
            name, module = load_program(path, expect=("judge", "holistic"))
        except SavedProgramError as exc:
            raise EvalUsageError(f"--program: {exc}") from None
        judges[name] = module
    return judges


def no_samples_message(build: Path, splits: tuple[str, ...]) -> str:
    """Why an evaluation has nothing to judge, and how to get samples."""
    counts = []
    for split in splits:
        path = build / "splits" / f"{split}.jsonl"
        records = len(D.read_jsonl(path)) if path.exists() else 0
        counts.append(f"{split}: " + ("no file" if not path.exists() else "no records" if not records
                                      else f"{records} records, no character carrying a pattern"))
    return (f"{build}: {'the chosen splits hold' if len(splits) > 1 else 'the chosen split holds'} no samples ({'; '.join(counts)}); "
            "compile a dataset whose evaluation splits get scenarios (`split { id_eval N ood_eval N }` in the "
            "dataset, or more `--scenarios`), or choose another --split")


def evaluate(o: EvalOptions) -> dict:
    """Run (or resume) an evaluation; write everything into `o.out`; return results.json's content.

    Args:
        o: the options (see `humanllm eval --help`).
    """
    from ..runtime.progress import Progress
    from .scores import IPE_AVERAGES

    if o.runs < 1:
        raise EvalUsageError("--runs must be at least 1")
    if o.ipe_average not in IPE_AVERAGES:
        raise EvalUsageError(f"--ipe-average must be one of {', '.join(IPE_AVERAGES)}, not `{o.ipe_average}`")
    try:
        o.limits()
    except ValueError as exc:
        raise EvalUsageError(str(exc)) from None
    _check_executor(o)
    splits = D.splits_for(o.split)
    patterns = D.load_patterns(o.build)
    samples = D.samples_of(D.load_records(o.build, splits), patterns)
    if not samples:
        raise D.EvalDataError(no_samples_message(o.build, splits))
    if o.limit is not None:
        samples = samples[:o.limit]
    judges = load_judges(o.programs)
    o.out.mkdir(parents=True, exist_ok=True)
    check_identity(o)
    started = time.perf_counter()
    stores = {name: JsonlStore(o.out / f"{name}.jsonl") for name in ("rollouts", "verdicts", "holistic", "failures")}
    executor = None
    try:
        executor = _executor(o, judges)
        kinds = ("rollouts", "judge") + (("holistic",) if o.holistic else ())
        totals = {"rollouts": len(samples), "judge": len(samples) * o.runs, "holistic": len(samples) * o.runs}
        with Progress(kinds, {k: totals[k] for k in kinds}, _done(o, samples, stores, kinds), mode=o.progress) as bar:
            def advance(stage: str) -> None:
                usage = executor.usage()
                bar.advance(stage, usage, usage.in_flight, usage.transient_retries)

            _rollouts(samples, stores, executor, advance)
            _judge_all(o, samples, stores, executor, advance)
        usage = executor.usage().as_dict()
    finally:
        if executor is not None:
            executor.close()
        for store in stores.values():
            store.close()
    results = build_results(o, splits, samples, patterns, stores, time.perf_counter() - started, usage)
    write_json(o.out / "results.json", results)
    write_scores_csv(o.out / "scores.csv", samples, stores, o.runs, o.ipe_average)
    if o.report:
        from .report import write_report
        write_report(o.out, results, examples(samples, stores, o.examples))
    return results


def _check_executor(o: EvalOptions) -> None:
    """Refuse executor options that cannot work, before any output is written (Ray missing too)."""
    if o.executor not in EXECUTORS:
        raise EvalUsageError(f"--executor must be {' or '.join(EXECUTORS)}, not `{o.executor}`")
    for flag, value in (("--ray-address", o.ray_address), ("--ray-workers", o.ray_workers)):
        if value is not None and o.executor != "ray":
            raise EvalUsageError(f"{flag} needs --executor ray")
    if o.ray_workers is not None and o.ray_workers < 1:
        raise EvalUsageError("--ray-workers must be at least 1")
    if o.executor == "ray":
        from ..runtime.ray_executor import import_ray

        import_ray()


def _executor(o: EvalOptions, judges: dict):
    """Where the rollouts and judge runs happen: this process, or Ray workers (`--executor ray`)."""
    if o.executor == "ray":
        from .ray_eval import RayExecutor

        return RayExecutor(o, judges)
    from .work import LocalExecutor

    return LocalExecutor(o, judges)


def _done(o, samples, stores, kinds) -> dict[str, int]:
    """What earlier runs finished, per progress stage."""
    done = {"rollouts": sum(s.id in stores["rollouts"] for s in samples)}
    for kind, store in (("judge", "verdicts"), ("holistic", "holistic")):
        done[kind] = sum((stores[store].get(f"{s.id}#{r}") or {}).get("status") == "ok"
                         for r in range(1, o.runs + 1) for s in samples)
    return {k: done[k] for k in kinds}


def _rollouts(samples, stores, executor, advance) -> None:
    store, failures = stores["rollouts"], stores["failures"]

    def done(result):
        sample_id, row, reason = result
        if row is None:
            failures.append({"id": f"rollout:{sample_id}", "stage": "rollout", "sample": sample_id, "reason": reason})
        else:
            store.append(row)
        advance("rollouts" if row is not None else "failures")

    executor.map(ROLLOUT, [s for s in samples if s.id not in store], done)


def _judge_all(o, samples, stores, executor, advance) -> None:
    rollouts = stores["rollouts"]
    ready = [s for s in samples if s.id in rollouts]
    kinds = [("verdicts", JUDGE)] + ([("holistic", HOLISTIC)] if o.holistic else [])
    for store_name, kind in kinds:
        store = stores[store_name]
        jobs = [JudgeJob(kind, s, r, rollouts.get(s.id)["turns"]) for r in range(1, o.runs + 1) for s in ready
                if (store.get(f"{s.id}#{r}") or {}).get("status") != "ok"]

        def done(row, store=store, kind=kind):
            store.append(row)
            advance(kind if row["status"] == "ok" else "failures")

        executor.map(kind, jobs, done)
