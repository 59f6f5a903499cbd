"""Exports of a compiled dataset: records, splits, SFT files, a Hugging Face DatasetDict,
the manifest and the dataset card."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..compiler import model as m
from ..compiler.plan import Plan
from . import sft
from .layout import Build
from .composition import card_lines, composition
from .vetting import verdict_json
from .channels import split_channels
from .store import write_json, write_jsonl, write_text


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
    return {
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
    }


def export(out: Path, records: list[dict], *, max_tokens: int | None = None, hf: bool = True) -> dict[str, int]:
    """Write splits/, sft/ and hf/ from the records. Returns SFT sample counts per split."""
    by_split = {s: [r for r in records if r["split"] == s] for s in m.SPLITS}
    for split, rows in by_split.items():
        write_jsonl(Build(out).split(split), rows)
    info, sample_counts = {}, {}
    for split, rows in by_split.items():
        samples = [s for r in rows for s in sft.samples(r, max_tokens)]
        sample_counts[split] = len(samples)
        write_jsonl(Build(out).sft_messages(split), samples)
        write_json(Build(out).sharegpt(split), [sft.to_sharegpt(s) for s in samples])
        info[f"humanllm_{split}"] = {
            "file_name": f"sharegpt_{split}.json", "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system"},
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}}
    write_json(Build(out).dataset_info, info)
    if hf:
        save_hf(Build(out).hf, by_split)
    return sample_counts


def _flat(record: dict) -> dict:
    """A record with name-keyed maps turned into lists, so Arrow gets one fixed schema."""
    r = dict(record)
    r["characters"] = [{"name": c["name"], "about_self": c["about_self"],
                        "about_others": [{"name": k, "view": v} for k, v in c.get("about_others", {}).items()]}
                       for c in record["characters"]]
    r["char2pattern"] = [{"char": k, "patterns": v} for k, v in record["char2pattern"].items()]
    r["checklist"] = [{"char": k, "items": v} for k, v in record["checklist"].items()]
    var = dict(record["variation"])
    var["checklist"] = [{"char": k, "items": v} for k, v in var["checklist"].items()]
    r["variation"] = var
    r["interactions"] = [{**i, "direction": i["direction"] or {"from": [], "to": []}} for i in record["interactions"]]
    return r


def save_hf(path: Path, by_split: dict[str, list[dict]]) -> None:
    import datasets

    datasets.disable_progress_bars()
    dd = datasets.DatasetDict({split: datasets.Dataset.from_list([_flat(r) for r in rows])
                               for split, rows in by_split.items() if rows})
    dd.save_to_disk(str(path))


def dataset_card(manifest: dict, records: list[dict], lib: m.Library) -> str:
    patterns = Counter(p for r in records for p in r["patterns"])
    situations = Counter(r["situation"] for r in records)
    domains = Counter(r["domain"] for r in records)
    types = Counter(i["type"] for r in records for i in r["interactions"])
    turns = [len(r["conversation"]) for r in records]
    offline = manifest["offline"]
    lines = [f"# {manifest['dataset']}: a HumanLLM dataset", ""]
    if offline:
        lines += ["> **Offline data.** Every text in this dataset was written by humanllm's offline engine, "
                  "a deterministic stand-in for a language model built from the specs. It is valid, traceable "
                  "placeholder data for testing pipelines, not material for training a model. Compile with "
                  "`--lm MODEL` for real data.", ""]
    lines += [
        f"- LM: `{manifest['lm']}`", f"- spec hash: `{manifest['spec_hash']}`", f"- seed: {manifest['seed']}",
        f"- scenarios planned: {manifest['scenarios']}; written: {len(records)}; failed: {manifest['failures']}",
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
    if records:
        lines += ["", "Written (records; uses over the patterns they hold):", ""] + card_lines(composition(records, lib))
    lines += ["", "## Interaction types", ""] + [f"- {t}: {n}" for t, n in sorted(types.items())]
    lines += ["", "## Situations", ""] + [f"- {s}: {n}" for s, n in sorted(situations.items())]
    lines += ["", "## Domains", ""] + [f"- {d}: {n}" for d, n in sorted(domains.items())]
    if patterns:
        lines += ["", "## Pattern coverage", "",
                  f"{len(patterns)} patterns used; per pattern min {min(patterns.values())}, "
                  f"max {max(patterns.values())}."]
    lines += ["", "## Files", "",
              "- `records.jsonl`: one scenario per line (patterns, interactions, characters, conversation, checklists, variation)",
              "- `splits/<split>.jsonl`: the records of each split",
              "- `sft/messages_<split>.jsonl` (TRL chat messages), `sft/sharegpt_<split>.json` + `sft/dataset_info.json` (LLaMA-Factory)",
              "- `hf/`: a Hugging Face `DatasetDict` (`datasets.load_from_disk`)",
              "- `patterns.json`: the patterns used, with their pattern-level checklists",
              "- `plan.jsonl`, `manifest.json`, `failures.jsonl`", ""]
    return "\n".join(lines)


def write_patterns(out: Path, records: list[dict], lib: m.Library) -> None:
    """`patterns.json`: every pattern the records use, with its pattern-level checklist, so the
    build folder is all that evaluation needs."""
    used = sorted({p for r in records for p in r["patterns"]})
    write_json(Build(out).patterns, {p: {"name": lib.pattern(p).name, "family": lib.pattern(p).family,
                                           "dimension": lib.pattern(p).dimension,
                                           "checklist": list(lib.pattern(p).checklist)} for p in used})


def write_card(out: Path, manifest: dict, records: list[dict], lib: m.Library) -> None:
    write_text(Build(out).card, dataset_card(manifest, records, lib))


def plan_rows(plan: Plan):
    for s in plan.slots:
        yield {"id": s.id, "split": s.split, "patterns": list(s.patterns),
               "interactions": [interaction_json(i) for i in s.interactions],
               "situation": s.situation, "domain": s.domain, "characters": s.characters,
               **({"vetting": [verdict_json(v) for v in s.vetting]} if s.vetting else {})}
