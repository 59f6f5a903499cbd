"""A compiled build folder, read for evaluation.

A *sample* is one target character of one scenario: a character that carries patterns (in
`char2pattern`). Its checklist has two parts, judged together in one call:

- `ipe` items: the pattern-level checklists (from `patterns.json`) of the character's patterns;
- `mpd` items: the scenario-level checklist of the character (`checklist[name]` in the record).
"""

from __future__ import annotations

from pathlib import Path

import attrs

from ..compiler.model import EVAL_SPLITS, TRAIN_SPLIT
from ..runtime.layout import Build
from ..runtime.records import map_shape

SPLIT_CHOICES = (*EVAL_SPLITS, TRAIN_SPLIT, "all")
RECORD_KEYS = ("id", "patterns", "characters", "char2pattern", "conversation", "checklist", "background")


class EvalDataError(Exception):
    """Input data that cannot be evaluated; the message names the file (and row)."""


@attrs.frozen
class Item:
    """One checklist item of a sample."""

    kind: str            # "ipe" (pattern-level) or "mpd" (scenario-level)
    text: str
    pattern: str | None  # the pattern of an ipe item; None for mpd


@attrs.frozen
class Sample:
    """One target character of one scenario."""

    id: str               # "<record id>/<character name>"
    record: dict
    character: str
    patterns: tuple[str, ...]
    items: tuple[Item, ...]

    @property
    def split(self) -> str:
        return self.record.get("split", "")

    @property
    def record_id(self) -> str:
        return self.record["id"]


def sample_id(record_id: str, character: str) -> str:
    return f"{record_id}/{character}"


def splits_for(choice: str) -> tuple[str, ...]:
    """The splits a `--split` choice means.

    Args:
        choice: one split name, or `all` for every evaluation split (id_eval, ood_eval, mixed_eval).
    """
    if choice == "all":
        return EVAL_SPLITS
    if choice not in SPLIT_CHOICES:
        raise ValueError(f"unknown split `{choice}` (one of: {', '.join(SPLIT_CHOICES)})")
    return (choice,)


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSON-lines file; a bad line raises EvalDataError naming the file and line.

    Args:
        path: the file; a missing file raises EvalDataError.
    """
    return [row for _, row in numbered_rows(path)]


def numbered_rows(path: Path) -> list[tuple[int, dict]]:
    """`(line number, row)` for each non-blank line of a JSON-lines file (see `read_jsonl`)."""
    if not path.is_file():
        raise EvalDataError(f"{path}: no such file")
    from ..runtime.store import JsonFileError, json_lines

    rows = []
    with path.open(encoding="utf-8") as f:
        try:
            for n, row in json_lines(f, path):
                if not isinstance(row, dict):
                    raise EvalDataError(f"{path}:{n}: expected a JSON object, found {type(row).__name__}")
                rows.append((n, row))
        except JsonFileError as exc:
            raise EvalDataError(str(exc)) from None
        except UnicodeDecodeError as exc:
            raise EvalDataError(f"{path}: not UTF-8 text ({exc.reason})") from None
    return rows


def load_patterns(build: Path) -> dict[str, dict]:
    """`patterns.json` of a build: pattern id -> {name, family, dimension, checklist}.

    Args:
        build: the build folder.
    """
    path = Build(build).patterns
    if not path.is_file():
        raise EvalDataError(f"{path}: no such file (is {build} a folder written by `humanllm compile`?)")
    from ..runtime.store import JsonFileError, read_json_object

    try:
        data = read_json_object(path)
    except JsonFileError as exc:
        raise EvalDataError(f"{exc} (an object keyed by pattern id)") from None
    for pid, info in data.items():
        if not isinstance(info, dict) or not isinstance(info.get("checklist"), list):
            raise EvalDataError(f"{path}: pattern `{pid}` has no `checklist` list")
        if not all(isinstance(item, str) for item in info["checklist"]):
            raise EvalDataError(f"{path}: pattern `{pid}`: every `checklist` item must be a string")
    return data


# what evaluation reads of a record, and the JSON type each must have
_SHAPES = {"id": (str, "a string"), "patterns": (list, "a list"), "characters": (list, "a list of objects"),
           "char2pattern": (dict, "an object of name -> list of pattern ids"), "conversation": (list, "a list of turns"),
           "checklist": (dict, "an object of name -> list of items"), "background": (str, "a string")}


def check_record(record: dict, where: str) -> None:
    """Raise EvalDataError if the record lacks what evaluation reads, or holds it in another shape.

    Args:
        record: one row of `splits/<split>.jsonl`.
        where: `FILE:LINE` for the message.
    """
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing:
        raise EvalDataError(f"{where}: record lacks {', '.join(f'`{k}`' for k in missing)}")
    for key, (kind, words) in _SHAPES.items():
        if not isinstance(record[key], kind):
            raise EvalDataError(f"{where}: `{key}` must be {words}, not {_json_type(record[key])}")
    for i, c in enumerate(record["characters"], 1):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str):
            raise EvalDataError(f"{where}: character {i} must be an object with a `name` string")
    names = {c["name"] for c in record["characters"]}
    for name, pids in record["char2pattern"].items():
        if name not in names:
            raise EvalDataError(f"{where}: char2pattern names `{name}`, who is not among the characters")
        if not isinstance(pids, list) or not all(isinstance(p, str) for p in pids):
            raise EvalDataError(f"{where}: char2pattern[`{name}`] must be a list of pattern ids, not {_json_type(pids)}")
    for name, items in record["checklist"].items():
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise EvalDataError(f"{where}: checklist[`{name}`] must be a list of strings, not {_json_type(items)}")
    for i, turn in enumerate(record["conversation"], 1):
        if not isinstance(turn, dict) or not isinstance(turn.get("char"), str) or not isinstance(turn.get("content"), str):
            raise EvalDataError(f"{where}: conversation turn {i} must be an object with `char` and `content` strings")


def _json_type(value) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def load_records(build: Path, splits: tuple[str, ...]) -> list[dict]:
    """The records of the chosen splits (an empty or absent split file gives none).

    Args:
        build: the build folder.
        splits: split names, as `splits_for` gives them.
    """
    if not Build(build).splits.is_dir():
        raise EvalDataError(f"{Build(build).splits}: no such folder (is {build} a folder written by `humanllm compile`?)")
    records, seen = [], {}
    for split in splits:
        path = Build(build).split(split)
        if not path.exists():
            continue
        for n, row in numbered_rows(path):
            where = f"{path}:{n}"
            row = map_shape(row)  # records store name-keyed maps as lists; either shape reads
            check_record(row, where)
            if row["id"] in seen:  # counted twice, its characters judged twice: refuse
                raise EvalDataError(f"{where}: record id `{row['id']}` repeats the record at {seen[row['id']]}")
            seen[row["id"]] = where
            row.setdefault("split", split)
            records.append(row)
    return records


def items_for(record: dict, character: str, patterns: dict[str, dict]) -> tuple[Item, ...]:
    """The checklist of one sample: ipe items of each of the character's patterns, then mpd items.

    Args:
        record: the scenario record.
        character: the target character's name.
        patterns: `patterns.json` of the build.
    """
    items = []
    for pid in record["char2pattern"].get(character, []):
        if pid not in patterns:
            raise EvalDataError(f"record `{record['id']}`: pattern `{pid}` is not in patterns.json")
        items += [Item("ipe", text, pid) for text in patterns[pid]["checklist"]]
    items += [Item("mpd", text, None) for text in record.get("checklist", {}).get(character, [])]
    return tuple(items)


def samples_of(records: list[dict], patterns: dict[str, dict]) -> list[Sample]:
    """One sample per target character (a character carrying patterns) of every record.

    Args:
        records: scenario records.
        patterns: `patterns.json` of the build.
    """
    result = []
    for record in records:
        for c in record["characters"]:
            own = tuple(record["char2pattern"].get(c["name"], []))
            if own:
                result.append(Sample(sample_id(record["id"], c["name"]), record, c["name"], own,
                                     items_for(record, c["name"], patterns)))
    return result
