"""The names of the compile pipeline's stages, of the programs and of the offline LM: their one source.

Light on purpose (no DSPy): the command line reads it to offer `--stage` choices.
"""

from __future__ import annotations

STAGES = ("plan", "scenarios", "conversations", "checklists", "variations", "export")
PLAN, EXPORT = STAGES[0], STAGES[-1]
WORK_STAGES = STAGES[1:-1]  # the stages that call the LM, each with its file in work/
GENERATION_PROGRAMS = ("scenario", "conversation", "checklist", "variation")
JUDGE_PROGRAMS = ("judge", "holistic")  # what `humanllm eval` runs
PROGRAMS = GENERATION_PROGRAMS + JUDGE_PROGRAMS
OFFLINE = "offline"  # the LM name of the deterministic engine built from the specs


def work_stages(stop: str) -> tuple[str, ...]:
    """The LM stages a run that stops after `stop` goes through."""
    return WORK_STAGES[:min(STAGES.index(stop), len(WORK_STAGES))]
