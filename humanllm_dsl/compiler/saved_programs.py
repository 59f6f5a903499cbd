"""Saved (for example optimised) programs: a folder with the DSPy state and a small `meta.json`.

    PATH/
      program.json   the module's DSPy state (`module.save(PATH / "program.json")`): instructions,
                     demos, field descriptions
      meta.json      {"format": 1, "program": "judge", "class": "ChecklistJudge", "dspy": "3.4.1", ...}

`save_program(module, "judge", PATH)` writes it; `load_program(PATH)` returns `("judge", module)`,
a fresh instance of the program's class with the saved state loaded. `compile --program PATH`
and `eval --program PATH` use these. Only state is stored (no pickled code), so loading a folder
runs no code from it, and `program.json` is read against an allow-list: per predictor its
instructions, field prefixes and descriptions, demos (and DSPy's traces and train lists); never
transport or model settings (`config`, `lm`, an api_base), which could send every call, with the
API key, to another host.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..runtime.stages import PROGRAMS
from ..runtime.store import write_json

FORMAT = 1
STATE_FILE, META_FILE = "program.json", "meta.json"

# program name -> class name in humanllm_dsl.compiler.programs, in the order of `PROGRAMS`
PROGRAM_CLASSES = dict(zip(PROGRAMS, ("ScenarioSynthesis", "ConversationSynthesis", "ScenarioChecklist",
                                      "ScenarioVariation", "ChecklistJudge", "HolisticJudge"), strict=True))


class SavedProgramError(Exception):
    """A saved-program folder that cannot be written or read; the message names the path."""


def program_class(name: str):
    """The Module class of a program name.

    Args:
        name: one of `PROGRAM_CLASSES` (scenario, conversation, checklist, variation, judge, holistic).
    """
    from . import programs

    if name not in PROGRAM_CLASSES:
        raise SavedProgramError(f"unknown program `{name}` (one of: {', '.join(PROGRAM_CLASSES)})")
    return getattr(programs, PROGRAM_CLASSES[name])


def save_program(program, name: str, path, extra: dict | None = None) -> Path:
    """Write `program`'s DSPy state and `meta.json` into the folder `path` (created if needed).

    Args:
        program: a `dspy.Module`, normally an instance of the class that `name` names.
        name: which program it is, one of `PROGRAM_CLASSES`.
        path: the folder to write.
        extra: more JSON-ready facts for `meta.json` (optimiser, scores, LM, ...).
    Returns:
        The folder's path.
    """
    import dspy

    cls = program_class(name)
    if not isinstance(program, cls):
        raise SavedProgramError(f"cannot save a {type(program).__name__} as program `{name}` "
                                f"(expected a {cls.__name__})")
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise SavedProgramError(f"{folder}: exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{STATE_FILE}.", suffix=".tmp.json", dir=folder)
    os.close(fd)
    try:
        program.save(tmp)
        os.replace(tmp, folder / STATE_FILE)
    finally:
        Path(tmp).unlink(missing_ok=True)
    meta = {"format": FORMAT, "program": name, "class": cls.__name__, "dspy": dspy.__version__, **(extra or {})}
    write_json(folder / META_FILE, meta)
    return folder


def read_meta(path) -> dict:
    """The `meta.json` of a saved-program folder, checked.

    Args:
        path: the folder `save_program` wrote.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise SavedProgramError(f"{folder}: no such folder (a saved program is a folder with "
                                f"{META_FILE} and {STATE_FILE})")
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise SavedProgramError(f"{meta_path}: missing; {folder} is not a saved program")
    from ..runtime.store import JsonFileError, read_json_object

    try:
        meta = read_json_object(meta_path)
    except JsonFileError as exc:
        raise SavedProgramError(str(exc)) from None
    if "program" not in meta:
        raise SavedProgramError(f"{meta_path}: has no `program` key naming which program this is")
    if meta.get("format", FORMAT) != FORMAT:
        raise SavedProgramError(f"{meta_path}: format {meta.get('format')} is not supported (this version reads {FORMAT})")
    if meta["program"] not in PROGRAM_CLASSES:
        raise SavedProgramError(f"{meta_path}: unknown program `{meta['program']}` "
                                f"(one of: {', '.join(PROGRAM_CLASSES)})")
    return meta


def load_program(path, expect: str | tuple[str, ...] | None = None):
    """Load a saved program.

    Args:
        path: the folder `save_program` wrote.
        expect: the program name (or names) the caller can use; another raises SavedProgramError.
    Returns:
        `(name, module)`: the program's name and a fresh module with the saved state.
    """
    folder = Path(path)
    meta = read_meta(folder)
    name = meta["program"]
    wanted = (expect,) if isinstance(expect, str) else expect
    if wanted and name not in wanted:
        raise SavedProgramError(f"{folder}: holds the `{name}` program; expected {' or '.join(f'`{w}`' for w in wanted)}")
    state = folder / STATE_FILE
    if not state.is_file():
        raise SavedProgramError(f"{state}: missing; the folder has meta.json but no program state")
    module = program_class(name)()
    from ..runtime.store import JsonFileError, read_json_object

    try:
        data = read_json_object(state)
    except JsonFileError as exc:
        raise SavedProgramError(str(exc)) from None
    check_state(data, module, state)
    data.pop("metadata", None)
    try:
        module.load_state(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SavedProgramError(f"{state}: does not hold the state of a `{name}` program ({exc})") from None
    return name, module


# What a saved predictor may carry (DSPy's Predict.dump_state writes these; `lm` only as null).
PREDICTOR_KEYS = ("signature", "demos", "traces", "train", "lm")
SIGNATURE_KEYS = ("instructions", "fields")
FIELD_KEYS = ("prefix", "description")
METADATA_KEYS = ("dependency_versions",)
_REFUSED = "a saved program may carry instructions and demos, never transport or model settings"


def check_state(data: dict, module, path: Path) -> None:
    """Raise SavedProgramError naming `path` and the key for anything in a program's state that
    is not instructions, field texts or demos."""
    def fail(key: str, why: str) -> None:
        raise SavedProgramError(f"{path}: `{key}` {why}")

    predictors = dict(module.named_predictors())
    for key, value in data.items():
        if key == "metadata":
            if not isinstance(value, dict):
                fail(key, "must be an object")
            for sub in value:
                if sub not in METADATA_KEYS:
                    fail(f"metadata.{sub}", f"is not allowed ({_REFUSED})")
            continue
        if key not in predictors:
            fail(key, f"is not a part of this program (its parts: {', '.join(predictors)}); {_REFUSED}")
        if not isinstance(value, dict):
            fail(key, "must be an object")
        for sub, item in value.items():
            where = f"{key}.{sub}"
            if sub not in PREDICTOR_KEYS:
                fail(where, f"is not allowed: {_REFUSED}")
            if sub == "lm" and item is not None:
                fail(where, f"must be null: {_REFUSED}; the LM comes from the command line or --lm-config")
            if sub in ("demos", "traces", "train") and not (isinstance(item, list) and all(isinstance(d, dict) for d in item)):
                fail(where, "must be a list of objects")
        if "signature" not in value:
            fail(key, "has no `signature`")
        _check_signature(value["signature"], predictors[key], f"{key}.signature", fail)


def _check_signature(signature, predictor, where: str, fail) -> None:
    if not isinstance(signature, dict):
        fail(where, "must be an object")
    for sub in signature:
        if sub not in SIGNATURE_KEYS:
            fail(f"{where}.{sub}", f"is not allowed: {_REFUSED}")
    if not isinstance(signature.get("instructions"), str):
        fail(f"{where}.instructions", "must be a string")
    fields = signature.get("fields")
    if not isinstance(fields, list) or len(fields) != len(predictor.signature.fields):
        fail(f"{where}.fields", f"must be a list of {len(predictor.signature.fields)} fields")
    for k, field in enumerate(fields):
        if not isinstance(field, dict) or set(field) - set(FIELD_KEYS) or \
                not all(isinstance(v, str) for v in field.values()) or set(field) != set(FIELD_KEYS):
            fail(f"{where}.fields[{k}]", "must hold exactly `prefix` and `description`, both strings")
