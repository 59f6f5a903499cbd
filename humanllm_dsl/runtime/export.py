"""Exports of a compiled dataset: records, splits, SFT files, a Hugging Face DatasetDict,
the manifest and the dataset card."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs

from ..compiler import model as m
from ..compiler.plan import Plan
from . import sft
from .channels import split_channels
from .composition import card_lines, composition
from .layout import Build
from .schema import RECORD, SFT_SAMPLE, arrow_schema, hub_yaml
from .records import stored_shape
from .store import write_json, write_text, writing
from .vetting import verdict_json


def declared_interactions(lib: m.Library) -> dict[tuple, m.Interaction]:
    """The library's interactions by (patterns, type), the key a plan slot's interaction carries."""
    return {(it.patterns, it.type): it for it in lib.interactions}


def interaction_json(it, declared: dict[tuple, m.Interaction] | None = None) -> dict:
    """A slot's interaction as JSON: patterns, type, for `modulate` the direction, and with
    `declared` (see `declared_interactions`) the `because` and `expect` the spec gives it."""
    direction = None if it.direction is None else {"from": list(it.direction.sources), "to": list(it.direction.targets)}
    row = {"patterns": list(it.patterns), "type": it.type, "direction": direction}
    if declared is not None:
        full = declared[(it.patterns, it.type)]
        row |= {"because": full.because, "expect": full.expect}
    return row


def build_record(slot, scenario: dict, conversation: dict, checks: dict, varied: dict, lib: m.Library,
                 lm: str, declared: dict[tuple, m.Interaction] | None = None) -> dict:
    turns = []
    for t in conversation["turns"]:
        ch = split_channels(t["content"])
        turns.append({"char": t["char"], "content": t["content"], "thought": ch.thought,
                      "action": ch.action, "speech": ch.speech,
                      "segments": [s.as_dict() for s in ch.segments]})
    variation = varied["variation"]
    return stored_shape({
        "id": slot.id, "split": slot.split, "patterns": list(slot.patterns),
        "pattern_names": [lib.pattern(p).name for p in slot.patterns],
        "interactions": [interaction_json(i, declared or declared_interactions(lib)) for i in slot.interactions],
        "situation": slot.situation, "domain": slot.domain,
        "design_analysis": scenario["design_analysis"], "background": scenario["background"],
        "characters": scenario["characters"], "protagonist": scenario["protagonist"],
        "char2pattern": scenario["char2pattern"], "conversation": turns,
        "checklist": checks["checklist"],
        "variation": {"changed_factors": variation["changed_factors"], "analysis": variation["analysis"],
                      "background": variation["varied_background"], "checklist": variation["varied_checklist"]},
        "lm": lm,
    })


@attrs.define
class RecordStats:
    """What the manifest and the dataset card need of the records, gathered as they stream past
    (a few numbers per record, never the records themselves)."""

    rows: list[dict] = attrs.Factory(list)  # per record: patterns, split, cast and turn counts
    situations: Counter = attrs.Factory(Counter)
    domains: Counter = attrs.Factory(Counter)
    types: Counter = attrs.Factory(Counter)

    def add(self, record: dict) -> None:
        self.rows.append({"patterns": list(record["patterns"]), "split": record["split"],
                          "characters": len(record["characters"]), "conversation": len(record["conversation"])})
        self.situations[record["situation"]] += 1
        self.domains[record["domain"]] += 1
        self.types.update(i["type"] for i in record["interactions"])

    @property
    def splits(self) -> dict[str, int]:
        counts = Counter(r["split"] for r in self.rows)
        return {s: counts.get(s, 0) for s in m.SPLITS}

    @property
    def patterns(self) -> Counter:
        return Counter(p for r in self.rows for p in r["patterns"])


def write_records(out: Path, records: Iterable[dict]) -> RecordStats:
    """`records.jsonl` and `splits/<split>.jsonl` in one streaming pass; returns their statistics."""
    build, stats = Build(out), RecordStats()
    with writing(build.records, *(build.split(s) for s in m.SPLITS)) as (every, *splits):
        by_split = dict(zip(m.SPLITS, splits))
        for record in records:
            every.write(record)
            by_split[record["split"]].write(record)
            stats.add(record)
    return stats


def read_split(out: Path, split: str) -> Iterator[dict]:
    """The records of one split, one at a time."""
    with Build(out).split(split).open("r", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


SHAREGPT_INFO = {"formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system"},
                 "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}}


def export(out: Path, *, max_tokens: int | None = None, hf: bool = True) -> dict[str, int]:
    """Write sft/ and hf/ from splits/ in one pass per split, record by record. Returns SFT sample
    counts per split."""
    build = Build(out)
    info, sample_counts = {}, {}
    if build.hf.exists():
        shutil.rmtree(build.hf)  # a copy from an earlier run (or format) is replaced whole
    for split in m.SPLITS:
        with writing(build.sft_messages(split), build.sharegpt(split)) as (messages, sharegpt), \
                ParquetSplit(build, split) if hf else contextlib.nullcontext() as parquet:
            for record in read_split(out, split):
                for sample in sft.samples(record, max_tokens):
                    messages.write(sample)
                    sharegpt.write(sft.to_sharegpt(sample))
                if parquet is not None:
                    parquet.write(record)
        sample_counts[split] = messages.count
        info[f"humanllm_{split}"] = {"file_name": build.sharegpt(split).name, **SHAREGPT_INFO}
    write_json(build.dataset_info, info)
    return sample_counts


HF_BATCH = 100  # records per Parquet row group: a record is ~20 KB, so memory stays small at any size


class ParquetSplit:
    """`hf/data/<split>-00000-of-00001.parquet`: a split's records with their Arrow types
    (`schema.RECORD`), written 100 at a time, so memory stays flat however large the dataset; no
    file for a split with no record. `datasets.load_dataset("BUILD/hf")` gives a DatasetDict."""

    def __init__(self, build: Build, split: str):
        self.path = build.hf / "data" / f"{split}-00000-of-00001.parquet"
        self.batch: list[dict] = []
        self.writer = None

    def write(self, record: dict) -> None:
        self.batch.append(stored_shape(record))  # builds from before the one shape held name-keyed maps
        if len(self.batch) == HF_BATCH:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = arrow_schema(RECORD)
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, schema)
        self.writer.write_table(pa.Table.from_pylist(self.batch, schema=schema))
        self.batch = []

    def __enter__(self) -> "ParquetSplit":
        return self

    def __exit__(self, *exc) -> None:
        if self.batch and exc[0] is None:
            self._flush()
        if self.writer is not None:
            self.writer.close()


def size_category(n: int) -> str:
    """The Hub's `size_categories` value for n rows."""
    for bound, label in ((10**3, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"),
                         (10**7, "1M<n<10M"), (10**8, "10M<n<100M"), (10**9, "100M<n<1B"),
                         (10**10, "1B<n<10B"), (10**11, "10B<n<100B"), (10**12, "100B<n<1T")):
        if n < bound:
            return label
    return "n>1T"


def card_metadata(manifest: dict, stats: RecordStats) -> dict:
    """The card's YAML front matter: what the Hub indexes, and a `configs:` block so that
    `datasets.load_dataset(FOLDER_OR_REPO)` keeps the splits apart (`default`: the records, from
    splits/; `sft`: the chat samples, from sft/messages_<split>.jsonl), with the features
    declared so every split gets the one schema. A split with no rows is left out of a config:
    `datasets` refuses a split that corresponds to no data."""
    build = Build(Path("."))
    records, samples = stats.splits, manifest.get("sft_samples", {})
    tags = ["humanllm", "psychology", "role-play", "synthetic", "multi-character", "dialogue"]
    if manifest["offline"]:
        tags.append("offline-placeholder")
    features = datasets_features_yaml()
    meta = {
        "license": "mit", "language": ["en"], "task_categories": ["text-generation"],
        "size_categories": [size_category(len(stats.rows))], "tags": tags,
        "pretty_name": f"{manifest['dataset']} (HumanLLM)",
        "configs": [
            {"config_name": "default", "default": True,
             "data_files": [{"split": s, "path": build.split(s).as_posix()} for s in m.SPLITS if records[s]]},
            {"config_name": "sft",
             "data_files": [{"split": s, "path": build.sft_messages(s).as_posix()} for s in m.SPLITS
                            if samples.get(s)]}],
        "dataset_info": [{"config_name": "default", "features": features["default"]},
                         {"config_name": "sft", "features": features["sft"]}],
    }
    kept = [c for c in meta["configs"] if c["data_files"]]  # a build with no records has nothing to load
    names = {c["config_name"] for c in kept}
    meta["configs"] = kept
    meta["dataset_info"] = [i for i in meta["dataset_info"] if i["config_name"] in names]
    return meta


def datasets_features_yaml() -> dict[str, list]:
    return {"default": hub_yaml(RECORD), "sft": hub_yaml(SFT_SAMPLE)}


def front_matter(metadata: dict) -> str:
    import yaml

    return "---\n" + yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True) + "---\n"


def dataset_card(manifest: dict, stats: RecordStats, lib: m.Library) -> str:
    patterns, rows = stats.patterns, stats.rows
    turns = [r["conversation"] for r in rows]
    offline = manifest["offline"]
    lines = [front_matter(card_metadata(manifest, stats)), f"# {manifest['dataset']}: a HumanLLM dataset", ""]
    if offline:
        lines += ["> **Offline data.** Every text in this dataset was written by humanllm's offline engine, "
                  "a deterministic stand-in for a language model built from the specs. It is valid, traceable "
                  "placeholder data for testing pipelines, not material for training a model. Compile with "
                  "`--lm MODEL` for real data.", ""]
    lines += [
        f"- LM: `{manifest['lm']}`", f"- spec hash: `{manifest['spec_hash']}`", f"- seed: {manifest['seed']}",
        f"- scenarios planned: {manifest['scenarios']}; written: {len(rows)}; failed: {manifest['failures']}",
        f"- turns per conversation: {min(turns, default=0)}-{max(turns, default=0)} "
        f"(mean {sum(turns) / max(len(turns), 1):.1f})", "",
        "## Splits", "", "| split | scenarios | SFT samples |", "|---|---|---|"]
    lines += [f"| {s} | {manifest['splits'][s]} | {manifest['sft_samples'].get(s, 0)} |" for s in m.SPLITS]
    names = lib.by_id
    lines += ["", "## Held-out patterns (out-of-domain)", ""]
    lines += [f"- `{p}` ({names[p].name}, {names[p].family})" for p in manifest["held_out"]]
    if "composition" in manifest:
        lines += ["", "## Composition", "", "Planned (all scenarios, all patterns the dataset may use):", ""]
        lines += card_lines(manifest["composition"])
    if rows:
        lines += ["", "Written (records; uses over the patterns they hold):", ""] + card_lines(composition(rows, lib))
    lines += ["", "## Interaction types", ""] + [f"- {t}: {n}" for t, n in sorted(stats.types.items())]
    lines += ["", "## Situations", ""] + [f"- {s}: {n}" for s, n in sorted(stats.situations.items())]
    lines += ["", "## Domains", ""] + [f"- {d}: {n}" for d, n in sorted(stats.domains.items())]
    if patterns:
        lines += ["", "## Pattern coverage", "",
                  f"{len(patterns)} patterns used; per pattern min {min(patterns.values())}, "
                  f"max {max(patterns.values())}."]
    lines += ["", "## Files", "",
              "- `records.jsonl`: one scenario per line (patterns, interactions, characters, conversation, checklists, variation)",
              "- `splits/<split>.jsonl`: the records of each split",
              "- `sft/messages_<split>.jsonl` (TRL chat messages), `sft/sharegpt_<split>.json` + `sft/dataset_info.json` (LLaMA-Factory)",
              "- `hf/`: the same records as typed Parquet files (`datasets.load_dataset(\"BUILD/hf\")`)",
              "- `patterns.json`: the patterns used, with their pattern-level checklists",
              "- `plan.jsonl`, `manifest.json`, `failures.jsonl`", "",
              "## Loading", "",
              "`datasets.load_dataset(FOLDER_OR_REPO)` gives the four splits of records "
              "(`train`, `id_eval`, `ood_eval`, `mixed_eval`); add `\"sft\"` for the chat samples. "
              "Maps keyed by character are lists: `char2pattern` is `[{char, patterns}]`, the checklists "
              "`[{char, items}]`, a character's `about_others` `[{name, view}]`.", ""]
    return "\n".join(lines)


def write_patterns(out: Path, used: Iterable[str], lib: m.Library) -> None:
    """`patterns.json`: every pattern the records use, with its pattern-level checklist, so the
    build folder is all that evaluation needs."""
    write_json(Build(out).patterns, {p: {"name": lib.pattern(p).name, "family": lib.pattern(p).family,
                                           "dimension": lib.pattern(p).dimension,
                                           "checklist": list(lib.pattern(p).checklist)} for p in sorted(used)})


def write_card(out: Path, manifest: dict, stats: RecordStats, lib: m.Library) -> None:
    write_text(Build(out).card, dataset_card(manifest, stats, lib))


def plan_rows(plan: Plan):
    for s in plan.slots:
        yield {"id": s.id, "split": s.split, "patterns": list(s.patterns),
               "interactions": [interaction_json(i) for i in s.interactions],
               "situation": s.situation, "domain": s.domain, "characters": s.characters,
               **({"vetting": [verdict_json(v) for v in s.vetting]} if s.vetting else {})}
