"""`humanllm compile`: specs -> plan -> programs -> records -> exports, in one output folder."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import attrs

from ..compiler import model as m
from ..compiler.plan import Plan, make_plan
from . import export as ex
from .pipeline import STAGES, Generator
from .store import JsonlStore, write_json, write_jsonl

OFFLINE = "offline"


@attrs.frozen
class CompileOptions:
    out: Path
    dataset: str | None = None
    scenarios: int | None = None
    seed: int | None = None
    lm: str = OFFLINE
    api_base: str | None = None
    stage: str = "export"
    max_attempts: int = 3
    max_tokens: int | None = None  # SFT windowing
    progress: bool = True


def make_lm(name: str, seed: int, api_base: str | None = None):
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import dspy

    if name == OFFLINE:
        from .offline import offline_lm
        return offline_lm(seed)
    return dspy.LM(name, api_base=api_base) if api_base else dspy.LM(name)


def compile_dataset(lib: m.Library, options: CompileOptions) -> dict:
    """Run the pipeline up to `options.stage`; return the manifest."""
    if options.stage not in STAGES:
        raise ValueError(f"unknown stage `{options.stage}` (one of: {', '.join(STAGES)})")
    dataset = lib.dataset(options.dataset)
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    plan = make_plan(lib, dataset, scenarios=options.scenarios, seed=options.seed)
    write_jsonl(out / "plan.jsonl", ex.plan_rows(plan))
    manifest = _manifest(lib, dataset, plan, options)
    timings = {"plan": time.perf_counter() - started}
    if options.stage != "plan":
        records = _generate(lib, dataset, plan, options, manifest, timings)
        if options.stage == "export":
            t = time.perf_counter()
            write_jsonl(out / "records.jsonl", records)
            manifest["sft_samples"] = ex.export(out, records, max_tokens=options.max_tokens)
            manifest["splits"] = {s: sum(r["split"] == s for r in records) for s in m.SPLITS}
            manifest["records"] = len(records)
            ex.write_card(out, manifest, records, lib)
            ex.write_patterns(out, records, lib)
            timings["export"] = time.perf_counter() - t
    write_json(out / "manifest.json", manifest)
    manifest["timings"] = timings  # shown to the user, not written: outputs stay byte-identical
    return manifest


def _manifest(lib: m.Library, dataset: m.Dataset, plan: Plan, options: CompileOptions) -> dict:
    return {"dataset": dataset.id, "seed": plan.seed, "scenarios": len(plan.slots), "held_out": list(plan.held_out),
            "spec_hash": lib.spec_hash, "lm": options.lm if options.lm == OFFLINE else options.lm,
            "offline": options.lm == OFFLINE, "stage": options.stage,
            "planned_splits": plan.counts(), "splits": {}, "sft_samples": {}, "records": 0, "failures": 0,
            "lm_calls": 0, "prompt_tokens": 0, "completion_tokens": 0,
            "programs": {name: options.lm for name in ("scenario", "conversation", "checklist", "variation")}}


def _generate(lib, dataset, plan, options, manifest, timings) -> list[dict]:
    import dspy

    out = options.out
    failures_path = out / "failures.jsonl"
    if failures_path.exists():  # failed slots are tried again on every run
        failures_path.unlink()
    failures = JsonlStore(failures_path)
    generator = Generator(lib, dataset, plan, out / "work", failures, options.max_attempts)
    lm = make_lm(options.lm, plan.seed, options.api_base)
    t = time.perf_counter()
    with dspy.context(lm=lm, adapter=dspy.ChatAdapter(use_json_adapter_fallback=False), track_usage=True):
        if options.progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            with Progress(TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), TimeRemainingColumn()) as bar:
                generator.run(options.stage, bar)
        else:
            generator.run(options.stage)
    failures.close()
    timings["generate"] = time.perf_counter() - t
    c = generator.counters
    usage_path = out / "work" / "usage.json"  # totals survive restarts
    totals = json.loads(usage_path.read_text("utf-8")) if usage_path.exists() else {}
    totals = {key: totals.get(key, 0) + value for key, value in
              {"lm_calls": c.calls, "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
               "retries": c.retries}.items()}
    write_json(usage_path, totals)
    manifest.update(totals, failures=len(failures.items))
    if options.stage != "export":
        return []
    stores = generator.stores
    records = []
    for slot in plan.slots:
        parts = [stores[s].get(slot.id) for s in ("scenarios", "conversations", "checklists")]
        if all(parts):
            records.append(ex.build_record(slot, *parts, lib, manifest["lm"]))
    write_jsonl(failures_path, sorted(failures.items.values(), key=lambda r: r["id"]))
    return records
