"""Supervised fine-tuning of a HumanLLM model with TRL, from a compiled dataset.

Importing this package imports no torch: `config` and `data` are light; `trainer`, `template`,
`lora` and `log` import torch/transformers/trl/peft and are loaded when training starts.

    from humanllm_dsl.train import TrainConfig
    from humanllm_dsl.train.trainer import run
    run(TrainConfig(build_dir="build", model="path/to/Qwen3-8B", out="runs/h8b"))
"""

from .config import ConfigError, LoraSettings, MixSource, TrainConfig
from .data import DataError

__all__ = ["ConfigError", "DataError", "LoraSettings", "MixSource", "TrainConfig"]
