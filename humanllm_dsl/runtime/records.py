"""The persisted rows after the plan, as typed classes with one cattrs converter.

A `Record` is one line of `records.jsonl` (and of `splits/<split>.jsonl`): a finished scenario
with its conversation, checklists and variation. `Usage` is what a work row or failure cost.
`load_record` turns a JSON object into a Record or raises `RecordError` naming the record and
the field that is wrong; `dump_record` is its inverse (`dump_record(load_record(d)) == d` for a
record this tool wrote).

One shape on disk, in records.jsonl, the split files and the Hugging Face copy alike: the maps
keyed by character name are lists, because Arrow (and so the Hub) has no free-key map:

    char2pattern            [{"char": NAME, "patterns": [ID, ...]}, ...]
    checklist               [{"char": NAME, "items": [TEXT, ...]}, ...]
    variation.checklist     [{"char": NAME, "items": [TEXT, ...]}, ...]
    characters[].about_others   [{"name": NAME, "view": TEXT}, ...]

In memory the typed `Record` keeps name-keyed dicts (the convenient view). `stored_shape` and
`map_shape` convert a record dict either way and accept both shapes, so builds written before
the change (name-keyed objects on disk) still load.
"""

from __future__ import annotations

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .channels import Segment


@attrs.frozen
class Direction:
    """For `modulate`: the patterns in `sources` shape how those in `targets` show."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]


@attrs.frozen
class InteractionRow:
    patterns: tuple[str, ...]
    type: str
    direction: Direction | None = None
    because: str = ""
    expect: str = ""


@attrs.frozen
class Character:
    name: str
    about_self: str
    about_others: dict[str, str] = attrs.Factory(dict)


@attrs.frozen
class Turn:
    char: str
    content: str
    thought: str
    action: str
    speech: str
    segments: tuple[Segment, ...] = ()


@attrs.frozen
class Variation:
    changed_factors: tuple[str, ...]
    analysis: str
    background: str
    checklist: dict[str, tuple[str, ...]]


@attrs.frozen
class Record:
    id: str
    split: str
    patterns: tuple[str, ...]
    pattern_names: tuple[str, ...]
    interactions: tuple[InteractionRow, ...]
    situation: str
    domain: str
    design_analysis: str
    background: str
    characters: tuple[Character, ...]
    protagonist: str
    char2pattern: dict[str, tuple[str, ...]]
    conversation: tuple[Turn, ...]
    checklist: dict[str, tuple[str, ...]]
    variation: Variation
    lm: str

    def character(self, name: str) -> Character:
        return next(c for c in self.characters if c.name == name)


@attrs.define
class Usage:
    """What producing one row cost, wasted calls included."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    cost: float = 0.0  # USD, where the provider's prices are known
    transient_retries: int = 0  # sends repeated after a rate limit, server error or timeout

    def add(self, other: "Usage") -> None:
        for field in attrs.fields(Usage):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def as_dict(self) -> dict:
        return attrs.asdict(self)


def _strict_str(value, _type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, found {type(value).__name__}")
    return value


def _is_tuple(type_) -> bool:
    return getattr(type_, "__origin__", None) is tuple


def _strict_tuple(converter: cattrs.Converter):
    """Lists only: a string where a list belongs is an error, not a list of its characters."""
    base = converter.get_structure_hook(tuple[str, ...])  # the generic tuple hook

    def structure(value, type_):
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list, found {type(value).__name__}")
        return base(value, type_)
    return structure


def _strict_dict(value, type_):
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, found {type(value).__name__}")
    key_type, value_type = type_.__args__
    return {converter.structure(k, key_type): converter.structure(v, value_type) for k, v in value.items()}


def _objects_only(cls, conv: cattrs.Converter, **overrides):
    """Classes come from JSON objects: anything else is an error about the field, not a traceback."""
    generated = make_dict_structure_fn(cls, conv, **overrides)

    def structure(value, type_):
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, found {type(value).__name__}")
        return generated(value, type_)
    return structure


def _describe(exc: BaseException, type_) -> str:
    if isinstance(exc, KeyError):
        return "a required field is missing"
    if isinstance(exc, TypeError | ValueError) and str(exc).startswith("expected"):
        return str(exc)
    return f"not a valid {getattr(type_, '__name__', type_)}"


converter = cattrs.Converter(forbid_extra_keys=False)
converter.register_structure_hook_factory(lambda t: attrs.has(t) and t is not Direction, _objects_only)
converter.register_structure_hook(str, _strict_str)
converter.register_structure_hook_func(_is_tuple, _strict_tuple(converter))
converter.register_structure_hook_func(lambda t: getattr(t, "__origin__", None) is dict, _strict_dict)
converter.register_unstructure_hook(
    Direction, make_dict_unstructure_fn(Direction, converter, sources=override(rename="from"),
                                        targets=override(rename="to")))
converter.register_structure_hook(
    Direction, _objects_only(Direction, converter, sources=override(rename="from"), targets=override(rename="to")))


_LISTED = (("char2pattern", "char", "patterns"), ("checklist", "char", "items"))


def _to_list(value, key: str, field: str):
    if isinstance(value, dict):
        return [{key: k, field: v} for k, v in value.items()]
    return value


def _to_map(value, key: str, field: str):
    if isinstance(value, list) and all(isinstance(e, dict) and key in e and field in e for e in value):
        return {e[key]: e[field] for e in value}
    return value


def _convert(record: dict, how) -> dict:
    """`record` with its name-keyed fields passed through `how`; anything malformed is left as it is
    for the reader to report."""
    if not isinstance(record, dict):
        return record
    r = dict(record)
    for name, key, field in _LISTED:
        if name in r:
            r[name] = how(r[name], key, field)
    if isinstance(r.get("variation"), dict) and "checklist" in r["variation"]:
        r["variation"] = {**r["variation"], "checklist": how(r["variation"]["checklist"], "char", "items")}
    if isinstance(r.get("characters"), list):
        r["characters"] = [{**c, "about_others": how(c["about_others"], "name", "view")}
                           if isinstance(c, dict) and "about_others" in c else c for c in r["characters"]]
    return r


def stored_shape(record: dict) -> dict:
    """The record as written to disk: name-keyed maps as lists (see the module docstring)."""
    return _convert(record, _to_list)


def map_shape(record: dict) -> dict:
    """The record with name-keyed dicts (`record["char2pattern"][name]`), from either shape."""
    return _convert(record, _to_map)


def char2pattern(record: dict) -> dict[str, list[str]]:
    """Who carries which patterns, by name, from a record of either shape."""
    return _to_map(record.get("char2pattern", {}), "char", "patterns")


def others_of(character: dict) -> dict[str, str]:
    """How a character sees each other character, by name, from either shape."""
    return _to_map(character.get("about_others", {}), "name", "view")


class RecordError(ValueError):
    """A record that does not have the shape of one; the message names the record and field."""


def load_record(data: object, where: str = "") -> Record:
    """A Record from a JSON object; RecordError (naming `where`, the id and the fields) if malformed."""
    return _structure(map_shape(data) if isinstance(data, dict) else data, Record, f"{where}: " if where else "",
                      "record")


def dump_record(record: Record) -> dict:
    """The record as stored (lists for the name-keyed maps; see the module docstring)."""
    return stored_shape(converter.unstructure(record))


# ---- work rows: what each LM stage keeps (work/<stage>.jsonl), and failures ------------------
# They keep the LM's answer as it came (name-keyed maps), so a later stage's prompt reads the
# scenario exactly as the scenario program wrote it.
@attrs.frozen
class ScenarioRow:
    id: str
    design_analysis: str
    background: str
    characters: tuple[Character, ...]
    protagonist: str
    char2pattern: dict[str, tuple[str, ...]]
    usage: Usage = attrs.Factory(Usage)


@attrs.frozen
class SpokenTurn:
    """A turn as the conversation program writes it: who speaks, and the three channels in one text."""

    char: str
    content: str


@attrs.frozen
class ConversationRow:
    id: str
    turns: tuple[SpokenTurn, ...]
    usage: Usage = attrs.Factory(Usage)


@attrs.frozen
class ChecklistRow:
    id: str
    checklist: dict[str, tuple[str, ...]]
    usage: Usage = attrs.Factory(Usage)


@attrs.frozen
class VariedScenario:
    changed_factors: tuple[str, ...]
    analysis: str
    varied_background: str
    varied_checklist: dict[str, tuple[str, ...]]


@attrs.frozen
class VariationRow:
    id: str
    variation: VariedScenario
    usage: Usage = attrs.Factory(Usage)


@attrs.frozen
class FailureRow:
    """An output that stayed invalid after every attempt (failures.jsonl)."""

    id: str
    stage: str
    attempts: int
    reason: str
    usage: Usage = attrs.Factory(Usage)


WORK_ROWS: dict[str, type] = {"scenarios": ScenarioRow, "conversations": ConversationRow,
                              "checklists": ChecklistRow, "variations": VariationRow}


def load_row(stage: str, data: object, where: str = ""):
    """The typed row of `stage` (a work stage, or "failures"); RecordError naming `where` and the field."""
    cls = WORK_ROWS.get(stage, FailureRow if stage == "failures" else None)
    if cls is None:
        raise ValueError(f"no row type for stage `{stage}`")
    return _structure(data, cls, f"{where}: " if where else "", "row")


def dump_row(row) -> dict:
    return converter.unstructure(row)


# ---- the manifest ---------------------------------------------------------------------------
@attrs.frozen
class Manifest:
    """manifest.json: what a build is (dataset, seed, spec hash, LM, plan) and what it holds."""

    dataset: str
    seed: int
    scenarios: int
    held_out: tuple[str, ...]
    spec_hash: str
    lm: str
    offline: bool
    stage: str
    planned_splits: dict[str, int]
    splits: dict[str, int]
    sft_samples: dict[str, int]
    records: int
    failures: int
    lm_calls: int
    prompt_tokens: int
    completion_tokens: int
    retries: int
    transient_retries: int
    cost_usd: float
    programs: dict[str, str]
    optimised_programs: tuple[str, ...]
    composition: dict | None = None
    shard: tuple[int, int] | None = None


def _structure(data: object, cls: type, label: str, kind: str):
    if not isinstance(data, dict):
        raise RecordError(f"{label}expected a JSON object, found {type(data).__name__}")
    label += f"{kind} `{data.get('id', '?')}`: " if "id" in data else ""
    try:
        return converter.structure(data, cls)
    except cattrs.BaseValidationError as exc:
        problems = [p.replace(" @ $.", " at ").replace(" @ $", "")
                    for p in cattrs.transform_error(exc, format_exception=_describe)]
        raise RecordError(label + "; ".join(problems[:5])) from None


def load_manifest(data: object, where: str = "") -> Manifest:
    """A build's manifest; RecordError naming `where` and the field if it is not one. Keys this
    version does not know (a newer tool's) are kept out, not refused."""
    return _structure(data, Manifest, f"{where}: " if where else "", "manifest")


