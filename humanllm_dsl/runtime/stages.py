"""The names of the compile pipeline's stages and generation programs: their one source.

Light on purpose (no DSPy): the command line reads it to offer `--stage` choices.
"""

from __future__ import annotations

STAGES = ("plan", "scenarios", "conversations", "checklists", "variations", "export")
WORK_STAGES = STAGES[1:-1]  # the stages that call the LM, each with its file in work/
GENERATION_PROGRAMS = ("scenario", "conversation", "checklist", "variation")


def work_stages(stop: str) -> tuple[str, ...]:
    """The LM stages a run that stops after `stop` goes through."""
    return WORK_STAGES[:min(STAGES.index(stop), len(WORK_STAGES))]
