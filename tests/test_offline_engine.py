"""The offline engine answers each program from its Signature."""

import dspy
import pytest

from humanllm_dsl.compiler import programs as P
from humanllm_dsl.runtime import offline
from humanllm_dsl.runtime.adapter import FastChatAdapter
from humanllm_dsl.runtime.backends import make_lm

SCENARIO = P.dumps({"background": "A kitchen.", "protagonist": "Ana",
                    "characters": [{"name": "Ana", "about_self": "a cook"}, {"name": "Ben", "about_self": "a guest"}],
                    "char2pattern": {"Ana": ["p"]}, "design_analysis": "",
                    "patterns": [{"id": "p", "name": "p", "mechanisms": ["cognitive: Thinking runs fast.",
                                                                          "emotional: Calm feels safe."]}]})
INPUTS = {
    P.SynthesizeScenario: dict(patterns=P.dumps([{"id": "p", "name": "p", "manifestations": ["An example."]}]),
                               interactions="[]", situation="Duty: work", domain="Home", character_count=2,
                               candidate_names=["Ana", "Ben", "Cy"]),
    P.SynthesizeConversation: dict(scenario=SCENARIO, min_turns=12, max_turns=14),
    P.WriteScenarioChecklist: dict(scenario=SCENARIO),
    P.VaryScenario: dict(scenario=SCENARIO),
    P.JudgeChecklist: dict(character="Ana", transcript="Ana: [x] (y) z", items=["Does Ana cook?"]),
    P.JudgeHolistic: dict(character="Ana", profile="a cook", transcript="Ana: [x] (y) z"),
}


@pytest.mark.parametrize("signature", list(INPUTS), ids=lambda s: s.__name__)
def test_every_program_gets_an_answer_with_exactly_its_output_fields(signature):
    predict = dspy.Predict(signature)
    with dspy.context(lm=make_lm("offline", 1), adapter=FastChatAdapter()):
        out = predict(**INPUTS[signature], feedback="")
    assert set(out.keys()) == set(signature.output_fields)


def test_the_registry_comes_from_the_signatures():
    assert set(offline.GENERATORS) >= {frozenset(s.output_fields) for s in INPUTS}


def test_a_renamed_output_field_is_a_clear_error():
    renamed = P.WriteScenarioChecklist.delete("checklist").append(
        "expected_behaviours", dspy.OutputField(desc="renamed"), type_=dict[str, list[str]])
    with dspy.context(lm=make_lm("offline", 1), adapter=FastChatAdapter()):
        with pytest.raises(Exception, match="no answer for a program with outputs"):
            dspy.Predict(renamed)(scenario=SCENARIO, feedback="")


def test_thoughts_voice_mechanisms_but_never_a_named_pattern():
    predict = dspy.Predict(P.SynthesizeConversation)
    with dspy.context(lm=make_lm("offline", 1), adapter=FastChatAdapter()):
        turns = predict(**INPUTS[P.SynthesizeConversation], feedback="").turns
    thoughts = [t.content.split("]")[0].lower() for t in turns if t.char == "Ana"]
    assert thoughts and all("thinking runs fast" in th or "calm feels safe" in th for th in thoughts)
    feedback = "This is attempt 2; attempt 1 was rejected. Fix these problems: turn 3 (thought) names the pattern `calm feels`"
    with dspy.context(lm=make_lm("offline", 1), adapter=FastChatAdapter()):
        turns = predict(**INPUTS[P.SynthesizeConversation], feedback=feedback).turns
    assert not any("calm feels" in t.content.lower() for t in turns)
