"""One program answer, through the project's one LM-call layer (`runtime.calls.CallPolicy`):
limits and transport retries there; an answer that cannot be parsed, was cut off or breaks a
rule is retried here with the problems as feedback, up to `max_attempts`, as in compile."""

from __future__ import annotations

from collections.abc import Callable

import dspy
from dspy.utils.exceptions import AdapterParseError

from ..runtime.backends import run_program
from ..runtime.calls import CallPolicy, TruncatedOutput, is_transient
from ..runtime.errors import call_failed, describe, is_fatal, is_lm_error
from ..runtime.pipeline import LMUnavailable, plain, truncated_problems
from ..runtime.validate import feedback_for, problems_of


class Asker:
    def __init__(self, policy: CallPolicy, max_attempts: int = 3):
        self.policy, self.max_attempts = policy, max_attempts
        self.reached_lm = False  # an answer has come back: later failures are the answers', not the setup's

    async def ask(self, program: dspy.Module, inputs: dict, check: Callable[[dict], list[str]],
                  rollout: str) -> tuple[dict | None, list[str]]:
        """(the valid answer, []) or (None, the last attempt's problems)."""
        feedback, problems = "", []
        for attempt in range(self.max_attempts):
            call = dict(inputs, feedback=feedback, config={"rollout_id": f"{rollout}/{attempt}"})
            try:
                out = await run_program(program, call, self.policy)
            except TruncatedOutput as exc:
                self.reached_lm = True
                problems = truncated_problems(exc)
            except (AdapterParseError, ValueError, KeyError, TypeError) as exc:  # an answer in the wrong shape
                self.reached_lm = True
                problems = problems_of(exc)
            except Exception as exc:  # noqa: BLE001 - LM failures the policy gave up on are sorted here
                if not is_lm_error(exc):
                    raise
                if is_fatal(exc) or (not self.reached_lm and is_transient(exc)):
                    raise LMUnavailable(describe(exc, 600)) from exc
                return None, [call_failed(exc)]
            else:
                self.reached_lm = True
                result = plain(out)
                problems = check(result)
                if not problems:
                    return result, []
            feedback = feedback_for(problems, attempt)
        return None, problems
