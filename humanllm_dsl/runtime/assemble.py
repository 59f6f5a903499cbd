"""The export stage: work files -> records -> exports, card and manifest, streaming.

Records are built one at a time from the work files (read by offset) and written at once to
`records.jsonl` and their split; the SFT files and the Hugging Face copy are then made split by
split from `splits/`. Memory stays flat in the size of the dataset.
"""

from __future__ import annotations

from pathlib import Path

from ..compiler import model as m
from ..compiler.plan import Plan
from ..compiler.satisfy import pool
from . import export as ex
from .backends import OFFLINE
from .composition import composition
from .layout import Build
from .lmconfig import LMConfig
from .pipeline import Usage
from .records import load_manifest
from .stages import GENERATION_PROGRAMS, WORK_STAGES
from .store import JsonlStore, write_json, write_jsonl


def base_manifest(lib: m.Library, dataset: m.Dataset, plan: Plan, config: LMConfig, stage: str,
                  optimised: list[str] = ()) -> dict:
    return {"dataset": dataset.id, "seed": plan.seed, "scenarios": len(plan.slots), "held_out": list(plan.held_out),
            "spec_hash": lib.spec_hash, "lm": config.lm.label, "offline": config.lm.model == OFFLINE,
            "stage": stage, "planned_splits": plan.counts(), "splits": {}, "sft_samples": {}, "records": 0,
            "failures": 0, "lm_calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "retries": 0,
            "transient_retries": 0, "cost_usd": 0.0,
            "programs": config.models(GENERATION_PROGRAMS), "optimised_programs": list(optimised),
            "composition": composition(plan.slots, lib, pool=[p.id for p in pool(dataset, lib)])}


def write_manifest(out: Path, manifest: dict) -> None:
    """manifest.json, its shape checked against `records.Manifest` before it is written."""
    load_manifest(manifest, str(Build(out).manifest))
    write_json(Build(out).manifest, manifest)


def read_work(out: Path) -> dict[str, JsonlStore]:
    return {stage: JsonlStore(Build(out).work(stage)) for stage in WORK_STAGES}


def finish(out: Path, lib: m.Library, plan: Plan, manifest: dict, stage: str, max_tokens: int | None) -> None:
    """Write the records, exports, card and manifest from the work files and failures."""
    build = Build(out)
    stores = read_work(out)
    failures = JsonlStore(build.failures) if build.failures.exists() else None
    failed = failures.items if failures is not None else {}
    usage = Usage()
    for store in (*(stores[s].items for s in WORK_STAGES), failed):
        for key in sorted(store):  # in a fixed order, so float sums agree however the work was split
            usage.add(Usage(**store[key].get("usage", {})))
    manifest.update(lm_calls=usage.calls, prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens, retries=usage.retries,
                    transient_retries=usage.transient_retries, cost_usd=round(usage.cost, 6), failures=len(failed))
    write_jsonl(build.failures, [failed[key] for key in sorted(failed)])
    if stage == "export":
        declared = ex.declared_interactions(lib)

        def records():
            for slot in plan.slots:
                parts = [stores[s].get(slot.id) for s in WORK_STAGES]
                if all(parts):
                    yield ex.build_record(slot, *parts, lib, manifest["lm"], declared)

        stats = ex.write_records(out, records())
        manifest["sft_samples"] = ex.export(out, max_tokens=max_tokens)
        manifest["splits"] = stats.splits
        manifest["records"] = len(stats.rows)
        ex.write_card(out, manifest, stats, lib)
        ex.write_patterns(out, stats.patterns, lib)
    for store in (*stores.values(), *([failures] if failures is not None else [])):
        store.close()
    write_manifest(out, manifest)
