"""The compile progress display: a bar per stage (done/total, rate, ETA) and a line of totals
(LM calls, tokens, cost, calls in flight, retries). Records finished by earlier runs count as done."""

from __future__ import annotations

from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from .pipeline import STAGES, Generator


class Progress:
    def __init__(self, generator: Generator, slots, stop: str, enabled: bool = True):
        self.generator = generator
        self.stages = STAGES[1:min(STAGES.index(stop), 3) + 1] if stop in STAGES[1:] else ()
        self.total = len(slots)
        self.ids = {s.id for s in slots}
        self.enabled = enabled
        self.bar = None
        self.tasks = {}
        generator.on_record = self.advance

    def done(self, stage: str) -> int:
        return sum(1 for key in self.generator.stores[stage].items if key in self.ids)

    def __enter__(self) -> "Progress":
        if not self.enabled or not self.stages:
            return self
        self.bar = RichProgress(TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                                TaskProgressColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                TimeRemainingColumn(), TextColumn("{task.fields[totals]}"), transient=False)
        for stage in self.stages:
            self.tasks[stage] = self.bar.add_task(stage, total=self.total, completed=self.done(stage),
                                                  rate="", totals="")
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def advance(self, stage: str) -> None:
        if self.bar is None:
            return
        task = self.tasks[stage]
        self.bar.advance(task)
        speed = self.bar.tasks[task].speed
        u, policy = self.generator.usage, self.generator.policy
        totals = (f"{u.calls} calls, {u.prompt_tokens:,}+{u.completion_tokens:,} tok"
                  + (f", ${u.cost:.2f}" if u.cost else "")
                  + (f", {policy.in_flight} in flight, {policy.transient_retries} resent" if policy else ""))
        self.bar.update(task, rate=f"{speed:.2f}/s" if speed else "")
        self.bar.update(self.tasks[self.stages[-1]], totals=totals)

    def summary(self) -> str:
        kept = ", ".join(f"{self.done(stage)} {stage}" for stage in self.stages)
        return f"kept {kept} of {self.total} planned"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
