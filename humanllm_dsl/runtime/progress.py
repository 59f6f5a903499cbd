"""The compile progress display: a bar per stage (done/total, rate, ETA) and a line of totals
(LM calls, tokens, cost, calls in flight, calls resent). Records finished by earlier runs count
as done. Where stderr is not a terminal (a log file, a batch job), a plain line every
`LOG_EVERY` seconds instead. It knows nothing of how the work is run (one process or several)."""

from __future__ import annotations

import sys
import time

from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text


LOG_EVERY = 30.0  # seconds


class _Bars(RichProgress):
    """Rich's progress bars with a line of totals under them."""

    totals = ""

    def get_renderables(self):
        yield self.make_tasks_table(self.tasks)
        if self.totals:
            yield Text(self.totals, style="dim")


class Progress:
    def __init__(self, stages: tuple[str, ...], total: int, done: dict[str, int], mode: str | None = "bar"):
        """`mode`: "bar" (a live display), "log" (a line every LOG_EVERY seconds) or None."""
        self.stages, self.total, self.done = stages, total, dict(done)
        self.failed = 0
        self.mode = mode if stages else None
        self.bar = None
        self.tasks = {}
        self.started = self.logged = time.monotonic()

    def __enter__(self) -> "Progress":
        if self.mode == "bar":
            self.bar = _Bars(TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                             TaskProgressColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                             TimeRemainingColumn())
            for stage in self.stages:
                self.tasks[stage] = self.bar.add_task(stage, total=self.total, completed=self.done[stage], rate="")
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def advance(self, stage: str, usage, in_flight: int = 0, resent: int = 0) -> None:
        """One record of `stage` finished (or one slot failed: stage "failures"); `usage` holds
        this run's totals so far."""
        if stage == "failures":
            self.failed += 1
        else:
            self.done[stage] += 1
        if self.mode == "log" and time.monotonic() - self.logged >= LOG_EVERY:
            self.logged = time.monotonic()
            print(f"[{self.logged - self.started:6.0f}s] " + ", ".join(f"{s} {self.done[s]}/{self.total}" for s in self.stages)
                  + f"; {usage.calls} calls, {usage.prompt_tokens:,}+{usage.completion_tokens:,} tokens"
                  + (f", ${usage.cost:.2f}" if usage.cost else "") + (f", {self.failed} failed" if self.failed else ""),
                  file=sys.stderr, flush=True)
        if self.bar is None:
            return
        if stage in self.tasks:
            task = self.tasks[stage]
            self.bar.advance(task)
            speed = self.bar.tasks[task].speed
            self.bar.update(task, rate=f"{speed:.2f}/s" if speed else "")
        totals = (f"{usage.calls} calls, {usage.prompt_tokens:,}+{usage.completion_tokens:,} tok"
                  + (f", ${usage.cost:.2f}" if usage.cost else "") + f", {in_flight} in flight, {resent} resent"
                  + (f", {self.failed} failed" if self.failed else ""))
        self.bar.totals = totals

    def summary(self) -> str:
        kept = ", ".join(f"{self.done[stage]} {stage}" for stage in self.stages)
        return f"kept {kept} of {self.total} planned" + (f"; {self.failed} failed" if self.failed else "")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
