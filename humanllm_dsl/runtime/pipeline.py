"""The generation pipeline: plan slots -> scenarios -> conversations -> checklists (+ variation).

Slots run concurrently, each through its stages in order, so a scenario's conversation starts as
soon as its scenario is done. Each stage's finished results are appended to `work/<stage>.jsonl`
in the output folder, so a re-run of the same command resumes without repeating finished LM
calls. An output that fails validation (or cannot be parsed, or was cut off) is retried with the
problems as feedback, up to `max_attempts`, then recorded in `failures.jsonl` with its reason.
Transient transport failures are retried by the CallPolicy (see calls.py).

One output of a stage is a `Task`: `Generator.task` builds it (the program, its inputs, the
check), `Generator.settle` judges one attempt's answer (valid: the stage row; invalid: feedback
for the next attempt, or the failure after the last), `Generator.finish` records it. The direct
path (`_attempt`) calls the LM itself; the batch driver (batch.py) sends the same requests as
provider batch jobs and settles their answers the same way.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import attrs
import dspy
from dspy.utils.exceptions import AdapterParseError

from ..compiler import model as m
from ..compiler import programs as P
from ..compiler.plan import Plan, Slot
from . import validate
from .backends import run_program
from .calls import CallPolicy, TruncatedOutput, is_transient
from .errors import call_failed, describe, is_fatal, is_lm_error, is_unexpected
from .export import declared_interactions, interaction_json
from .names import candidate_names
from .records import FailureRow, Usage, dump_row, load_row
from .stages import WORK_STAGES, work_stages
from .store import JsonlStore


@attrs.define(eq=False)
class Task:
    """One output of one stage for one slot, through its attempts: what to ask (`program`,
    `inputs`), how to check the answer (`check`), and what of a valid answer the stage keeps."""

    slot: Slot
    stage: str
    program: dspy.Module
    inputs: dict
    check: Callable[[dict], list[str]]
    keep: Callable[[dict], dict]
    usage: Usage = attrs.Factory(Usage)
    attempt: int = 0  # 0-based: the attempt the next call makes
    feedback: str = ""
    failed: bool = False  # every attempt was used; the failure is recorded

    @property
    def rollout_id(self) -> str:
        """Distinct per slot, stage and attempt (so the cache never returns a rejected answer)."""
        return f"{self.slot.id}/{self.stage}/{self.attempt}"

    def call_inputs(self) -> dict:
        """The program's keyword arguments for the next attempt."""
        return dict(self.inputs, feedback=self.feedback, config={"rollout_id": self.rollout_id})


class Programs:
    """The generation programs, built once from the library; `lms` gives each its own LM."""

    def __init__(self, lib: m.Library, lms: dict[str, dspy.LM] | None = None,
                 replace: dict[str, dspy.Module] | None = None):
        self.scenario = P.ScenarioSynthesis()
        self.conversation = P.ConversationSynthesis()
        self.checklist = P.ScenarioChecklist()
        self.variation = P.ScenarioVariation()
        for name, program in (replace or {}).items():  # optimised programs loaded with --program
            setattr(self, name, program)
        for name, lm in (lms or {}).items():
            getattr(self, name).set_lm(lm)


class Generator:
    def __init__(self, lib: m.Library, dataset: m.Dataset, plan: Plan, work: Path, failures: JsonlStore,
                 max_attempts: int = 3, programs: Programs | None = None, policy: CallPolicy | None = None,
                 durable: bool = False, slots: list[Slot] | None = None, repair: bool = True):
        self.lib, self.dataset, self.plan = lib, dataset, plan
        self.slots = plan.slots if slots is None else slots
        self.programs = programs or Programs(lib)
        self.policy = policy
        self.failures = failures
        self.max_attempts = max_attempts
        self.usage = Usage()  # this run's calls, wasted ones included
        self.stores = {stage: JsonlStore(work / f"{stage}.jsonl", durable=durable, repair=repair)
                       for stage in WORK_STAGES}
        self.by_id = lib.by_id
        self.situations = {s.id: s for s in lib.situations}
        self.domains = {d.id: d for d in lib.domains}
        self.declared = declared_interactions(lib)
        self.vocabulary = validate.Vocabulary.of(lib.patterns)  # what no output may name or label
        self.on_record: Callable[[str], None] = lambda stage: None
        self.reached_lm = False  # a call has come back: from then on, failures are the answer's, not the setup's

    # -- one output: the task, one attempt's verdict, the stage row
    def task(self, slot: Slot, stage: str) -> Task:
        """The task of `stage` for `slot` (a later stage reads the slot's finished scenario)."""
        return self.tasks(slot, [stage])[0]

    def tasks(self, slot: Slot, stages: list[str]) -> list[Task]:
        """The tasks of `stages` for `slot`; the later stages share one reading of its scenario."""
        out = [self._scenario_task(slot)] if "scenarios" in stages else []
        later = [stage for stage in stages if stage != "scenarios"]
        if later:
            scenario = self.stores["scenarios"].get(slot.id)
            shown = P.dumps(self.scenario_context(slot, scenario))
            out += [self._later_task(slot, stage, scenario, shown) for stage in later]
        return out

    def _scenario_task(self, slot: Slot) -> Task:
        rng = random.Random(f"{self.plan.seed}/{slot.id}/names")
        names = candidate_names(rng, slot.characters + 2)
        situation, domain = self.situations[slot.situation], self.domains[slot.domain]
        inputs = dict(patterns=P.dumps([P.pattern_brief(self.by_id[p]) for p in slot.patterns]),
                      interactions=P.dumps([interaction_json(i, self.declared) for i in slot.interactions]),
                      situation=f"{situation.name}: {situation.description}",
                      domain=f"{domain.name}: {domain.description}".rstrip(": "),
                      character_count=slot.characters, candidate_names=names)
        return Task(slot, "scenarios", self.programs.scenario, inputs,
                    lambda o: validate.scenario_problems(o, slot, names, self.vocabulary), lambda o: o)

    def _later_task(self, slot: Slot, stage: str, scenario: dict, shown: str) -> Task:
        """A stage after the scenario; `shown` is what it sees of the scenario (no checklist)."""
        context = dict(scenario=shown)
        if stage == "conversations":
            return Task(slot, stage, self.programs.conversation,
                        dict(context, min_turns=self.dataset.turns[0], max_turns=self.dataset.turns[1]),
                        lambda o: validate.conversation_problems(o["turns"], scenario, self.dataset.turns,
                                                                 self.vocabulary),
                        lambda o: {"turns": o["turns"]})
        if stage == "checklists":
            return Task(slot, stage, self.programs.checklist, context,
                        lambda o: validate.checklist_problems(o["checklist"], scenario, self.vocabulary),
                        lambda o: {"checklist": o["checklist"]})
        if stage == "variations":
            return Task(slot, stage, self.programs.variation, context,
                        lambda o: validate.variation_problems(o, scenario, self.vocabulary),
                        lambda o: {"variation": o})
        raise ValueError(f"unknown stage `{stage}`")

    def settle(self, task: Task, out: dict | None, problems: list[str]) -> dict | None:
        """Count one attempt: `out` is the parsed answer (plain data), or None with the
        `problems` that made it unusable. Returns the stage row of a valid answer; otherwise
        sets the next attempt's feedback or, after the last attempt, records the failure."""
        task.usage.calls += 1
        if out is not None:
            problems = task.check(out)
            if not problems:
                return {"id": task.slot.id, **task.keep(out)}
        task.attempt += 1
        if task.attempt < self.max_attempts:
            task.usage.retries += 1
            task.feedback = validate.feedback_for(problems, task.attempt - 1)
            return None
        task.failed = True
        self.failures.append(dump_row(FailureRow(task.slot.id, task.stage, self.max_attempts, "; ".join(problems),
                                                 attrs.evolve(task.usage))))
        self.on_record("failures")
        return None

    async def finish(self, task: Task, row: dict | None) -> None:
        """Add the task's usage to the run; write its stage row (None: it failed)."""
        self.usage.add(task.usage)
        if row is not None:
            typed = load_row(task.stage, {**row, "usage": task.usage.as_dict()})  # the row's shape, checked
            await self.stores[task.stage].commit(dump_row(typed))
            self.on_record(task.stage)

    async def _attempt(self, task: Task) -> dict | None:
        """The direct path: call the LM for each attempt until an answer is valid or none is left."""
        while not task.failed:
            out, problems = None, []
            try:
                out = plain(await self._call(task.program, task.call_inputs(), task.usage))
            except TruncatedOutput as exc:
                self.reached_lm = True
                problems = truncated_problems(exc)
            except (AdapterParseError, ValueError, KeyError, TypeError) as exc:  # an answer in the wrong shape
                self.reached_lm = True
                problems = validate.problems_of(exc)
            except Exception as exc:  # noqa: BLE001 - transient failures the policy gave up on
                if not is_lm_error(exc):
                    raise
                if is_fatal(exc) or (not self.reached_lm and (is_transient(exc) or is_unexpected(exc))):
                    raise LMUnavailable(describe(exc, 600)) from exc
                problems = [call_failed(exc)]
            else:
                self.reached_lm = True
            row = self.settle(task, out, problems)
            if row is not None:
                return row
        return None

    async def _call(self, program: dspy.Module, inputs: dict, usage: Usage) -> dspy.Prediction:
        """Run one program call; its tokens count in `usage` whether or not the answer is usable."""
        from dspy.utils.usage_tracker import track_usage

        def on_retry() -> None:
            usage.transient_retries += 1

        with track_usage() as tracker:
            try:
                return await run_program(program, inputs, self.policy, on_retry)
            finally:
                _count_tokens(tracker, usage)

    def scenario_context(self, slot: Slot, scenario: dict) -> dict:
        """What the later stages see of a scenario: no checklist of either level (see P.pattern_brief)."""
        return P.scenario_context(scenario, [self.by_id[p] for p in slot.patterns],
                                  [interaction_json(i, self.declared) for i in slot.interactions])

    # -- driving
    def todo(self, stop: str) -> list[Slot]:
        """Slots with work left up to stage `stop` (failed slots of earlier runs are tried again)."""
        return [s for s in self.slots if any(s.id not in self.stores[stage] for stage in work_stages(stop))]

    async def run_slot(self, slot: Slot, stop: str) -> None:
        """Take one slot through every stage up to `stop`, skipping stages already on disk. The
        later stages each need only the scenario, so a failed conversation, checklist or
        variation does not stop the others; a failed scenario stops the slot."""
        stages = [stage for stage in work_stages(stop) if slot.id not in self.stores[stage]]
        if stages[:1] == ["scenarios"]:
            if not await self._settle_task(self.task(slot, "scenarios")):
                return
            stages = stages[1:]
        for task in self.tasks(slot, stages):
            await self._settle_task(task)

    async def _settle_task(self, task: Task) -> bool:
        """Attempt the task until it has a valid answer or none is left; write what it came to."""
        row = await self._attempt(task)
        await self.finish(task, row)
        return row is not None

    async def run(self, stop: str, concurrency: int) -> None:
        """Run every slot up to stage `stop` in plan order, with `concurrency` LM calls in flight.

        A slot's calls are sequential, and between two calls a slot validates the answer and
        waits for its row to reach the disk. With one slot per call in flight, that time would
        leave a call slot idle; so twice as many slots are in progress and the policy's
        semaphore alone bounds the calls (without a policy, the slots bound them)."""
        queue: asyncio.Queue[Slot] = asyncio.Queue()
        for slot in self.todo(stop):
            queue.put_nowait(slot)

        async def lane() -> None:
            while not queue.empty():
                await self.run_slot(queue.get_nowait(), stop)

        try:
            lanes = max(1, concurrency) * (1 if self.policy is None else 2)
            await asyncio.gather(*(lane() for _ in range(lanes)))
        finally:
            self.close()

    def close(self) -> None:
        for store in self.stores.values():
            store.close()


def truncated_problems(exc: TruncatedOutput) -> list[str]:
    return [f"{exc}; answer more briefly"]


class LMUnavailable(RuntimeError):
    """The LM cannot be used at all (no key, bad model name, unreachable before any answer):
    the run stops instead of recording every scenario as failed."""


def _count_tokens(tracker, usage: Usage) -> None:
    for entries in tracker.usage_data.values():
        for entry in entries:
            usage.prompt_tokens += int(entry.get("prompt_tokens") or 0)
            usage.completion_tokens += int(entry.get("completion_tokens") or 0)
            usage.cost += float(entry.get("cost") or 0.0)


def plain(prediction: dspy.Prediction) -> dict:
    """A prediction's fields as plain JSON-ready data (pydantic models become dicts)."""
    def convert(value):
        if hasattr(value, "model_dump"):
            return value.model_dump()
        if isinstance(value, list):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        return value
    return {k: convert(v) for k, v in prediction.items()}
