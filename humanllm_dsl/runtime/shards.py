"""Compiling past one machine: `--shard I/N` generates every N-th scenario from the I-th and
stops before the export; `humanllm merge` joins the N shard folders into exactly what one
machine would have written. Each shard folder carries `shard.json` (the command's settings) and
`library.json` (the checked specs), so merge needs nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs

from ..compiler import model as m
from ..compiler.plan import Slot, make_plan
from . import export as ex
from .assemble import base_manifest, finish
from .backends import LMSpec
from .layout import Build
from .lmconfig import LMConfig
from .stages import WORK_STAGES
from .store import JsonlStore, read_json_object, write_json, write_jsonl

# Settings that must agree across the shards of one dataset.
SAME_IN_EVERY_SHARD = ("dataset", "scenarios", "seed", "spec_hash", "stage", "lm", "programs",
                       "optimised_programs", "max_tokens")


@attrs.frozen
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        try:
            i, n = (int(x) for x in text.split("/"))
        except ValueError:
            raise ValueError(f"--shard takes I/N (for example 0/4), not `{text}`") from None
        if not 0 <= i < n:
            raise ValueError(f"--shard {text}: I must be in 0..{n - 1}")
        return cls(i, n)

    def take(self, slots: Sequence[Slot]) -> list[Slot]:
        """Every n-th slot from the i-th: shares of equal size and the same split mix."""
        return [s for k, s in enumerate(slots) if k % self.count == self.index]

    def write(self, out: Path, lib: m.Library, manifest: dict, max_tokens: int | None) -> None:
        """What `merge` needs besides the work files: the library, and the command's settings."""
        write_json(out / "library.json", m.to_json(lib))
        write_json(out / "shard.json", {"shard": [self.index, self.count], "max_tokens": max_tokens,
                                        **{key: manifest[key] for key in SAME_IN_EVERY_SHARD if key != "max_tokens"}})


def merge_shards(folders: Sequence[Path], out: Path) -> dict:
    """Join shard folders into `out`, exactly as a one-machine run of the same command would write it."""
    metas = []
    for folder in folders:
        path = folder / "shard.json"
        if not path.exists():
            raise ValueError(f"{folder}: not a shard folder (no shard.json; compile it with --shard I/N)")
        metas.append((folder, read_json_object(path)))
    first = metas[0][1]
    count = first["shard"][1]
    for folder, meta in metas:
        for key in SAME_IN_EVERY_SHARD:
            if meta.get(key) != first.get(key):
                raise ValueError(f"{folder}: `{key}` is {meta.get(key)!r}, but {metas[0][0]} has {first.get(key)!r}; "
                                 "shards of one dataset must come from the same command")
    seen = sorted(meta["shard"][0] for _, meta in metas)
    if seen != list(range(count)) or any(meta["shard"][1] != count for _, meta in metas):
        missing = sorted(set(range(count)) - set(seen))
        raise ValueError(f"shards do not make a whole: have {', '.join(map(str, seen))} of {count}"
                         + (f"; missing {', '.join(map(str, missing))}" if missing else "; some appear twice"))


    lib = m.from_json(read_json_object(metas[0][0] / "library.json"))
    if lib.spec_hash != first["spec_hash"]:
        raise ValueError(f"{metas[0][0]}/library.json does not match its spec hash")
    dataset = lib.dataset(first["dataset"])
    plan = make_plan(lib, dataset, scenarios=first["scenarios"], seed=first["seed"])
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(Build(out).plan, ex.plan_rows(plan))
    for stage in WORK_STAGES:
        rows = {}
        for folder, _ in metas:
            rows.update(JsonlStore(Build(folder).work(stage), repair=False).items)  # read, never cut
        order = {s.id: k for k, s in enumerate(plan.slots)}
        write_jsonl(Build(out).work(stage), sorted(rows.values(), key=lambda r: order[r["id"]]))
    failures = {}
    for folder, _ in metas:
        if Build(folder).failures.exists():
            failures.update(JsonlStore(Build(folder).failures, repair=False).items)
    write_jsonl(Build(out).failures, sorted(failures.values(), key=lambda r: r["id"]))
    config = LMConfig(lm=LMSpec(model=first["lm"]))
    manifest = base_manifest(lib, dataset, plan, config, first["stage"], first["optimised_programs"])
    manifest["programs"] = first["programs"]
    finish(out, lib, plan, manifest, first["stage"], first["max_tokens"])
    return manifest
