"""LoRA through peft: the adapter config, and merging a saved adapter into its base model."""

from __future__ import annotations

from pathlib import Path

from .config import LoraSettings


def peft_config(settings: LoraSettings):
    from peft import LoraConfig

    targets = settings.target_modules
    return LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                      target_modules="all-linear" if targets == ("all-linear",) else list(targets),
                      task_type="CAUSAL_LM")


def merge_adapter(base_model: str, adapter_dir: Path, out: Path, *, dtype: str, local_only: bool) -> None:
    """Load the base model fresh (on the CPU, whatever the training used), apply the adapter,
    merge it into the weights and save a plain model that loads without peft."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_model, dtype=getattr(torch, dtype) if dtype != "auto" else "auto",
                                                local_files_only=local_only)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out)
