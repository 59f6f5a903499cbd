"""`humanllm compile`: specs -> plan -> programs -> records -> exports, in one output folder.

The output folder holds everything a run needs to resume: `plan.jsonl`, `work/<stage>.jsonl`
(finished results, one per line), `work/usage.json` (every call ever made for it) and the DSPy
cache (`cache/`, unless `--cache-dir` or `--no-cache`). A shard (`--shard i/n`, see shards.py)
stops before the export.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import attrs

from ..compiler import model as m
from ..compiler.plan import Plan, make_plan
from ..compiler.satisfy import pool
from .composition import composition
from . import export as ex
from .adapter import FastChatAdapter
from .backends import OFFLINE, configure_cache, make_lm
from .layout import Build
from .calls import CallPolicy, Limits
from .lmconfig import LMConfig
from .pipeline import (GENERATION_PROGRAMS, STAGES, WORK_STAGES, Generator, LMUnavailable, Programs, Usage,
                       work_stages)
from .progress import Progress
from .shards import Shard
from .store import JsonlStore, read_json_object, write_json, write_jsonl



class Interrupted(Exception):
    """Ctrl-C: in-flight calls were abandoned; everything finished is on disk."""


@attrs.frozen
class CompileOptions:
    out: Path
    dataset: str | None = None
    scenarios: int | None = None
    seed: int | None = None
    lm: str | None = None  # overrides the config file's [lm] model; default offline
    api_base: str | None = None
    lm_config: LMConfig | None = None
    limits: dict = attrs.Factory(dict)  # overrides of [limits]: concurrency, rpm, tpm, timeout
    stage: str = "export"
    max_attempts: int = 3
    max_tokens: int | None = None  # SFT windowing
    progress: str | None = "bar"  # "bar", "log" (a line every 30 s) or None
    cache: bool = True
    cache_dir: Path | None = None
    shard: Shard | None = None
    programs: dict = attrs.Factory(dict)  # name -> folder of a program saved by `optimize` (--program)
    workers: int = 1  # processes generating at once
    vet: bool = False  # screen each bundle with the BundleVetting program at plan time

    def config(self) -> LMConfig:
        config = self.lm_config or LMConfig()
        lm = config.lm
        if self.lm is not None:
            lm = attrs.evolve(lm, model=self.lm, api_base=self.api_base)
        elif self.api_base is not None:
            lm = attrs.evolve(lm, api_base=self.api_base)
        return attrs.evolve(config, lm=lm, limits=attrs.evolve(config.limits, **self.limits))


def compile_dataset(lib: m.Library, options: CompileOptions) -> dict:
    """Run the pipeline up to `options.stage`; return the manifest."""
    if options.stage not in STAGES:
        raise ValueError(f"unknown stage `{options.stage}` (one of: {', '.join(STAGES)})")
    dataset = lib.dataset(options.dataset)
    config = options.config()
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    plan = make_plan(lib, dataset, scenarios=options.scenarios, seed=options.seed, vet=_vetter(lib, out, config, options))
    write_jsonl(Build(out).plan, ex.plan_rows(plan))
    manifest = base_manifest(lib, dataset, plan, config, options.stage, sorted(options.programs))
    timings = {"plan": time.perf_counter() - started}
    if options.stage != "plan":
        t = time.perf_counter()
        run_usage = generate(lib, dataset, plan, config, options)
        timings["generate"] = time.perf_counter() - t
        if options.shard is not None:
            options.shard.write(out, lib, manifest, options.max_tokens)
            manifest.update(shard=[options.shard.index, options.shard.count])
        else:
            t = time.perf_counter()
            finish(out, lib, plan, manifest, options.stage, options.max_tokens)
            timings["export"] = time.perf_counter() - t
        manifest["run"] = run_usage  # this run's calls, wasted ones included: shown, not written
    else:
        write_json(Build(out).manifest, manifest)
    manifest["timings"] = timings  # shown to the user, not written: outputs stay byte-identical
    return manifest


def _vetter(lib: m.Library, out: Path, config: LMConfig, options: CompileOptions):
    """The plan's bundle screen with `--vet` (verdicts in an earlier plan.jsonl are reused), else None."""
    if not options.vet:
        return None
    from .vetting import make_vetter, recorded_verdicts

    return make_vetter(lib, make_lm(config.lm, options.seed or 0, cache=options.cache),
                       recorded_verdicts(Build(out).plan))


def base_manifest(lib: m.Library, dataset: m.Dataset, plan: Plan, config: LMConfig, stage: str,
                  optimised: list[str] = ()) -> dict:
    return {"dataset": dataset.id, "seed": plan.seed, "scenarios": len(plan.slots), "held_out": list(plan.held_out),
            "spec_hash": lib.spec_hash, "lm": config.lm.label, "offline": config.lm.model == OFFLINE,
            "stage": stage, "planned_splits": plan.counts(), "splits": {}, "sft_samples": {}, "records": 0,
            "failures": 0, "lm_calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "retries": 0,
            "transient_retries": 0, "cost_usd": 0.0,
            "programs": config.models(GENERATION_PROGRAMS), "optimised_programs": list(optimised),
            "composition": composition(plan.slots, lib, pool=[p.id for p in pool(dataset, lib)])}


@attrs.frozen
class Job:
    """What one process needs to generate its share of the slots."""

    lib: m.Library
    dataset: m.Dataset
    plan: Plan
    config: LMConfig
    options: CompileOptions


def generate(lib, dataset, plan, config: LMConfig, options: CompileOptions) -> dict:
    """Run the generation stages; return this run's usage (wasted calls included)."""
    out = options.out
    failures_path = Build(out).failures
    if failures_path.exists():  # failed slots are tried again on every run
        failures_path.unlink()
    stores = read_work(out)  # loads and repairs the work files before any worker appends to them
    totals_path = Build(out).usage_totals
    totals = read_json_object(totals_path) if totals_path.exists() else {}  # read first: a bad file stops us early
    slots = options.shard.take(plan.slots) if options.shard else plan.slots
    stages = work_stages(options.stage)
    ids = {s.id for s in slots}
    todo = [s.id for s in slots if any(s.id not in stores[stage] for stage in stages)]
    progress = Progress(stages, len(slots), {st: len(ids & stores[st].items.keys()) for st in stages},
                        mode=options.progress)
    job = Job(lib, dataset, plan, config, attrs.evolve(options, progress=None))
    workers = min(options.workers, max(1, len(todo)))
    run = Usage()
    try:
        with progress:
            if workers > 1:
                from .workers import run_workers
                run = run_workers(job, todo, workers, progress)
            else:
                run = run_share(job, todo, progress)
    except KeyboardInterrupt:
        raise Interrupted(progress.summary()) from None
    finally:
        write_json(totals_path, {key: totals.get(key, 0) + value for key, value in run.as_dict().items()})
    return run.as_dict()


def run_share(job: Job, slot_ids: list[str], progress: Progress | None = None, on_record=None,
              repair: bool = True) -> Usage:
    """Generate the given slots in this process; returns this run's usage."""
    options, config, plan = job.options, job.config, job.plan
    lms, made = {}, {}
    for name in GENERATION_PROGRAMS:
        spec = config.for_program(name)
        if spec not in made:
            try:
                made[spec] = make_lm(spec, plan.seed, cache=options.cache)
            except (ValueError, ImportError) as exc:  # a malformed model string, a missing extra
                raise LMUnavailable(f"`{spec.model}`: {exc}") from None
            made[spec].keep_history = False
        lms[name] = made[spec]
    offline = all(spec.model == OFFLINE for spec in made)
    if not offline:
        configure_cache(options.cache_dir or Build(options.out).cache, options.cache)
    wanted = set(slot_ids)
    failures = JsonlStore(Build(options.out).failures, repair=repair)
    generator = Generator(job.lib, job.dataset, plan, Build(options.out).work_dir, failures, options.max_attempts,
                          Programs(job.lib, lms, replace=_saved_programs(options.programs)), durable=not offline,
                          policy=CallPolicy(config.limits), slots=[s for s in plan.slots if s.id in wanted],
                          repair=repair)

    def record(stage: str) -> None:
        if progress is not None:
            progress.advance(stage, generator.usage, generator.policy.in_flight, generator.policy.transient_retries)
        if on_record is not None:
            on_record(stage, generator)

    generator.on_record = record
    try:
        asyncio.run(_run(generator, config.limits, options.stage))
    finally:
        failures.close()
        generator.usage.transient_retries = generator.policy.transient_retries
    return generator.usage


def _saved_programs(paths: dict) -> dict:
    """Load the `--program` folders in this process (DSPy modules do not cross process lines)."""
    if not paths:
        return {}
    from ..compiler.saved_programs import load_program

    return {name: load_program(path, expect=name)[1] for name, path in paths.items()}


async def _run(generator: Generator, limits: Limits, stage: str) -> None:
    import dspy

    with dspy.context(adapter=FastChatAdapter(), track_usage=True):
        await generator.run(stage, concurrency=limits.concurrency)


def read_work(out: Path) -> dict[str, JsonlStore]:
    return {stage: JsonlStore(Build(out).work(stage)) for stage in WORK_STAGES}


def finish(out: Path, lib: m.Library, plan: Plan, manifest: dict, stage: str, max_tokens: int | None) -> None:
    """Write the records, exports, card and manifest from the work files and failures."""
    stores = read_work(out)
    failures_path = Build(out).failures
    failures = JsonlStore(failures_path).items if failures_path.exists() else {}
    usage = Usage()
    rows = [*(r for s in WORK_STAGES for _, r in sorted(stores[s].items.items())), *(r for _, r in sorted(failures.items()))]
    for row in rows:  # in a fixed order, so float sums agree however the work was split
        usage.add(Usage(**row.get("usage", {})))
    manifest.update(lm_calls=usage.calls, prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens, retries=usage.retries,
                    transient_retries=usage.transient_retries, cost_usd=round(usage.cost, 6), failures=len(failures))
    write_jsonl(failures_path, sorted(failures.values(), key=lambda r: r["id"]))
    if stage == "export":
        records, declared = [], ex.declared_interactions(lib)
        for slot in plan.slots:
            parts = [stores[s].get(slot.id) for s in WORK_STAGES]
            if all(parts):
                records.append(ex.build_record(slot, *parts, lib, manifest["lm"], declared))
        write_jsonl(Build(out).records, records)
        manifest["sft_samples"] = ex.export(out, records, max_tokens=max_tokens)
        manifest["splits"] = {s: sum(r["split"] == s for r in records) for s in m.SPLITS}
        manifest["records"] = len(records)
        ex.write_card(out, manifest, records, lib)
        ex.write_patterns(out, records, lib)
    write_json(Build(out).manifest, manifest)
