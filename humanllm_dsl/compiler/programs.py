"""The DSPy programs of the method: typed Signatures and the Modules that run them.

Every program is an ordinary `dspy.Module`: import it, run it under any LM, optimise it with a
DSPy optimiser, save and load it. Instructions come from `humanllm_dsl/templates/*.jinja`.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Literal

import dspy
import pydantic

from . import model as m
from .templates import render


# ---- structured values ------------------------------------------------------------------
class CharacterProfile(pydantic.BaseModel):
    name: str
    about_self: str
    about_others: dict[str, str] = pydantic.Field(default_factory=dict)


class Turn(pydantic.BaseModel):
    char: str
    content: str


_SCORE_WORDS = {
    "1": 1, "+1": 1, "satisfied": 1, "yes": 1, "true": 1, "met": 1, "present": 1, "exhibited": 1,
    "0": 0, "+0": 0, "-0": 0, "not exhibited": 0, "not shown": 0, "neutral": 0, "unclear": 0, "n/a": 0, "na": 0, "none": 0,
    "-1": -1, "violated": -1, "no": -1, "false": -1, "contradicted": -1, "opposite": -1,
}


def coerce_score(value) -> int:
    """A verdict score as -1, 0 or 1. Accepts those integers, integral floats, numeric strings
    ("+1", " -1 ", "1.0") and the plain words of the judge instructions ("satisfied", "not
    exhibited", "violated"). Anything else (2, 0.5, "maybe", a bool) raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"score must be -1, 0 or 1, not {value!r}")
    if isinstance(value, int | float):
        if value in (-1, 0, 1) and float(value).is_integer():
            return int(value)
        raise ValueError(f"score must be -1, 0 or 1, not {value!r}")
    if isinstance(value, str):
        text = value.strip().strip("\"'`*").strip().lower().rstrip(".")
        if text in _SCORE_WORDS:
            return _SCORE_WORDS[text]
        try:
            return coerce_score(float(text))
        except ValueError:
            pass
    raise ValueError(f"score must be -1, 0 or 1, not {value!r}")


def coerce_item(value) -> int:
    """A 1-based item number from 3, "3", "#3", "item 3", 3.0."""
    if isinstance(value, bool):
        raise ValueError(f"item must be a positive integer, not {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        found = re.fullmatch(r"\s*(?:item\s*)?#?\s*(\d+)\s*[.):]?\s*", value, re.I)
        if not found:
            raise ValueError(f"item must be a positive integer, not {value!r}")
        value = int(found.group(1))
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"item must be a positive integer, not {value!r}")
    return value


class Verdict(pydantic.BaseModel):
    """One checklist item's verdict: +1 satisfied, 0 not exhibited, -1 violated, with a short
    quote from the transcript as evidence. Lenient on input (see `coerce_score`)."""

    item: int = pydantic.Field(description="1-based number of the checklist item")
    score: Literal[-1, 0, 1] = pydantic.Field(description="1 satisfied, 0 not exhibited, -1 violated")
    evidence: str = pydantic.Field(default="", description="a short quote from the transcript (empty for 0)")

    @pydantic.field_validator("item", mode="before")
    @classmethod
    def _item(cls, value):
        return coerce_item(value)

    @pydantic.field_validator("score", mode="before")
    @classmethod
    def _score(cls, value):
        return coerce_score(value)

    @pydantic.field_validator("evidence", mode="before")
    @classmethod
    def _evidence(cls, value):
        return "" if value is None else str(value)


# ---- signatures -------------------------------------------------------------------------
# Generation programs see a pattern's summary (definition, mechanisms, manifestations), never a
# checklist of either level: checklists are the judge's rubric (see `pattern_brief`).
_FEEDBACK = "what was wrong with the previous attempt and how to fix it; empty on the first attempt"
_SCENARIO_JSON = ("the scenario as JSON: background, characters (about_self, about_others), protagonist, "
                  "char2pattern, design_analysis, patterns (summaries), interactions (type, direction, because, expect)")


class SynthesizeScenario(dspy.Signature):
    """Design a scenario (instructions are rendered from templates/scenario.jinja)."""

    patterns: str = dspy.InputField(desc="the patterns to act out, JSON: id, name, kind, definition, "
                                         "mechanisms (kind: text), manifestations")
    interactions: str = dspy.InputField(desc="declared interactions among them, JSON: patterns, type, "
                                             "direction (for modulate: from -> to), because, expect")
    situation: str = dspy.InputField(desc="the situation type (DIAMONDS taxonomy) and what it means")
    domain: str = dspy.InputField(desc="the life domain the scenario is set in")
    character_count: int = dspy.InputField(desc="how many characters the scenario has")
    candidate_names: list[str] = dspy.InputField(desc="names to choose the characters from, exactly as written")
    feedback: str = dspy.InputField(desc=_FEEDBACK)
    design_analysis: str = dspy.OutputField(
        desc="why these patterns meet here, what triggers each, how each declared interaction plays out and "
             "between whom, and the expected tendencies of every character, including those without patterns")
    background: str = dspy.OutputField(
        desc="what every character knows or can see: time, place, atmosphere, what is happening and what is at "
             "stake; no dialogue, no secrets, no one's private thoughts")
    characters: list[CharacterProfile] = dspy.OutputField(
        desc="one entry per character: name; about_self (identity, personality, past, motivation, what they are "
             "doing just before the dialogue); about_others (for every other character: what this one knows and "
             "thinks of them, or that they are strangers)")
    protagonist: str = dspy.OutputField(desc="the name of the character at the centre of the scenario")
    char2pattern: dict[str, list[str]] = dspy.OutputField(
        desc="character name -> the ids of the patterns they carry; every pattern to at least one character, "
             "the protagonist carries at least one")


class SynthesizeConversation(dspy.Signature):
    """Write the conversation (templates/conversation.jinja)."""

    scenario: str = dspy.InputField(desc=_SCENARIO_JSON)
    min_turns: int = dspy.InputField(desc="the fewest turns allowed")
    max_turns: int = dspy.InputField(desc="the most turns allowed")
    feedback: str = dspy.InputField(desc=_FEEDBACK)
    turns: list[Turn] = dspy.OutputField(
        desc="the conversation in order; each turn: char (the speaker's exact name) and content (the "
             "[inner thought], (action) and speech of that turn)")


class WriteScenarioChecklist(dspy.Signature):
    """Write the scenario-level checklist (templates/checklist.jinja)."""

    scenario: str = dspy.InputField(desc=_SCENARIO_JSON)
    feedback: str = dspy.InputField(desc=_FEEDBACK)
    checklist: dict[str, list[str]] = dspy.OutputField(
        desc="for each character who carries patterns, by exact name: 2 to 6 yes/no questions, each about one "
             "observable behaviour expected in this scenario")


class VaryScenario(dspy.Signature):
    """Vary a scenario (templates/variation.jinja)."""

    scenario: str = dspy.InputField(desc=_SCENARIO_JSON)
    feedback: str = dspy.InputField(desc=_FEEDBACK)
    changed_factors: list[str] = dspy.OutputField(desc="the one to three situational factors that change")
    analysis: str = dspy.OutputField(desc="how and why each character's behaviour shifts under the changes")
    varied_background: str = dspy.OutputField(
        desc="the varied scenario's background: what every character knows or can see; no dialogue, no secrets")
    varied_checklist: dict[str, list[str]] = dspy.OutputField(
        desc="for each character who carries patterns, by exact name: 2 to 6 yes/no questions about the "
             "behaviour expected in the varied scenario")


class JudgeChecklist(dspy.Signature):
    """Judge checklist items against a transcript (templates/judge_checklist.jinja)."""

    character: str = dspy.InputField(desc="the character whose behaviour is judged")
    transcript: str = dspy.InputField(desc="the conversation; [thoughts] are shown for the judged character only")
    items: list[str] = dspy.InputField(desc="the checklist, numbered from 1")
    feedback: str = dspy.InputField(desc=_FEEDBACK)
    verdicts: list[Verdict] = dspy.OutputField(desc="exactly one verdict per item, items 1..N in order")


class JudgeHolistic(dspy.Signature):
    """Rate a performance holistically (templates/judge_holistic.jinja)."""

    character: str = dspy.InputField(desc="the character whose performance is rated")
    profile: str = dspy.InputField(desc="who the character is and how they see the others")
    transcript: str = dspy.InputField(desc="the conversation; [thoughts] are shown for the rated character only")
    feedback: str = dspy.InputField(desc=_FEEDBACK)
    anthropomorphism: int = dspy.OutputField(desc="0-100: how human-like the thoughts, actions and speech are")
    fidelity: int = dspy.OutputField(desc="0-100: how faithful the performance is to the profile")
    rationale: str = dspy.OutputField(desc="two or three sentences")


def instructed(signature: type[dspy.Signature], template: str, **context) -> type[dspy.Signature]:
    return signature.with_instructions(render(template, **context))


# ---- modules ----------------------------------------------------------------------------
class _Program(dspy.Module):
    """One Predict over `signature`, instructed by `templates/<template>.jinja`.

    Call it with the signature's input fields as keywords, plus an optional `config` (for
    example `{"rollout_id": ...}`); a `feedback` input defaults to the empty string.
    """

    signature: type[dspy.Signature]
    template: str

    def __init__(self, **context):
        super().__init__()
        self.predict = dspy.Predict(instructed(self.signature, self.template, **context))

    def forward(self, config=None, **inputs):
        return self.predict(**self._inputs(inputs), config=config or {})

    async def aforward(self, config=None, **inputs):
        return await self.predict.acall(**self._inputs(inputs), config=config or {})

    def _inputs(self, inputs: dict) -> dict:
        names = _input_names(self.signature)
        if "feedback" in names:
            inputs.setdefault("feedback", "")
        if "patterns" in inputs and "patterns" in names:
            inputs["patterns"] = _pattern_input(inputs["patterns"], type(self).__name__)
        return inputs


@functools.cache
def _input_names(signature: type[dspy.Signature]) -> frozenset[str]:
    """A signature's input field names (DSPy rebuilds `input_fields` on every access)."""
    return frozenset(signature.input_fields)


def _pattern_input(value, program: str) -> str:
    """A `patterns` input as the JSON text the prompt holds: summaries (dicts, as `pattern_brief`
    gives them) pass, ids are refused with how to get the summaries."""
    data = value
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except ValueError:
            data = [value]  # a lone id
    items = data if isinstance(data, list | tuple) else [data]
    ids = [x.id if isinstance(x, m.Pattern) else x for x in items if not isinstance(x, dict)]
    if ids:
        raise TypeError(f"{program}: `patterns` takes pattern summaries, not ids or Pattern objects "
                        f"({', '.join(map(repr, ids[:3]))}): pass "
                        f"dumps([pattern_brief(library.pattern(id)) for id in ids])")
    return value if isinstance(value, str) else dumps(list(items))


class ScenarioSynthesis(_Program):
    """patterns, interactions, situation, domain, character_count, candidate_names -> scenario."""

    signature, template = SynthesizeScenario, "scenario"



class ConversationSynthesis(_Program):
    """scenario, min_turns, max_turns -> turns."""

    signature, template = SynthesizeConversation, "conversation"


class ScenarioChecklist(_Program):
    """scenario -> checklist (character name -> expected behaviours)."""

    signature, template = WriteScenarioChecklist, "checklist"


class ScenarioVariation(_Program):
    """scenario -> changed factors, analysis, varied background and checklist."""

    signature, template = VaryScenario, "variation"


class ChecklistJudge(_Program):
    """character, transcript, items (+ feedback) -> verdicts: one structured call judges every item.

    The raw verdicts are returned as the LM gave them (after the adapter's parsing);
    `humanllm_dsl.evaluate.judge` checks them (one per item, scores in -1/0/1), retries with
    feedback, and records what stays malformed as a failure.
    """

    signature, template = JudgeChecklist, "judge_checklist"


class HolisticJudge(_Program):
    """character, profile, transcript (+ feedback) -> anthropomorphism, fidelity (0-100), rationale."""

    signature, template = JudgeHolistic, "judge_holistic"


# ---- inputs built from the spec ---------------------------------------------------------
def pattern_brief(p: m.Pattern, *, manifestations: bool = True) -> dict:
    """What a generation program sees of a pattern: the method's pattern summary (definition, core
    mechanisms with their kinds, real-world manifestations). Never its checklist: checklists are the
    judge's rubric, and a generator that saw them would teach the trained model to tick the judge's
    boxes. `manifestations=False` gives the shorter summary the later stages need (the scenario's
    design analysis already says how the patterns show here)."""
    if not isinstance(p, m.Pattern):
        raise TypeError(f"pattern_brief takes a Pattern (library.pattern({p!r}) for an id), "
                        f"not {type(p).__name__} {p!r}")
    kind = (f"personality trait ({p.dimension.replace('_', ' ')}, {p.pole} pole)" if p.is_trait
            else "social-cognitive pattern")
    brief = {"id": p.id, "name": p.name, "kind": kind, "definition": " ".join(p.definition.split()),
             "mechanisms": [f"{mech.kind}: {' '.join(mech.text.split())}" for mech in p.mechanisms]}
    if manifestations:
        brief["manifestations"] = list(p.manifestations)
    return brief


def dumps(value) -> str:
    """Inputs as compact JSON, keys in the order written (so the same input is the same text)."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


SCENARIO_KEYS = ("background", "characters", "protagonist", "char2pattern", "design_analysis")


def scenario_context(scenario: dict, patterns: list[m.Pattern], interactions: list[dict]) -> dict:
    """The `scenario` input of the conversation, checklist and variation programs: the synthesised
    scenario, the patterns' short summaries and the declared interactions (with because and expect).
    It holds no checklist of either level."""
    return ({key: scenario[key] for key in SCENARIO_KEYS}
            | {"patterns": [pattern_brief(p, manifestations=False) for p in patterns], "interactions": interactions})


# ---- bundle vetting (the method's contradiction screen; optional, at plan time) ------------
class VetBundle(dspy.Signature):
    """Keep or veto a bundle of patterns (instructions are rendered from templates/vetting.jinja)."""

    patterns: str = dspy.InputField(desc="the bundle's patterns, JSON: id, name, kind, definition, "
                                         "mechanisms (kind: text), manifestations")
    interactions: str = dspy.InputField(desc="declared interactions among them, JSON: patterns, type, because")
    verdict: Literal["keep", "veto"] = dspy.OutputField(desc="`keep` or `veto`")
    reason: str = dspy.OutputField(desc="one or two sentences naming the patterns that decide it")


class BundleVetting(_Program):
    """patterns, interactions -> verdict (keep or veto), reason."""

    signature, template = VetBundle, "vetting"
