"""Generating one process's share of the plan's slots: the programs, their LMs and the Generator.

Used by `compile` in its own process and by each `--workers` process (workers.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import dspy

from ..compiler import model as m
from ..compiler.plan import Plan
from . import loop as event_loop
from .adapter import FastChatAdapter
from .backends import configure_cache, make_lm
from .calls import CallPolicy, Limits
from .layout import Build
from .lmconfig import LMConfig
from .pipeline import Generator, LMUnavailable, Programs, Usage
from .progress import Progress
from .stages import GENERATION_PROGRAMS
from .store import JsonlStore

if TYPE_CHECKING:  # a type name only: compile imports this module, not the other way round
    from .compile import CompileOptions


@attrs.frozen
class Job:
    """What one process needs to generate its share of the slots."""

    lib: m.Library
    dataset: m.Dataset
    plan: Plan
    config: LMConfig
    options: CompileOptions


def run_share(job: Job, slot_ids: list[str], progress: Progress | None = None, on_record=None,
              repair: bool = True) -> Usage:
    """Generate the given slots in this process; returns this run's usage."""
    options = job.options
    lms = make_lms(job)
    failures = JsonlStore(Build(options.out).failures, repair=repair)
    generator = make_generator(job, slot_ids, lms, failures, repair=repair)

    def record(stage: str) -> None:
        if progress is not None:
            progress.advance(stage, generator.usage, generator.policy.in_flight, generator.policy.transient_retries)
        if on_record is not None:
            on_record(stage, generator)

    generator.on_record = record
    try:
        event_loop.run(run_generator(generator, job))
    finally:
        failures.close()
    return generator.usage


def make_lms(job: Job) -> dict[str, dspy.LM]:
    """Program name -> its LM (programs sharing a spec share one LM); points DSPy's cache at the
    output folder's (or `--cache-dir`) unless every LM is offline."""
    options, config = job.options, job.config
    lms, made = {}, {}
    for name in GENERATION_PROGRAMS:
        spec = config.for_program(name)
        if spec not in made:
            try:
                made[spec] = make_lm(spec, job.plan.seed, cache=options.cache)
            except (ValueError, ImportError) as exc:  # a malformed model string, a missing extra
                raise LMUnavailable(f"`{spec.model}`: {exc}") from None
            made[spec].keep_history = False
        lms[name] = made[spec]
    if not config.offline():
        configure_cache(options.cache_dir or Build(options.out).cache, options.cache)
    return lms


def make_generator(job: Job, slot_ids, lms: dict[str, dspy.LM], failures, repair: bool = True) -> Generator:
    """The Generator for `slot_ids`, writing to the output folder's work files."""
    options, plan = job.options, job.plan
    wanted = set(slot_ids)
    return Generator(job.lib, job.dataset, plan, Build(options.out).work_dir, failures, options.max_attempts,
                     Programs(job.lib, lms, replace=_saved_programs(options.programs)),
                     durable=not job.config.offline(),
                     policy=CallPolicy(job.config.limits), slots=[s for s in plan.slots if s.id in wanted],
                     repair=repair)


async def run_generator(generator: Generator, job: Job) -> None:
    try:
        await _run(generator, job.config.limits, job.options.stage)
    finally:
        generator.usage.transient_retries = generator.policy.transient_retries


def _saved_programs(paths: dict) -> dict:
    """Load the `--program` folders in this process (DSPy modules do not cross process lines)."""
    if not paths:
        return {}
    from ..compiler.saved_programs import load_program

    return {name: load_program(path, expect=name)[1] for name, path in paths.items()}


async def _run(generator: Generator, limits: Limits, stage: str) -> None:
    import dspy

    with dspy.context(adapter=FastChatAdapter(), track_usage=True):
        await generator.run(stage, concurrency=limits.concurrency)
