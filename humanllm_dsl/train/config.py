"""The training configuration: one frozen attrs class, read from and written to YAML or TOML.

Precedence: built-in defaults < config file (`--config`) < command-line flags. The resolved
configuration is saved beside the model as `train_config.yaml`, so `humanllm train --config
OUT/train_config.yaml` replays the run. Keys are the long option names with `_` for `-`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import cattrs

from ..trackers import TRACKERS

CONFIG_NAME = "train_config.yaml"
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
MODEL_DTYPES = ("float32", "bfloat16", "float16", "auto")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup")
FULL_LR, LORA_LR = 1e-5, 2e-4
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class ConfigError(ValueError):
    """A bad configuration value or file (a usage error: exit code 2)."""


def _positive(inst, attribute, value) -> None:
    if value is not None and not value > 0:
        raise ConfigError(f"`{attribute.name}` must be positive, got {value!r}")


def _at_least(n: int):
    def check(inst, attribute, value) -> None:
        if value < n:
            raise ConfigError(f"`{attribute.name}` must be at least {n}, got {value!r}")
    return check


def _one_of(choices: tuple[str, ...]):
    def check(inst, attribute, value) -> None:
        if value not in choices:
            raise ConfigError(f"`{attribute.name}` must be one of {', '.join(choices)}; got {value!r}")
    return check


@attrs.frozen
class LoraSettings:
    """A LoRA adapter (peft). `merge` also saves the base model with the adapter merged in."""
    r: int = attrs.field(default=16, validator=_at_least(1))
    alpha: int = attrs.field(default=32, validator=_at_least(1))
    dropout: float = attrs.field(default=0.05, validator=attrs.validators.and_(
        attrs.validators.ge(0.0), attrs.validators.lt(1.0)))
    target_modules: tuple[str, ...] = attrs.field(default=ALL_LINEAR, converter=tuple)
    merge: bool = False


@attrs.frozen
class MixSource:
    """Another chat dataset mixed into the training set with a relative `weight`."""
    source: str
    weight: float = attrs.field(validator=_positive)

    @classmethod
    def parse(cls, text: str) -> MixSource:
        """`SOURCE:WEIGHT`, e.g. `data/reasoning.jsonl:4` (the last colon splits)."""
        source, sep, weight = text.rpartition(":")
        if not sep or not source:
            raise ConfigError(f"--mix `{text}`: expected SOURCE:WEIGHT, e.g. reasoning.jsonl:4")
        try:
            value = float(weight)
        except ValueError:
            raise ConfigError(f"--mix `{text}`: the weight `{weight}` is not a number") from None
        if not value > 0:
            raise ConfigError(f"--mix `{text}`: the weight must be positive")
        return cls(source, value)


@attrs.frozen
class TrainConfig:
    """Everything one `humanllm train` run needs. See docs/training.md for each field."""
    build_dir: str
    model: str
    out: str
    epochs: float = attrs.field(default=3.0, validator=_positive)
    max_steps: int = -1  # > 0: stop after this many optimiser steps (overrides epochs)
    lr: float | None = attrs.field(default=None, validator=_positive)  # None: 1e-5 full, 2e-4 LoRA
    max_length: int = attrs.field(default=4096, validator=_at_least(16))
    packing: bool = False
    batch_size: int = attrs.field(default=4, validator=_at_least(1))
    grad_accum: int = attrs.field(default=4, validator=_at_least(1))
    lora: LoraSettings | None = None
    mix: tuple[MixSource, ...] = attrs.field(default=(), converter=tuple)
    data_weight: float = attrs.field(default=1.0, validator=_positive)
    precision: str = attrs.field(default="auto", validator=_one_of(PRECISIONS))
    model_dtype: str = attrs.field(default="float32", validator=_one_of(MODEL_DTYPES))
    attn_implementation: str | None = None
    gradient_checkpointing: bool = True
    scheduler: str = attrs.field(default="cosine", validator=_one_of(SCHEDULERS))
    warmup_ratio: float = attrs.field(default=0.03, validator=attrs.validators.and_(
        attrs.validators.ge(0.0), attrs.validators.lt(1.0)))
    weight_decay: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    logging_steps: int = attrs.field(default=10, validator=_at_least(1))
    eval_steps: int = attrs.field(default=100, validator=_at_least(0))  # 0: evaluate only at the end
    save_steps: int = attrs.field(default=500, validator=_at_least(1))
    save_total_limit: int | None = 3
    seed: int = 42
    chat_template: str | None = None
    resume: str | None = None  # a checkpoint folder, or "latest" (the newest checkpoint in `out`)
    report_to: str = attrs.field(default="none", validator=_one_of(TRACKERS))  # TRL's experiment tracker

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return LORA_LR if self.lora is not None else FULL_LR


converter = cattrs.Converter(forbid_extra_keys=True)
FIELDS = tuple(a.name for a in attrs.fields(TrainConfig))
LORA_FIELDS = tuple(a.name for a in attrs.fields(LoraSettings))


# names other tools use for the same settings, for "did you mean"
ALIASES = {"rank": "r", "lora_r": "r", "lora_alpha": "alpha", "lora_dropout": "dropout", "learning_rate": "lr",
           "num_train_epochs": "epochs", "max_seq_length": "max_length", "per_device_train_batch_size": "batch_size",
           "gradient_accumulation_steps": "grad_accum", "output_dir": "out", "model_name_or_path": "model"}


def _check_keys(data: Mapping, known: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in known:
            alias = ALIASES.get(str(key))
            close = [alias] if alias in known else difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise ConfigError(f"{where}: unknown key `{key}`{hint}; known keys: {', '.join(known)}")


def normalise(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check keys and accept the friendly forms: `mix` items as "SOURCE:WEIGHT" strings, `lora: true`."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a table of settings, got {type(data).__name__}")
    _check_keys(data, FIELDS, where)
    out = dict(data)
    if out.get("lora") is True:
        out["lora"] = {}
    elif out.get("lora") is False:
        out["lora"] = None
    if isinstance(out.get("lora"), Mapping):
        _check_keys(out["lora"], LORA_FIELDS, f"{where}: lora")
    if "mix" in out:
        if not isinstance(out["mix"], list | tuple):
            raise ConfigError(f"{where}: `mix` must be a list of SOURCE:WEIGHT strings or {{source, weight}} tables")
        try:
            out["mix"] = [attrs.asdict(MixSource.parse(m)) if isinstance(m, str) else m for m in out["mix"]]
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}".replace("--mix `", "mix `")) from None
    return out


def structure(data: Mapping[str, Any], where: str = "configuration") -> TrainConfig:
    """A TrainConfig from plain data, with errors that name the key."""
    data = normalise(data, where)
    missing = [k for k in ("build_dir", "model", "out") if data.get(k) in (None, "")]
    if missing:
        flags = {"build_dir": "BUILD_DIR", "model": "--model", "out": "-o/--out"}
        raise ConfigError(f"{where}: missing {', '.join(flags[k] for k in missing)} "
                          "(give it on the command line or in the config file)")
    try:
        return converter.structure(data, TrainConfig)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except cattrs.BaseValidationError as exc:
        inner = [e for e in _leaves(exc) if isinstance(e, ConfigError)]
        detail = str(inner[0]) if inner else "; ".join(cattrs.transform_error(exc))
        raise ConfigError(f"{where}: {detail}") from None


def _leaves(exc: BaseException):
    if isinstance(exc, BaseExceptionGroup):
        for e in exc.exceptions:
            yield from _leaves(e)
    else:
        yield exc


def unstructure(cfg: TrainConfig) -> dict[str, Any]:
    return converter.unstructure(cfg)


def read_file(path: Path) -> dict[str, Any]:
    """Plain settings from a `.yaml`/`.yml` or `.toml` file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        if path.suffix == ".toml":
            import tomllib
            data = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"{path}: a config file must end in .yaml, .yml or .toml")
    except ConfigError:
        raise
    except Exception as exc:  # yaml.YAMLError / tomllib.TOMLDecodeError carry the line
        raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from None
    return normalise(data, str(path))


def merge(file_data: Mapping[str, Any], flags: Mapping[str, Any], where: str) -> TrainConfig:
    """Defaults < file < flags. A `lora_*` flag refines the file's LoRA table (and turns LoRA on)."""
    data = dict(file_data)
    lora_flags = {k[len("lora_"):]: v for k, v in flags.items() if k.startswith("lora_")}
    data.update({k: v for k, v in flags.items() if not k.startswith("lora_") and k != "lora"})
    if flags.get("lora") or lora_flags:
        base = data.get("lora") if isinstance(data.get("lora"), Mapping) else {}
        data["lora"] = {**base, **lora_flags}
    return structure(data, where)


def save(cfg: TrainConfig, path: Path) -> None:
    """Write the resolved configuration as YAML (paths made absolute, `resume` cleared, the
    learning rate written out), so it replays the run from any directory."""
    import yaml

    data = unstructure(attrs.evolve(cfg, resume=None, lr=cfg.learning_rate))
    for key in ("build_dir", "out", "chat_template"):
        if data[key]:
            data[key] = str(Path(data[key]).resolve())
    if Path(cfg.model).exists():
        data["model"] = str(Path(cfg.model).resolve())
    data["mix"] = [{**m, "source": str(Path(m["source"]).resolve())} for m in data["mix"]]
    if data["lora"] is not None:
        data["lora"]["target_modules"] = list(data["lora"]["target_modules"])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("# humanllm train: replay with `humanllm train --config THIS_FILE`\n"
                          + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
