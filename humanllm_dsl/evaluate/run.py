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
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import attrs

from ..runtime.stages import OFFLINE
from ..runtime.store import JsonFileError, JsonlStore, read_json_object, write_json
from . import data as D
from . import judge as J
from . import rollout as R
from .results import build_results, examples, write_scores_csv

REFERENCE = "reference"  # --model reference: judge the build's own conversations


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


def _parallel(fn: Callable, jobs: list, workers: int, done: Callable[[object], None], context: dict) -> None:
    """Run `fn(job)` for every job with `workers` threads under `dspy.context(**context)`;
    `done(result)` runs in this thread as each finishes (so stores are written from one thread)."""
    import dspy

    def wrapped(job):
        with dspy.context(**context):
            return fn(job)

    if workers <= 1:
        for job in jobs:
            done(wrapped(job))
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(wrapped, job) for job in jobs]
        for future in as_completed(futures):
            done(future.result())


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
    import dspy

    from ..runtime.adapter import FastChatAdapter
    from ..runtime.backends import configure_cache
    from ..runtime.calls import CallPolicy, UsageMeter
    from ..runtime.progress import Progress
    from .lms import make_lm
    from .scores import IPE_AVERAGES

    if o.runs < 1:
        raise EvalUsageError("--runs must be at least 1")
    if o.ipe_average not in IPE_AVERAGES:
        raise EvalUsageError(f"--ipe-average must be one of {', '.join(IPE_AVERAGES)}, not `{o.ipe_average}`")
    try:
        limits = o.limits()
    except ValueError as exc:
        raise EvalUsageError(str(exc)) from None
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
    adapter = FastChatAdapter()
    policy, meter = CallPolicy(limits), UsageMeter()
    if {o.model, o.judge} - {OFFLINE, REFERENCE}:
        configure_cache(o.cache_dir or o.out / "cache", o.cache)
    try:
        judge_lm = _through(make_lm(o.judge, o.seed, o.judge_api_base), policy, meter)
        model_lm = None if o.model == REFERENCE else (judge_lm if (o.model, o.api_base) == (o.judge, o.judge_api_base)
                                                      else _through(make_lm(o.model, o.seed, o.api_base, o.max_tokens),
                                                                    policy, meter))
        kinds = ("rollouts", "judge") + (("holistic",) if o.holistic else ())
        totals = {"rollouts": len(samples), "judge": len(samples) * o.runs, "holistic": len(samples) * o.runs}
        with Progress(kinds, {k: totals[k] for k in kinds}, _done(o, samples, stores, kinds), mode=o.progress) as bar:
            def advance(stage: str) -> None:
                bar.advance(stage, meter, policy.in_flight, policy.transient_retries)

            _rollouts(o, samples, stores, model_lm, advance, adapter)
            _judge_all(o, samples, stores, judges, judge_lm, advance, adapter)
    finally:
        policy.close()
        for store in stores.values():
            store.close()
    usage = {**meter.as_dict(), "transient_retries": policy.transient_retries}
    results = build_results(o, splits, samples, patterns, stores, time.perf_counter() - started, usage)
    write_json(o.out / "results.json", results)
    write_scores_csv(o.out / "scores.csv", samples, stores, o.runs, o.ipe_average)
    if o.report:
        from .report import write_report
        write_report(o.out, results, examples(samples, stores, o.examples))
    return results


def _through(lm, policy, meter):
    """The LM with every call going through the run's call policy and counted in its meter."""
    lm.policy, lm.meter = policy, meter
    return lm


def _done(o, samples, stores, kinds) -> dict[str, int]:
    """What earlier runs finished, per progress stage."""
    done = {"rollouts": sum(s.id in stores["rollouts"] for s in samples)}
    for kind, store in (("judge", "verdicts"), ("holistic", "holistic")):
        done[kind] = sum((stores[store].get(f"{s.id}#{r}") or {}).get("status") == "ok"
                         for r in range(1, o.runs + 1) for s in samples)
    return {k: done[k] for k in kinds}


def _rollouts(o, samples, stores, lm, advance, adapter) -> None:
    store, failures = stores["rollouts"], stores["failures"]
    todo = [s for s in samples if s.id not in store]
    errors = J.call_errors()

    def one(sample):
        if lm is None:
            return sample, R.reference_rollout(sample), None
        try:
            return sample, R.rollout(sample, lm, max_tokens=o.max_tokens, seed=o.seed), None
        except errors as exc:
            return sample, None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"

    def done(result):
        sample, row, reason = result
        if row is None:
            failures.append({"id": f"rollout:{sample.id}", "stage": "rollout", "sample": sample.id, "reason": reason})
        else:
            store.append(row)
        advance("rollouts" if row is not None else "failures")

    _parallel(one, todo, o.concurrency, done, {"lm": lm, "adapter": adapter} if lm else {})


def _judge_all(o, samples, stores, judges, lm, advance, adapter) -> None:
    rollouts = stores["rollouts"]
    ready = [s for s in samples if s.id in rollouts]
    kinds = [("verdicts", "judge")] + ([("holistic", "holistic")] if o.holistic else [])
    for store_name, label in kinds:
        store = stores[store_name]
        jobs = [(s, r) for r in range(1, o.runs + 1) for s in ready
                if (store.get(f"{s.id}#{r}") or {}).get("status") != "ok"]
        program = judges[label]

        def one(job, label=label, program=program):
            sample, run = job
            turns = rollouts.get(sample.id)["turns"]
            text = R.transcript(turns, sample.character)
            base = {"id": f"{sample.id}#{run}", "sample": sample.id, "run": run, "split": sample.split,
                    "character": sample.character, "record": sample.record_id}
            if label == "judge":
                out = J.judge_checklist(program, sample.character, text, [i.text for i in sample.items],
                                        base_id=f"{sample.id}/judge/run{run}", max_attempts=o.max_attempts)
                items = [{"kind": i.kind, "pattern": i.pattern, "text": i.text} for i in sample.items]
                extra = {"items": items}
                if out["status"] == "ok":
                    extra["grounded"] = list(J.evidence_grounded(out["verdicts"], text))
                return {**base, **out, **extra}
            out = J.judge_holistic(program, sample.character, J.profile_text(sample.record, sample.character), text,
                                   base_id=f"{sample.id}/holistic/run{run}", max_attempts=o.max_attempts)
            return {**base, **out}

        def done(row, store=store, label=label):
            store.append(row)
            advance(label if row["status"] == "ok" else "failures")

        _parallel(one, jobs, o.concurrency, done, {"lm": lm, "adapter": adapter})
