"""The DSPy programs of the method: typed Signatures and the Modules that run them.

Every program is an ordinary `dspy.Module`: import it, run it under any LM, optimise it with a
DSPy optimiser, save and load it. Instructions come from `humanllm_dsl/templates/*.jinja`.
"""

from __future__ import annotations

import json
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


class Verdict(pydantic.BaseModel):
    item: int = pydantic.Field(description="1-based number of the checklist item")
    score: Literal[-1, 0, 1]
    evidence: str = ""


# ---- signatures -------------------------------------------------------------------------
class SynthesizeScenario(dspy.Signature):
    """Design a scenario (instructions are rendered from templates/scenario.jinja)."""

    patterns: str = dspy.InputField(desc="the patterns to act out, JSON: id, name, definition, manifestations")
    interactions: str = dspy.InputField(desc="declared interactions among them, JSON: patterns, type, direction, because, expect")
    situation: str = dspy.InputField(desc="situation type and what it means")
    domain: str = dspy.InputField(desc="life domain")
    character_count: int = dspy.InputField()
    candidate_names: list[str] = dspy.InputField(desc="names to use, exactly as written")
    feedback: str = dspy.InputField(desc="why a previous attempt was rejected; empty on the first attempt")
    design_analysis: str = dspy.OutputField()
    background: str = dspy.OutputField()
    characters: list[CharacterProfile] = dspy.OutputField()
    protagonist: str = dspy.OutputField()
    char2pattern: dict[str, list[str]] = dspy.OutputField(desc="character name -> pattern ids")


class SynthesizeConversation(dspy.Signature):
    """Write the conversation (templates/conversation.jinja)."""

    scenario: str = dspy.InputField(desc="JSON: background, characters, protagonist, char2pattern, patterns, design_analysis")
    min_turns: int = dspy.InputField()
    max_turns: int = dspy.InputField()
    feedback: str = dspy.InputField(desc="why a previous attempt was rejected; empty on the first attempt")
    turns: list[Turn] = dspy.OutputField(desc="each turn: char (exact name) and content with [thought], (action) and speech")


class WriteScenarioChecklist(dspy.Signature):
    """Write the scenario-level checklist (templates/checklist.jinja)."""

    scenario: str = dspy.InputField(desc="JSON: background, characters, protagonist, char2pattern, patterns, design_analysis")
    feedback: str = dspy.InputField(desc="why a previous attempt was rejected; empty on the first attempt")
    checklist: dict[str, list[str]] = dspy.OutputField(desc="character name -> 2-6 expected behaviours")


class VaryScenario(dspy.Signature):
    """Vary a scenario (templates/variation.jinja)."""

    scenario: str = dspy.InputField(desc="JSON of the scenario and its checklist")
    feedback: str = dspy.InputField(desc="why a previous attempt was rejected; empty on the first attempt")
    changed_factors: list[str] = dspy.OutputField()
    analysis: str = dspy.OutputField(desc="how each character's behaviour shifts")
    varied_background: str = dspy.OutputField()
    varied_checklist: dict[str, list[str]] = dspy.OutputField(desc="character name -> 2-6 expected behaviours")


class JudgeChecklist(dspy.Signature):
    """Judge checklist items against a transcript (templates/judge_checklist.jinja)."""

    character: str = dspy.InputField()
    transcript: str = dspy.InputField()
    items: list[str] = dspy.InputField(desc="numbered from 1")
    verdicts: list[Verdict] = dspy.OutputField(desc="one verdict per item, in order")


class JudgeHolistic(dspy.Signature):
    """Rate a performance holistically (templates/judge_holistic.jinja)."""

    character: str = dspy.InputField()
    profile: str = dspy.InputField()
    transcript: str = dspy.InputField()
    anthropomorphism: int = dspy.OutputField(desc="0-100")
    fidelity: int = dspy.OutputField(desc="0-100")
    rationale: str = dspy.OutputField()


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
        if "feedback" in self.signature.input_fields:
            inputs.setdefault("feedback", "")
        return self.predict(**inputs, config=config or {})


class ScenarioSynthesis(_Program):
    """patterns, interactions, situation, domain, character_count, candidate_names -> scenario."""

    signature, template = SynthesizeScenario, "scenario"

    def __init__(self, situations: str = "", domains: str = ""):
        super().__init__(situations=situations, domains=domains,
                         interaction_types="reinforce, conflict, modulate")


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
    """character, transcript, items -> verdicts."""

    signature, template = JudgeChecklist, "judge_checklist"


class HolisticJudge(_Program):
    """character, profile, transcript -> anthropomorphism, fidelity, rationale."""

    signature, template = JudgeHolistic, "judge_holistic"


# ---- inputs built from the spec ---------------------------------------------------------
def pattern_brief(p: m.Pattern) -> dict:
    return {"id": p.id, "name": p.name, "definition": " ".join(p.definition.split()),
            "manifestations": list(p.manifestations), "checklist": list(p.checklist)}


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
