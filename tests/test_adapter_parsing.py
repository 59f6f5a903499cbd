"""FastChatAdapter.parse on the formats real models write, and on cut answers."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from humanllm_dsl.compiler.programs import JudgeHolistic, SynthesizeConversation, WriteScenarioChecklist
from humanllm_dsl.runtime.adapter import AnswerProblem, FastChatAdapter, strip_thinking

ADAPTER = FastChatAdapter()
VALUE = {"Ann": ["Does Ann stall?", "Does Ann hedge?"]}
GOOD = '[[ ## checklist ## ]]\n{"Ann": ["Does Ann stall?", "Does Ann hedge?"]}\n\n[[ ## completed ## ]]'


@pytest.mark.parametrize("answer", [
    GOOD,
    "```\n" + GOOD + "\n```",
    "Here is the checklist you asked for.\n\n" + GOOD,
    "Here you go:\n```\n" + GOOD.replace("\n\n[[ ## completed ## ]]", "") + "\n```",
    '[[ ## checklist ## ]]\n```json\n{"Ann": ["Does Ann stall?", "Does Ann hedge?"]}\n```\n\n[[ ## completed ## ]]',
    '```json\n{"checklist": {"Ann": ["Does Ann stall?", "Does Ann hedge?"]}}\n```',
    'Sure, as JSON: {"checklist": {"Ann": ["Does Ann stall?", "Does Ann hedge?"]}}',
    "<think>The marker [[ ## checklist ## ]] comes first.\nOk.</think>\n" + GOOD,
    "I should list two items.\n</think>\n\n" + GOOD,
    "**[[ ## checklist ## ]]**\n{\"Ann\": [\"Does Ann stall?\", \"Does Ann hedge?\"]}\n[[ ## completed ## ]]",
    '[[ ## checklist ## ]]\n{"Ann": ["Does Ann stall?", "Does Ann hedge?"]}',  # complete, no final marker
    "[[ ## checklist ## ]]\n{'Ann': ['Does Ann stall?', 'Does Ann hedge?']}\n[[ ## completed ## ]]",
])
def test_real_model_formats_are_parsed(answer):
    assert ADAPTER.parse(WriteScenarioChecklist, answer) == {"checklist": VALUE}


@pytest.mark.parametrize("answer", [
    '[[ ## checklist ## ]]\n{"Ann": ["Does Ann stall?", "Does Tomas let the app\'s countdown make',
    '```json\n{"checklist": {"Ann": ["Does Ann stall?", "Does Tomas let',
    '[[ ## checklist ## ]]\n{"Ann": ["Does Ann stall?", "Does Tomas let\n\n[[ ## completed ## ]]',
    "<think>Let me think about the items for Ann, first",
])
def test_cut_answers_are_truncations_never_repaired(answer):
    with pytest.raises(AnswerProblem) as info:
        ADAPTER.parse(WriteScenarioChecklist, answer)
    assert info.value.cut and "[[ ## completed ## ]]" in info.value.problem


def test_a_cut_last_text_field_is_a_truncation_and_a_whole_one_is_not():
    head = "[[ ## anthropomorphism ## ]]\n80\n\n[[ ## fidelity ## ]]\n70\n\n[[ ## rationale ## ]]\n"
    assert ADAPTER.parse(JudgeHolistic, head + "Convincing and consistent.")["rationale"] == "Convincing and consistent."
    with pytest.raises(AnswerProblem) as info:
        ADAPTER.parse(JudgeHolistic, head + "Convincing, although the second")
    assert info.value.cut


def test_a_missing_field_before_the_cut_is_a_truncation():
    with pytest.raises(AnswerProblem) as info:
        ADAPTER.parse(JudgeHolistic, "[[ ## anthropomorphism ## ]]\n80\n\n[[ ## fidelity ## ]]\n7")
    assert info.value.cut and "[[ ## rationale ## ]]" in info.value.problem


def test_problems_are_in_the_models_terms():
    with pytest.raises(AnswerProblem) as info:
        ADAPTER.parse(SynthesizeConversation, '[[ ## turns ## ]]\n[{"char": "A", "content": "hi"}, {"char": "B"}]\n'
                                              "[[ ## completed ## ]]")
    assert info.value.problem == "the value of `turns` does not fit: turns[1].content: missing"
    with pytest.raises(AnswerProblem) as info:
        ADAPTER.parse(WriteScenarioChecklist, "[[ #checklist # ]]\n{}\n[[ # completed # ]]")
    assert not info.value.cut and "write each field after its marker ([[ ## checklist ## ]])" in info.value.problem


@given(st.text(alphabet='{}[]",: ab', max_size=30))
def test_a_value_that_is_not_whole_json_is_never_accepted_silently(value):
    """Whatever the value, the parser returns the exact JSON it holds or raises."""
    import json

    answer = f"[[ ## checklist ## ]]\n{value}\n\n[[ ## completed ## ]]"
    try:
        parsed = ADAPTER.parse(WriteScenarioChecklist, answer)["checklist"]
    except AnswerProblem:
        return
    assert parsed == json.loads(value)


def test_strip_thinking():
    assert strip_thinking("<think>a</think>b") == "b"
    assert strip_thinking("a</think>b") == "b"
    assert strip_thinking("<think>never closed") is None
    assert strip_thinking("answer <think>trailing") == "answer "


def test_a_fenced_value_inside_a_fenced_answer_without_its_marker():
    answer = ('Sure!\n\n```\n[[ ## checklist ## ]]\n```json\n{"Ann": ["Does Ann stall?", "Does Ann hedge?"]}\n```\n```')
    assert ADAPTER.parse(WriteScenarioChecklist, answer) == {"checklist": VALUE}
