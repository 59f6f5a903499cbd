"""The progress display of compile and eval: a bar per stage (done/total, rate, ETA) and a line of
totals (LM calls, tokens, cost, calls in flight, calls resent). Work finished by earlier runs
counts as done. Where stderr is not a terminal (a log file, a batch job), a plain line every
`LOG_EVERY` seconds instead, printed by a timer, so a line comes on schedule also while nothing
finishes (a stalled server shows as unchanged counts). It knows nothing of how the work is run
(one process or several)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping

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
    def __init__(self, stages: tuple[str, ...], total: int | Mapping[str, int], done: dict[str, int],
                 mode: str | None = "bar"):
        """`total`: one total for every stage, or one per stage. `mode`: "bar" (a live display),
        "log" (a line every LOG_EVERY seconds) or None."""
        self.stages, self.done = stages, dict(done)
        self.totals = dict(total) if isinstance(total, Mapping) else {stage: total for stage in stages}
        self.failed = 0
        self.mode = mode if stages else None
        self.bar = None
        self.tasks = {}
        self.started = self.logged = time.monotonic()
        self.usage, self.in_flight, self.resent = None, 0, 0
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return max(self.totals.values(), default=0)

    def __enter__(self) -> "Progress":
        if self.mode == "bar":
            self.bar = _Bars(TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                             TaskProgressColumn(), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                             TimeRemainingColumn())
            for stage in self.stages:
                self.tasks[stage] = self.bar.add_task(stage, total=self.totals[stage], completed=self.done[stage],
                                                      rate="")
            self.bar.start()
        elif self.mode == "log" and LOG_EVERY > 0:  # with 0, a line at every advance is the schedule
            self._stop.clear()
            self._timer = threading.Thread(target=self._tick, name="progress-log", daemon=True)
            self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _tick(self) -> None:
        while not self._stop.wait(max(0.01, self.logged + LOG_EVERY - time.monotonic())):
            self._log_if_due()

    def _log_if_due(self) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self.logged < LOG_EVERY:
                return
            self.logged = now
        self.log()

    def line(self) -> str:
        """The plain progress line: counts per stage and this run's totals so far."""
        with self._lock:
            counts = ", ".join(f"{s} {self.done[s]}/{self.totals[s]}" for s in self.stages)
            usage = self.usage
            text = f"[{time.monotonic() - self.started:6.0f}s] {counts}"
            if usage is not None:
                text += (f"; {usage.calls} calls, {usage.prompt_tokens:,}+{usage.completion_tokens:,} tokens"
                         + (f", ${usage.cost:.2f}" if usage.cost else ""))
            if self.resent:
                text += f", {self.resent} resent"
            return text + (f", {self.failed} failed" if self.failed else "")

    def log(self) -> None:
        print(self.line(), file=sys.stderr, flush=True)

    def advance(self, stage: str, usage, in_flight: int = 0, resent: int = 0) -> None:
        """One piece of `stage` finished (or one slot failed: stage "failures"); `usage` holds
        this run's totals so far (calls, prompt_tokens, completion_tokens, cost)."""
        with self._lock:
            if stage == "failures":
                self.failed += 1
            else:
                self.done[stage] += 1
            self.usage, self.in_flight, self.resent = usage, in_flight, resent
        if self.mode == "log":
            self._log_if_due()
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
        if self._timer is not None:
            self._stop.set()
            self._timer.join()
            self._timer = None
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
