"""TRL's SFTTrainer set up from a TrainConfig: data, template, model, evaluation, logging, saving.

`build(cfg)` returns a ready `Setup` (trainer and what went into it) without training, which
tests use to look at the prepared data; `run(cfg)` trains, evaluates and saves. Distribution
(DDP, FSDP, several nodes) is accelerate's: run `accelerate launch -m humanllm_dsl train ...`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import attrs

from . import config as c
from . import data as d
from .log import LOG_NAME, JsonlLogger
from .template import TemplateError, stop_token_trained, training_template, verify


class ModelError(ValueError):
    """The model or tokenizer cannot be loaded (a usage error: exit code 2)."""


@attrs.frozen
class Setup:
    trainer: object
    tokenizer: object
    template_source: str
    mix: tuple
    eval_splits: tuple[str, ...]
    warnings: tuple[str, ...]


def is_local(model: str) -> bool:
    return Path(model).exists()


def load_tokenizer(cfg: c.TrainConfig):
    from transformers import AutoTokenizer

    return _load(AutoTokenizer.from_pretrained, cfg.model, "tokenizer")


def load_model(cfg: c.TrainConfig):
    import torch
    from transformers import AutoModelForCausalLM

    kwargs = {"dtype": "auto" if cfg.model_dtype == "auto" else getattr(torch, cfg.model_dtype)}
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    return _load(AutoModelForCausalLM.from_pretrained, cfg.model, "model", **kwargs)


def _load(loader, model: str, what: str, **kwargs):
    local = is_local(model)
    if local and not Path(model).is_dir():
        raise ModelError(f"--model {model}: a local model must be a folder (as written by save_pretrained)")
    try:
        return loader(model, local_files_only=local, **kwargs)
    except (OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if local:
            raise ModelError(f"--model {model}: cannot load the {what} from the local folder: {reason}") from None
        raise ModelError(f"--model {model}: cannot load the {what}: there is no local folder by that name, and "
                         f"the Hugging Face hub is unreachable or has no such model ({reason})") from None


def precision(cfg: c.TrainConfig) -> str:
    if cfg.precision != "auto":
        return cfg.precision
    import torch

    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"


def sft_kwargs(cfg: c.TrainConfig, has_eval: bool, progress: bool) -> dict:
    """The SFTConfig arguments for `cfg` (what `humanllm train` sets, beyond TRL's defaults)."""
    import dataclasses

    from trl import SFTConfig

    p = precision(cfg)
    names = {f.name for f in dataclasses.fields(SFTConfig)}  # transformers 5 renamed gradient_checkpointing
    ckpt = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    return {
        ckpt: cfg.gradient_checkpointing,
        "output_dir": cfg.out, "num_train_epochs": cfg.epochs, "max_steps": cfg.max_steps,
        "learning_rate": cfg.learning_rate, "lr_scheduler_type": cfg.scheduler, "warmup_steps": cfg.warmup_ratio,
        "weight_decay": cfg.weight_decay, "per_device_train_batch_size": cfg.batch_size,
        "per_device_eval_batch_size": cfg.batch_size, "gradient_accumulation_steps": cfg.grad_accum,
        "max_length": cfg.max_length, "packing": cfg.packing, "assistant_only_loss": True,
        "bf16": p == "bf16", "fp16": p == "fp16",
        "logging_steps": cfg.logging_steps, "logging_first_step": True,
        "eval_strategy": "steps" if has_eval and cfg.eval_steps else "no", "eval_steps": cfg.eval_steps or None,
        "save_strategy": "steps", "save_steps": cfg.save_steps, "save_total_limit": cfg.save_total_limit,
        "seed": cfg.seed, "data_seed": cfg.seed, "report_to": cfg.report_to, "disable_tqdm": not progress,
        "dataloader_pin_memory": _has_gpu(),
    }


def resume_path(cfg: c.TrainConfig) -> str | None:
    if cfg.resume is None:
        return None
    if cfg.resume == "latest":
        from transformers.trainer_utils import get_last_checkpoint

        found = get_last_checkpoint(cfg.out) if Path(cfg.out).is_dir() else None
        if found is None:
            raise c.ConfigError(f"--resume: no checkpoint-* folder in {cfg.out} to resume from")
        return found
    if not (Path(cfg.resume) / "trainer_state.json").is_file():
        raise c.ConfigError(f"--resume {cfg.resume}: not a checkpoint folder (no trainer_state.json)")
    return cfg.resume


def build(cfg: c.TrainConfig, *, console: bool = True, progress: bool = False) -> Setup:
    """Load data, tokenizer, template and model; return the SFTTrainer, not yet trained."""
    if not progress:
        _quiet()
    splits = d.load_build(Path(cfg.build_dir))
    sources = [(m.source, d.load_source(m.source), m.weight) for m in cfg.mix]
    train, parts = d.mix(splits[d.TRAIN_SPLIT], cfg.data_weight, sources, cfg.seed)
    evals = {s: d.to_dataset(splits[s]) for s in d.EVAL_SPLITS if splits[s]}

    tokenizer = load_tokenizer(cfg)
    template, source = training_template(tokenizer, cfg.chat_template)
    verify(tokenizer, template)
    tokenizer.chat_template = template  # saved with the model, so the trained model chats the same way
    notes = [] if stop_token_trained(tokenizer, template) else [
        "the chat template leaves the end-of-turn token out of the loss: the model may not learn to stop"]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = load_model(cfg)

    from trl import SFTConfig, SFTTrainer

    from .lora import peft_config

    args = SFTConfig(**sft_kwargs(cfg, bool(evals), progress))
    try:
        trainer = SFTTrainer(model=model, args=args, train_dataset=d.to_dataset(train),
                             eval_dataset=evals or None, processing_class=tokenizer,
                             peft_config=peft_config(cfg.lora) if cfg.lora else None,
                             callbacks=[JsonlLogger(Path(cfg.out) / LOG_NAME, console=console and not progress)])
    except RuntimeError as exc:
        if "no assistant tokens" in str(exc):
            raise TemplateError(str(exc)) from None
        raise
    except ValueError as exc:
        if "Target modules" in str(exc) or "target_modules" in str(exc):
            raise c.ConfigError(f"lora target_modules: {exc}") from None
        raise
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # our logger prints instead
    if len(trainer.train_dataset) == 0:
        raise d.DataError(f"no training sample has a trained token within --max-length {cfg.max_length} "
                          "(the system prompt and first user turn fill it); raise --max-length")
    return Setup(trainer, tokenizer, source, tuple(parts), tuple(evals), tuple(notes))


def run(cfg: c.TrainConfig, *, console: bool = True, progress: bool = False) -> dict:
    """Train, evaluate on the evaluation splits, save the model (or adapter, or merged model) to
    `cfg.out` with its tokenizer and `train_config.yaml`. Returns a summary."""
    resume = resume_path(cfg)
    setup = build(cfg, console=console, progress=progress)
    trainer = setup.trainer
    out = Path(cfg.out)
    if trainer.is_world_process_zero():
        c.save(cfg, out / c.CONFIG_NAME)
        if console:
            _print_setup(cfg, setup)
    result = trainer.train(resume_from_checkpoint=resume)
    step = trainer.state.global_step
    done = [h for h in trainer.state.log_history if h.get("step") == step and any(k.startswith("eval_") for k in h)]
    final_eval = {k: v for h in done for k, v in h.items()} if done else (
        trainer.evaluate() if setup.eval_splits else {})
    adapter_dir = out / "adapter" if cfg.lora and cfg.lora.merge else out
    trainer.save_model(str(adapter_dir))
    if trainer.is_world_process_zero():
        setup.tokenizer.save_pretrained(str(out))
        if cfg.lora and cfg.lora.merge:
            from .lora import merge_adapter

            merge_adapter(cfg.model, adapter_dir, out, dtype=cfg.model_dtype, local_only=is_local(cfg.model))
    trainer.accelerator.wait_for_everyone()
    return {"global_step": trainer.state.global_step, "train_loss": result.training_loss,
            "eval": {k[len("eval_"):-len("_loss")]: v for k, v in final_eval.items() if k.endswith("_loss")},
            "out": str(out), "adapter": str(adapter_dir) if cfg.lora else None}


def _print_setup(cfg: c.TrainConfig, setup: Setup) -> None:
    mix = ", ".join(f"{p.name} {p.used} of {p.available} (weight {p.weight:g})" for p in setup.mix)
    print(f"train: {len(setup.trainer.train_dataset)} sequences after tokenising ({mix}); "
          f"eval: {', '.join(setup.eval_splits) or 'none (the build has no evaluation samples)'}")
    print(f"chat template: {setup.template_source}; loss on the trained character's turns only")
    print(f"model: {cfg.model}{' + LoRA r=%d' % cfg.lora.r if cfg.lora else ''}; lr {cfg.learning_rate:g}, "
          f"precision {precision(cfg)}, max length {cfg.max_length}, packing {'on' if cfg.packing else 'off'}")
    for note in setup.warnings:
        print(f"warning: {note}")
    given, kept = sum(p.used for p in setup.mix), len(setup.trainer.train_dataset)
    if not cfg.packing and kept < given:
        print(f"warning: {given - kept} of {given} training samples were dropped: no trained turn starts within "
              f"--max-length {cfg.max_length} tokens; raise --max-length, or compile with --max-tokens to cut long "
              f"conversations into windows", file=sys.stderr)


def _quiet() -> None:
    """No dataset-map or weight-loading progress bars (the log lines say what happens)."""
    import datasets
    from transformers.utils import logging

    datasets.disable_progress_bars()
    logging.disable_progress_bar()


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()
