"""The training log: one JSON object a line in OUT/train_log.jsonl, and short console lines.

Each line has `kind` ("train", "eval" or "summary"), `step` and `epoch`, then the trainer's
figures: `loss`, `learning_rate`, `grad_norm` for training; `id_eval_loss`, `ood_eval_loss`,
`mixed_eval_loss` (and their runtimes) for evaluation; `train_loss`, `train_runtime`, ... at the end.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from transformers import TrainerCallback

LOG_NAME = "train_log.jsonl"


def entry(logs: dict, step: int, epoch: float | None) -> dict:
    """A log line: `eval_<split>_<metric>` keys become `<split>_<metric>`."""
    kind = "summary" if "train_runtime" in logs else "eval" if any(k.startswith("eval_") for k in logs) else "train"
    row = {"kind": kind, "step": step, "epoch": epoch}  # the trainer's logs carry `epoch` too
    for key, value in logs.items():
        row[key[len("eval_"):] if key.startswith("eval_") else key] = value
    if row["epoch"] is not None:
        row["epoch"] = round(row["epoch"], 4)
    return row


def console_line(row: dict, max_steps: int) -> str:
    head = f"step {row['step']}/{max_steps}"
    if row["kind"] == "train":
        return f"{head}  loss {row.get('loss', float('nan')):.4f}  lr {row.get('learning_rate', 0):.2e}"
    if row["kind"] == "eval":
        losses = [f"{k[:-5]} {v:.4f}" for k, v in row.items() if k.endswith("_loss")]
        return f"{head}  eval loss: {', '.join(losses)}"
    return f"done: {row['step']} steps, mean train loss {row.get('train_loss', float('nan')):.4f}, " \
           f"{row.get('train_runtime', 0):.1f}s"


class JsonlLogger(TrainerCallback):
    """Appends every log event to `path`; prints a short line for it when `console` is set.
    Only the main process writes (under `accelerate launch` every process runs the callback)."""

    def __init__(self, path: Path, console: bool = True) -> None:
        self.path = Path(path)
        self.console = console

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or not state.is_world_process_zero:
            return
        row = entry(logs, state.global_step, state.epoch)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        if self.console:
            print(console_line(row, state.max_steps), file=sys.stdout, flush=True)
