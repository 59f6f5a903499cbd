"""`humanllm compile`: specs -> plan -> programs -> records -> exports, in one output folder.

Data moves one way: this module plans and drives; `share` generates slots in one process,
`workers` in several, `shards` writes and merges shares, `assemble` writes the exports.
The output folder holds everything a run needs to resume: `plan.jsonl`, `work/<stage>.jsonl`
(finished results, one per line), `work/usage.json` (every call ever made for it) and the DSPy
cache (`cache/`, unless `--cache-dir` or `--no-cache`). A shard (`--shard i/n`, see shards.py)
stops before the export.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from ..compiler import model as m
from ..compiler.plan import make_plan
from . import export as ex
from .assemble import base_manifest, finish, read_work, write_manifest
from .backends import make_lm
from .layout import Build
from .lmconfig import LMConfig
from .pipeline import Usage
from .progress import Progress
from .shards import Shard
from .share import Job, run_share
from .stages import STAGES, work_stages
from .store import read_json_object, write_json, write_jsonl

if TYPE_CHECKING:  # batch.py (and httpx) load only when --batch is given
    from .batch import BatchOptions


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
    workers: int = 1  # processes generating at once (with executor "ray": Ray workers)
    executor: str = "local"  # "local" (this machine's processes) or "ray" (ray_executor.py)
    ray_address: str | None = None  # a Ray cluster; None: a local Ray instance
    vet: bool = False  # screen each bundle with the BundleVetting program at plan time
    batch: BatchOptions | None = None  # run each stage as provider batch jobs (--batch, see batch.py)

    def config(self) -> LMConfig:
        config = self.lm_config or LMConfig()
        lm = config.lm
        if self.lm is not None:
            lm = attrs.evolve(lm, model=self.lm, api_base=self.api_base, api_bases=())
        elif self.api_base is not None:
            lm = attrs.evolve(lm, api_base=self.api_base, api_bases=())
        return attrs.evolve(config, lm=lm, limits=attrs.evolve(config.limits, **self.limits))


def compile_dataset(lib: m.Library, options: CompileOptions) -> dict:
    """Run the pipeline up to `options.stage`; return the manifest."""
    if options.stage not in STAGES:
        raise ValueError(f"unknown stage `{options.stage}` (one of: {', '.join(STAGES)})")
    dataset = lib.dataset(options.dataset)
    config = options.config()
    if options.batch is not None:
        from .batch import check_batchable
        check_batchable(config)
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
        write_manifest(out, manifest)
    manifest["timings"] = timings  # shown to the user, not written: outputs stay byte-identical
    return manifest


def _vetter(lib: m.Library, out: Path, config: LMConfig, options: CompileOptions):
    """The plan's bundle screen with `--vet` (verdicts in an earlier plan.jsonl are reused), else None."""
    if not options.vet:
        return None
    from .vetting import make_vetter, recorded_verdicts

    return make_vetter(lib, make_lm(config.lm, options.seed or 0, cache=options.cache),
                       recorded_verdicts(Build(out).plan))


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
            if options.batch is not None:
                from .batch import run_batch
                run = run_batch(job, todo, progress, options.batch)
            elif options.executor == "ray":
                from .ray_executor import run_ray
                run = run_ray(job, todo, workers, progress, options.ray_address)
            elif workers > 1:
                from .workers import run_workers
                run = run_workers(job, todo, workers, progress)
            else:
                run = run_share(job, todo, progress)
    except KeyboardInterrupt:
        raise Interrupted(progress.summary()) from None
    finally:
        write_json(totals_path, {key: totals.get(key, 0) + value for key, value in run.as_dict().items()})
    return run.as_dict()


