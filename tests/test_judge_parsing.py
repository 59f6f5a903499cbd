"""Judge outputs: parsing and checking adversarial verdicts, retries with feedback, failures."""

from __future__ import annotations

import json

import dspy
import pytest

from humanllm_dsl.compiler import programs as P
from humanllm_dsl.evaluate import judge as J


def ok(n, score=1):
    return [{"item": i, "score": score, "evidence": f"quote {i}"} for i in range(1, n + 1)]


@pytest.mark.parametrize("raw", [
    ok(3),
    json.dumps(ok(3)),
    "```json\n" + json.dumps(ok(3)) + "\n```",
    "Here are my verdicts:\n" + json.dumps(ok(3)) + "\nHope this helps.",
    {"verdicts": ok(3)},
    json.dumps({"verdicts": ok(3)}),
    "[[ ## verdicts ## ]]\n" + json.dumps(ok(3)) + "\n\n[[ ## completed ## ]]",
    list(reversed(ok(3))),                                     # out of order
    ok(3) + [ok(3)[0]],                                        # an identical repeat
    [{"item": str(i), "score": "+1", "evidence": "q"} for i in (1, 2, 3)],
    [{"item": f"#{i}", "score": "satisfied", "evidence": None} for i in (1, 2, 3)],
    [{"item": i, "score": 1.0} for i in (1, 2, 3)],
    {"1": 1, "2": "1", "3": {"score": 1, "evidence": "x"}},
    [1, 1, 1],                                                 # bare scores, in order
    [P.Verdict(item=i, score=1, evidence="q") for i in (1, 2, 3)],
])
def test_accepted_shapes(raw):
    out = J.normalise_verdicts(raw, 3)
    assert [v["item"] for v in out] == [1, 2, 3]
    assert [v["score"] for v in out] == [1, 1, 1]


@pytest.mark.parametrize("raw, problem", [
    (ok(2), "no verdict for item 3"),
    ([], "no verdict for items 1, 2, 3"),
    (ok(3) + [{"item": 4, "score": 1}], "item 4 does not exist"),
    (ok(2) + [{"item": 3, "score": 2}], "score must be -1, 0 or 1"),
    (ok(2) + [{"item": 3, "score": 0.5}], "score must be -1, 0 or 1"),
    (ok(2) + [{"item": 3, "score": "maybe"}], "score must be -1, 0 or 1"),
    (ok(2) + [{"item": 3, "score": True}], "score must be -1, 0 or 1"),
    (ok(2) + [{"item": 3}], "item 3 has no score"),
    (ok(3) + [{"item": 1, "score": -1}], "item 1 is given two different scores"),
    (ok(2) + [{"item": 0, "score": 1}], "item must be a positive integer"),
    (ok(2) + ["yes"], "entry 3 is not an object"),
    ("I think the character is lovely.", "not valid JSON"),
    ("{broken json", "not valid JSON"),
    ({"answer": ok(3)}, "without `verdicts`"),
    (42, "expected a list"),
    ([1, 1], "no verdict for item"),                           # bare scores, wrong count
])
def test_rejected_shapes(raw, problem):
    with pytest.raises(J.VerdictError, match=problem):
        J.normalise_verdicts(raw, 3)


def test_words_and_signs_map_to_scores():
    raw = [{"item": 1, "score": "violated"}, {"item": 2, "score": "Not exhibited"}, {"item": 3, "score": " -1 "}]
    assert [v["score"] for v in J.normalise_verdicts(raw, 3)] == [-1, 0, -1]


@pytest.mark.parametrize("value, expected", [(85, 85), ("85", 85), ("85/100", 85), ("70 %", 70), (99.6, 100), (0, 0)])
def test_ratings(value, expected):
    assert J.coerce_rating(value, "fidelity") == expected


@pytest.mark.parametrize("value", [101, -1, "high", True, None, "85/10"])
def test_bad_ratings(value):
    with pytest.raises(J.VerdictError, match="fidelity"):
        J.coerce_rating(value, "fidelity")


def test_evidence_grounded_counts_verbatim_quotes():
    verdicts = [{"item": 1, "score": 1, "evidence": "I will NOT give in"},
                {"item": 2, "score": -1, "evidence": "something never said"},
                {"item": 3, "score": 0, "evidence": ""}]
    assert J.evidence_grounded(verdicts, "Ann: [I will not   give in.] (sits)") == (1, 2)


# ---- the retry loop, through the real DSPy program -----------------------------------------
def answer(verdicts) -> dict:
    return {"verdicts": verdicts if isinstance(verdicts, str) else json.dumps(verdicts)}


def run_judge(answers, n=3, attempts=3):
    lm = dspy.utils.DummyLM([answer(a) for a in answers])
    with dspy.context(lm=lm, adapter=dspy.ChatAdapter(use_json_adapter_fallback=False)):
        out = J.judge_checklist(P.ChecklistJudge(), "Ann", "Ann: [hm] (sits) Fine.", [f"item {i}" for i in range(n)],
                                base_id="s#1", max_attempts=attempts)
    return out, lm


def test_malformed_then_good_is_retried_with_feedback():
    out, lm = run_judge([ok(2), ok(3, score=-1)])
    assert out["status"] == "ok" and out["attempts"] == 2
    assert [v["score"] for v in out["verdicts"]] == [-1, -1, -1]
    second_prompt = lm.history[-1]["messages"][-1]["content"]
    assert "no verdict for item 3" in second_prompt


def test_always_malformed_is_a_recorded_failure():
    out, _ = run_judge([ok(3, score=5)] * 3)
    assert out["status"] == "failed" and out["attempts"] == 3
    assert "score must be -1, 0 or 1" in out["reason"]
    assert "verdicts" not in out


def test_unparseable_answer_is_rescued_from_the_raw_text():
    """The adapter cannot read an item -> score map as a list of verdicts; the raw section still parses."""
    raw = json.dumps({"1": "+1", "2": "violated", "3": {"score": "not exhibited", "evidence": "a"}})
    with dspy.context(lm=dspy.utils.DummyLM([answer(raw)]), adapter=dspy.ChatAdapter(use_json_adapter_fallback=False)):
        with pytest.raises(J.call_errors()):
            P.ChecklistJudge()(character="Ann", transcript="Ann: hi", items=["a", "b", "c"], feedback="")
    out, _ = run_judge([raw])
    assert out["status"] == "ok" and out["attempts"] == 1
    assert [v["score"] for v in out["verdicts"]] == [1, -1, 0]


def test_prose_answer_fails_after_retries():
    out, _ = run_judge(["The character clearly shows the behaviour."] * 2, attempts=2)
    assert out["status"] == "failed"


def run_holistic(answers, attempts=2):
    lm = dspy.utils.DummyLM(answers)
    with dspy.context(lm=lm, adapter=dspy.ChatAdapter(use_json_adapter_fallback=False)):
        return J.judge_holistic(P.HolisticJudge(), "Ann", "profile", "Ann: hi", base_id="s#1", max_attempts=attempts)


def test_holistic_retry_and_failure():
    out = run_holistic([{"anthropomorphism": "150", "fidelity": "40", "rationale": "x"},
                        {"anthropomorphism": "75/100", "fidelity": "40", "rationale": "ok"}])
    assert out["status"] == "ok" and out["anthropomorphism"] == 75 and out["attempts"] == 2
    out = run_holistic([{"anthropomorphism": "high", "fidelity": "40", "rationale": "x"}] * 2)
    assert out["status"] == "failed" and out["attempts"] == 2
    assert "anthropomorphism must be an integer from 0 to 100" in out["reason"]
    assert "anthropomorphism" not in out


def test_offline_judge_quotes_the_judged_characters_own_turns():
    from humanllm_dsl.runtime.backends import make_lm

    transcript = "Ben: (waves) I refuse to compromise on the budget.\nAnn: [I must defend the budget] (frowns) No."
    items = ["Does the character defend the budget?", "Does the character refuse to compromise?"]
    with dspy.context(lm=make_lm("offline", 0), adapter=dspy.ChatAdapter(use_json_adapter_fallback=False)):
        out = J.judge_checklist(P.ChecklistJudge(), "Ann", transcript, items, base_id="x")
    assert out["status"] == "ok"
    assert [v["score"] for v in out["verdicts"]] == [1, 0]   # Ben's words do not count for Ann
    assert out["verdicts"][0]["evidence"] in transcript
