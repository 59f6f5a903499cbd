"""The draft's Asker: a bad answer is retried with its problems as feedback; an LM that cannot be
used stops the run; an LM failure after answers have come back fails just that answer."""

from __future__ import annotations

import asyncio

import dspy
import pytest
from dspy.utils.exceptions import LMAuthError, LMServerError, LMUnexpectedError

from humanllm_dsl.draft.ask import Asker
from humanllm_dsl.runtime import errors
from humanllm_dsl.runtime.calls import CallPolicy, Limits, TruncatedOutput
from humanllm_dsl.runtime.pipeline import LMUnavailable


class Scripted:
    """A program whose answers (or raised errors) are given in order; it keeps every call's inputs."""

    def __init__(self, *answers):
        self.answers, self.calls = list(answers), []

    async def acall(self, **inputs):
        self.calls.append(inputs)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return dspy.Prediction(**answer)


def ask(program, check=lambda out: [], attempts=3, asker=None):
    asker = asker or Asker(CallPolicy(Limits(max_retries=0)), attempts)
    return asyncio.run(asker.ask(program, {"text": "x"}, check, "r")), asker


def test_a_bad_answer_is_retried_with_its_problems_as_feedback():
    program = Scripted(ValueError("no `notes` field"), TruncatedOutput("cut off"), {"notes": ["a"]}, {"notes": ["b"]})
    (out, problems), _ = ask(program, check=lambda o: [] if o["notes"] == ["b"] else ["say b"], attempts=4)
    assert out == {"notes": ["b"]} and problems == []
    assert [c["config"]["rollout_id"] for c in program.calls] == ["r/0", "r/1", "r/2", "r/3"]
    assert program.calls[0]["feedback"] == ""
    assert "attempt 1 was rejected" in program.calls[1]["feedback"]
    assert "the answer could not be read" in program.calls[1]["feedback"]
    assert "answer more briefly" in program.calls[2]["feedback"] and "say b" in program.calls[3]["feedback"]


def test_after_the_last_attempt_the_last_problems_are_returned():
    (out, problems), asker = ask(Scripted({"notes": []}, {"notes": []}), check=lambda o: ["no notes"], attempts=2)
    assert out is None and problems == ["no notes"] and asker.reached_lm


@pytest.mark.parametrize("error", [LMAuthError("bad key " + "x" * 700), LMServerError("down", status=503)])
def test_an_lm_that_cannot_be_used_stops_the_run(error):
    with pytest.raises(LMUnavailable, match=rf"^{type(error).__name__}: ") as info:
        ask(Scripted(error))
    assert len(str(info.value)) < 650  # the message is cut


def test_an_lm_failure_after_answers_came_back_fails_only_that_answer():
    asker = Asker(CallPolicy(Limits(max_retries=0)), 3)
    ask(Scripted({"notes": ["a"]}), asker=asker)
    (out, problems), _ = ask(Scripted(LMServerError("down", status=503)), asker=asker)
    assert out is None and problems == ["the LM call failed: LMServerError: down"]
    (out, problems), _ = ask(Scripted(LMUnexpectedError("boom")), asker=asker)
    assert out is None and problems == ["the LM call failed: LMUnexpectedError: boom"]
    with pytest.raises(LMUnavailable):  # no key stays fatal
        ask(Scripted(LMAuthError("no key")), asker=asker)


def test_a_programming_error_is_not_taken_for_a_bad_answer():
    with pytest.raises(ZeroDivisionError):
        ask(Scripted(ZeroDivisionError("bug")))


def test_errors_sorts_lm_failures():
    assert errors.is_fatal(LMAuthError("k")) and not errors.is_fatal(LMServerError("s"))
    assert errors.is_lm_error(LMServerError("s")) and errors.is_lm_error(TimeoutError())
    assert not errors.is_lm_error(ValueError("v"))
    assert errors.is_unexpected(LMUnexpectedError("u")) and not errors.is_unexpected(LMAuthError("k"))
    assert errors.describe(ValueError("a\n  b")) == "ValueError: a b"
    assert errors.describe(ValueError("y" * 20), limit=5) == "ValueError: yyyyy..."
