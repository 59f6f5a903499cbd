"""Training data: the compiled chat-messages export, other chat datasets to mix in, and the mix.

A chat sample is a list of `{"role", "content"}` messages (system first if present, at least one
assistant turn). Sources to mix in may be JSON-lines or JSON files holding chat `messages` or
ShareGPT `conversations` (`from`/`value`, optional `system`), or a folder written by
`datasets.save_to_disk` with either column. No torch here.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from ..compiler.model import EVAL_SPLITS, TRAIN_SPLIT
from ..runtime.layout import Build

ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


class DataError(ValueError):
    """Bad input data (exit code 1). The message names the file and, where it can, the line."""


Messages = list[dict]


def to_messages(record: object, where: str) -> Messages:
    """The chat messages of one record (chat `messages` or ShareGPT form), checked."""
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if "messages" in record:
        raw = record["messages"]
        if not isinstance(raw, list):
            raise DataError(f"{where}: `messages` must be a list")
        messages = [m if not isinstance(m, dict) else {"role": m.get("role"), "content": m.get("content")}
                    for m in raw]
    elif "conversations" in record:
        raw = record["conversations"]
        if not isinstance(raw, list):
            raise DataError(f"{where}: `conversations` must be a list")
        messages = [{"role": "system", "content": record["system"]}] if record.get("system") else []
        for k, turn in enumerate(raw):
            if not isinstance(turn, dict) or turn.get("from") not in SHAREGPT_ROLES:
                raise DataError(f"{where}: conversations[{k}] needs `from` (human/gpt/system) and `value`")
            messages.append({"role": SHAREGPT_ROLES[turn["from"]], "content": turn.get("value")})
    else:
        raise DataError(f"{where}: no `messages` (chat form) or `conversations` (ShareGPT form)")
    check_messages(messages, where)
    return messages


def check_messages(messages: Sequence, where: str) -> None:
    if not messages:
        raise DataError(f"{where}: no messages")
    for k, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise DataError(f"{where}: message {k} needs a `role` of {', '.join(ROLES)}")
        if not isinstance(m.get("content"), str):
            raise DataError(f"{where}: message {k} ({m['role']}) has no text `content`")
        if m["role"] == "system" and k:
            raise DataError(f"{where}: message {k} is a system message after the first")
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError(f"{where}: no assistant message, so nothing to train on")


def read_chat_file(path: Path) -> list[Messages]:
    """Chat samples from a `.jsonl` file (one record a line) or a `.json` file (a list of records)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    if path.suffix == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON list of records")
        return [to_messages(r, f"{path}: record {k}") for k, r in enumerate(rows)]
    from ..runtime.store import JsonFileError, json_lines

    samples = []
    try:
        for lineno, record in json_lines(text.splitlines(), path):
            where = f"{path}:{lineno}" + (f" (record {record['id']})" if isinstance(record, dict) and "id" in record else "")
            samples.append(to_messages(record, where))
    except JsonFileError as exc:
        raise DataError(str(exc)) from None
    return samples


def train_file(build_dir: Path) -> Path:
    """BUILD_DIR/sft/messages_train.jsonl; a DataError if the folder is not a compiled dataset."""
    train = Build(Path(build_dir)).sft_messages(TRAIN_SPLIT)
    if not train.is_file():
        raise DataError(f"{build_dir} is not a compiled dataset: {train} is missing "
                        "(run `humanllm compile SPECS -o BUILD_DIR` first)")
    return train


def load_build(build_dir: Path) -> dict[str, list[Messages]]:
    """The SFT export of a compiled dataset: `train` plus the evaluation splits (possibly empty)."""
    train = train_file(build_dir)
    splits = {TRAIN_SPLIT: read_chat_file(train)}
    if not splits[TRAIN_SPLIT]:
        raise DataError(f"{train} holds no samples: there is nothing to train on")
    for split in EVAL_SPLITS:
        path = Build(Path(build_dir)).sft_messages(split)
        splits[split] = read_chat_file(path) if path.is_file() else []
    return splits


def load_source(source: str) -> list[Messages]:
    """A chat dataset to mix in: a `.jsonl`/`.json` file or a `save_to_disk` folder."""
    path = Path(source)
    if path.is_file():
        if path.suffix not in (".jsonl", ".json"):
            raise DataError(f"--mix {source}: a file source must be .jsonl or .json")
        samples = read_chat_file(path)
    elif path.is_dir():
        samples = _load_disk(path)
    else:
        raise DataError(f"--mix {source}: no such file or folder")
    if not samples:
        raise DataError(f"--mix {source}: holds no samples")
    return samples


def _load_disk(path: Path) -> list[Messages]:
    import datasets

    try:
        data = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise DataError(f"--mix {path}: not a dataset saved with `save_to_disk`: {exc}") from None
    if isinstance(data, datasets.DatasetDict):
        if "train" not in data and len(data) != 1:
            raise DataError(f"--mix {path}: a DatasetDict needs a `train` split (has {', '.join(data)})")
        data = data["train"] if "train" in data else next(iter(data.values()))
    return [to_messages(row, f"{path}: row {k}") for k, row in enumerate(data)]


@attrs.frozen
class MixPart:
    name: str
    weight: float
    available: int
    used: int


def mix(main: list[Messages], main_weight: float, sources: Iterable[tuple[str, list[Messages], float]],
        seed: int) -> tuple[list[Messages], list[MixPart]]:
    """Mix by relative weight: every HumanLLM sample is used once, and a source of weight w gets
    round(len(main) * w / main_weight) samples, drawn without repetition while it has enough,
    repeated (whole passes, then a sample) when it has fewer. The result is shuffled (seeded)."""
    rng = random.Random(seed)
    out = list(main)
    parts = [MixPart("humanllm", main_weight, len(main), len(main))]
    for name, samples, weight in sources:
        want = max(1, round(len(main) * weight / main_weight))
        full, rest = divmod(want, len(samples))
        chosen = samples * full + rng.sample(samples, rest)
        out.extend(chosen)
        parts.append(MixPart(name, weight, len(samples), want))
    rng.shuffle(out)
    return out, parts


def to_dataset(samples: list[Messages]):
    """A `datasets.Dataset` with one `messages` column, as TRL's SFTTrainer reads it."""
    import datasets

    return datasets.Dataset.from_list([{"messages": m} for m in samples])
