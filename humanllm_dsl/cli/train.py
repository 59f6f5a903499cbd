"""The `train` command: supervised fine-tuning with TRL on a compiled dataset's chat export.

torch, transformers, trl and peft are imported only inside `cmd_train`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from ..compiler.loader import UsageError
from ..train import config as c
from ..trackers import TRACKERS, require
from .common import EXIT_OK

S = argparse.SUPPRESS  # flags left out do not override the config file

DESCRIPTION = """\
Fine-tune a causal language model on BUILD_DIR/sft/messages_train.jsonl (written by `humanllm
compile`) with TRL's SFTTrainer. The loss covers only the trained character's turns (the assistant
side); the other characters' turns and the system prompt are context. Evaluation loss on id_eval,
ood_eval and mixed_eval (those that have samples) is logged every --eval-steps and at the end.
Writes to OUT: the model (or LoRA adapter) and tokenizer, checkpoint-N/ folders,
train_log.jsonl, and train_config.yaml, which replays the run with --config.

Settings come from the defaults, then --config FILE (YAML or TOML, keys as the long options with
_ for -), then the flags given here. Nothing is downloaded: --model is a local folder, or a hub
name only where the hub is reachable. Several GPUs or nodes: run it under `accelerate launch`
(see docs/training.md)."""

EPILOG = """\
examples:
  humanllm train build --model models/Qwen3-8B -o runs/h8b
  humanllm train build --model models/Qwen3-8B -o runs/h8b-lora --lora --lora-r 32 --merge
  humanllm train build --model models/Qwen3-8B -o runs/mix --mix reasoning.jsonl:4 --mix roleplay/:2 --data-weight 4
  humanllm train --config runs/h8b/train_config.yaml --resume
  accelerate launch --config_file configs/accelerate_fsdp.yaml -m humanllm_dsl train build --model M -o OUT

exit codes: 0 trained and saved; 1 bad input data (build, --mix source, chat template); 2 usage
errors (flags, config file, model path)."""


def _targets(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="fine-tune a model on a compiled dataset (TRL SFT)", description=DESCRIPTION,
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("build_dir", nargs="?", default=S, metavar="BUILD_DIR",
                   help="a folder written by `humanllm compile` (may come from --config instead)")
    p.add_argument("--model", default=S, metavar="PATH_OR_NAME", help="the base model: a local folder (or a hub name)")
    p.add_argument("-o", "--out", default=S, metavar="OUT", help="output folder")
    p.add_argument("--config", type=Path, metavar="FILE", help="settings file (.yaml/.yml/.toml); flags override it")

    g = p.add_argument_group("schedule")
    g.add_argument("--epochs", type=float, default=S, metavar="N", help="passes over the training mix (default 3)")
    g.add_argument("--max-steps", type=int, default=S, metavar="N",
                   help="stop after N optimiser steps; overrides --epochs (default -1: off)")
    g.add_argument("--lr", type=float, default=S, metavar="LR",
                   help="peak learning rate (default 1e-5, or 2e-4 with --lora)")
    g.add_argument("--scheduler", default=S, choices=c.SCHEDULERS,
                   help="learning-rate schedule (default cosine)")
    g.add_argument("--warmup-ratio", type=float, default=S, metavar="R",
                   help="share of the steps spent warming up (default 0.03)")
    g.add_argument("--weight-decay", type=float, default=S, metavar="W", help="AdamW weight decay (default 0)")
    g.add_argument("--seed", type=int, default=S, help="seed for the mix, the shuffling and the initialisation (default 42)")

    g = p.add_argument_group("batches and sequences")
    g.add_argument("--batch-size", type=int, default=S, metavar="B", help="sequences per device per step (default 4)")
    g.add_argument("--grad-accum", type=int, default=S, metavar="K", help="gradient accumulation steps (default 4)")
    g.add_argument("--max-length", type=int, default=S, metavar="T",
                   help="tokens per sequence; longer samples are cut at the end (default 4096). "
                        "Compile with --max-tokens to split long conversations into windows instead")
    g.add_argument("--packing", action=argparse.BooleanOptionalAction, default=S,
                   help="pack several samples into each --max-length sequence, kept apart by position ids "
                        "(default off)")

    g = p.add_argument_group("data mix")
    g.add_argument("--mix", action="append", default=S, metavar="SOURCE:WEIGHT",
                   help="mix in another chat dataset (a .jsonl/.json file of `messages` or ShareGPT "
                        "`conversations`, or a save_to_disk folder) with a relative weight; repeatable")
    g.add_argument("--data-weight", type=float, default=S, metavar="W",
                   help="the HumanLLM data's weight in the mix (default 1): the paper's 4:4:2 is "
                        "--data-weight 4 --mix reasoning.jsonl:4 --mix roleplay.jsonl:2")

    g = p.add_argument_group("LoRA (peft)")
    g.add_argument("--lora", action="store_true", default=S, help="train a LoRA adapter instead of all weights")
    g.add_argument("--lora-r", type=int, default=S, metavar="R", help="adapter rank (default 16)")
    g.add_argument("--lora-alpha", type=int, default=S, metavar="A", help="adapter scale alpha (default 32)")
    g.add_argument("--lora-dropout", type=float, default=S, metavar="P", help="adapter dropout (default 0.05)")
    g.add_argument("--lora-targets", type=_targets, default=S, dest="lora_target_modules", metavar="M1,M2",
                   help="modules to adapt (default the attention and MLP projections; `all-linear` for every linear layer)")
    g.add_argument("--merge", action="store_true", default=S, dest="lora_merge",
                   help="also merge the adapter into the base model: OUT holds the merged model, OUT/adapter the adapter")

    g = p.add_argument_group("model and precision")
    g.add_argument("--precision", default=S, choices=c.PRECISIONS,
                   help="mixed precision (default auto: bf16 on a GPU that has it, else fp32)")
    g.add_argument("--model-dtype", default=S, choices=c.MODEL_DTYPES,
                   help="dtype the weights are loaded in (default float32; bfloat16 halves memory)")
    g.add_argument("--attn", default=S, dest="attn_implementation", metavar="IMPL",
                   help="attention implementation, e.g. sdpa, flash_attention_2 (default: transformers' choice)")
    g.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=S,
                   help="recompute activations in the backward pass to save memory (default on)")
    g.add_argument("--chat-template", default=S, metavar="FILE.jinja",
                   help="a chat template with {%% generation %%} markers, for tokenizers humanllm cannot patch")

    g = p.add_argument_group("logging, checkpoints, resuming")
    g.add_argument("--logging-steps", type=int, default=S, metavar="N", help="log the training loss every N steps (default 10)")
    g.add_argument("--eval-steps", type=int, default=S, metavar="N",
                   help="evaluation loss every N steps (default 100; 0: only at the end)")
    g.add_argument("--save-steps", type=int, default=S, metavar="N", help="checkpoint every N steps (default 500)")
    g.add_argument("--save-total-limit", type=int, default=S, metavar="N", help="checkpoints kept (default 3)")
    g.add_argument("--resume", nargs="?", const="latest", default=S, metavar="CHECKPOINT",
                   help="continue from the newest checkpoint in OUT, or from CHECKPOINT; the step count carries on")
    g.add_argument("--report-to", default=S, choices=TRACKERS,
                   help="send the training and evaluation losses to an experiment tracker too (TRL's report_to; "
                        "tensorboard writes under OUT/runs; default none)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar: one plain line per log event")
    p.set_defaults(func=cmd_train)


def resolve(args) -> object:
    """The TrainConfig from the config file and the flags given (raises ConfigError)."""
    flags = {k: v for k, v in vars(args).items() if k not in ("config", "func", "command", "no_progress")}
    if "mix" in flags:
        flags["mix"] = [c.unstructure(c.MixSource.parse(m)) for m in flags["mix"]]
    file_data = c.read_file(args.config) if args.config else {}
    lora_flags = [k for k in flags if k.startswith("lora_")]
    if lora_flags and not flags.get("lora") and not file_data.get("lora"):
        flag = {"lora_merge": "--merge", "lora_target_modules": "--lora-targets"}.get(lora_flags[0])
        raise c.ConfigError(f"{flag or '--' + lora_flags[0].replace('_', '-')} needs --lora")
    return c.merge(file_data, flags, str(args.config) if args.config else "command line")


def cmd_train(args) -> int:
    """Bad settings and bad data go up as errors (ConfigError, DataError, ...) to the table in `cli`."""
    from ..train.data import train_file

    cfg = resolve(args)
    if not Path(cfg.build_dir).is_dir():
        raise UsageError(f"BUILD_DIR {cfg.build_dir} does not exist")
    train_file(cfg.build_dir)  # before torch is imported: a wrong folder fails at once
    require(cfg.report_to)  # ... and so does a tracker whose package is missing

    from ..runtime.outdir import claim, lead_process
    from ..train.trainer import run

    with claim(Path(cfg.out), "train") if lead_process() else contextlib.nullcontext():
        summary = run(cfg, console=True, progress=not args.no_progress and sys.stderr.isatty())
    evals = ", ".join(f"{k} {v:.4f}" for k, v in summary["eval"].items())
    print(f"trained {summary['global_step']} steps, train loss {summary['train_loss']:.4f}"
          f"{'; eval loss: ' + evals if evals else ''}")
    saved = "merged model" if cfg.lora and cfg.lora.merge else "LoRA adapter" if cfg.lora else "model"
    print(f"saved the {saved} to {cfg.out}/ (log: train_log.jsonl, config: train_config.yaml)")
    return EXIT_OK
