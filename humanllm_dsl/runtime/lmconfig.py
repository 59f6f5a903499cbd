"""The LM config file: which LM each program uses, and the call limits.

    # lm.toml
    [lm]                          # every program, unless overridden below
    model = "openai/gpt-4o-mini"
    temperature = 1.0

    [programs.conversation]       # scenario, conversation, checklist, variation, judge, holistic
    model = "hosted_vllm/Qwen/Qwen3-32B"
    api_base = "http://gpu-box:8000/v1"
    api_key_env = "VLLM_KEY"      # keys live in the environment, never in this file

    [programs.checklist]          # one model on several servers, through LiteLLM's Router
    model = "hosted_vllm/Qwen/Qwen3-32B"
    api_bases = ["http://node1:8000/v1", "http://node2:8000/v1"]
    cooldown = 30                 # seconds a failing endpoint is left out
    allowed_fails = 1             # failures in a minute before that

    [limits]
    concurrency = 32
    rpm = 500
    tpm = 400000
    timeout = 120
    max_retries = 6

Command-line options override the file: `--lm`/`--api-base` the `[lm]` table, `--concurrency`,
`--rpm`, `--tpm`, `--timeout` the `[limits]` table.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import attrs
import cattrs

from .backends import LMSpec
from .calls import Limits
from .stages import GENERATION_PROGRAMS, OFFLINE, PROGRAMS
_SECRET_KEYS = {"api_key", "key", "token", "password", "secret"}
_converter = cattrs.Converter(forbid_extra_keys=True)


class ConfigError(ValueError):
    """A bad LM config file; the message names the file and the offending key."""


@attrs.frozen
class LMConfig:
    lm: LMSpec = LMSpec()
    programs: dict[str, LMSpec] = attrs.Factory(dict)
    limits: Limits = Limits()

    def for_program(self, name: str) -> LMSpec:
        return self.programs.get(name, self.lm)

    def check_keys(self, names=GENERATION_PROGRAMS) -> None:
        """Raise ValueError if a key the config names by `api_key_env` is missing from the environment."""
        for name in names:
            self.for_program(name).key()

    def offline(self, names=GENERATION_PROGRAMS) -> bool:
        """Whether every program is answered by the offline engine (no cache, no fsync per line)."""
        return all(self.for_program(name).model == OFFLINE for name in names)

    def models(self, names=GENERATION_PROGRAMS) -> dict[str, str]:
        """Program -> model label, for the manifest."""
        return {name: self.for_program(name).label for name in names}


def load_config(path: Path) -> LMConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the LM config: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    unknown = set(data) - {"lm", "programs", "limits"}
    if unknown:
        raise ConfigError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}; expected [lm], [programs.NAME], [limits]")
    for table, value in [("lm", data.get("lm", {}))] + [(f"programs.{k}", v) for k, v in data.get("programs", {}).items()]:
        secret = _SECRET_KEYS & set(value if isinstance(value, dict) else {})
        if secret:
            raise ConfigError(f"{path}: [{table}] has `{sorted(secret)[0]}`: keys are read from the environment only; "
                              f"name the variable with `api_key_env = \"MY_KEY_VAR\"`")
        env_name = value.get("api_key_env") if isinstance(value, dict) else None
        if isinstance(env_name, str) and not env_name.isidentifier():  # a key pasted in: never echo it
            from ..redact import redact
            raise ConfigError(f"{path}: [{table}] api_key_env = \"{redact(env_name)}\" is not the name of an environment "
                              f"variable; put the key in one (export MY_KEY_VAR=...) and write `api_key_env = \"MY_KEY_VAR\"`")
    bad = set(data.get("programs", {})) - set(PROGRAMS)
    if bad:
        raise ConfigError(f"{path}: unknown program(s) {', '.join(sorted(bad))}; known: {', '.join(PROGRAMS)}")
    base = data.get("lm", {})
    try:
        return LMConfig(lm=_converter.structure(base, LMSpec),
                        programs={k: _converter.structure(v if "model" in v else {**base, **v}, LMSpec)
                                  for k, v in data.get("programs", {}).items()},
                        limits=_converter.structure(data.get("limits", {}), Limits))
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: {'; '.join(_explain(exc))}") from exc


def _explain(exc: BaseException) -> list[str]:
    """cattrs' own words for type errors; the validator's message for a value out of range
    (cattrs can only say "invalid value @ $" for those)."""
    if not isinstance(exc, cattrs.BaseValidationError):
        return [str(exc)]
    described = cattrs.transform_error(exc)
    if len(described) != len(exc.exceptions):  # nested errors: cattrs' words only
        return described
    messages = []
    for sub, message in zip(exc.exceptions, described):
        if message.startswith("invalid value @") and isinstance(sub, ValueError) and str(sub):
            messages.append(str(sub).split(": ")[0].replace("'", "`") + f", not {str(sub).split(': ')[-1]}")
        else:
            messages.append(message)
    return messages
