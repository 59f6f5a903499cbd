"""The generation pipeline: plan slots -> scenarios -> conversations -> checklists (+ variation).

Each stage's finished results are appended to `work/<stage>.jsonl` in the output folder, so a
re-run of the same command resumes without repeating finished LM calls. An output that fails
validation is retried with the problems as feedback, up to `max_attempts`, then recorded in
`failures.jsonl` with its reason.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import attrs
import dspy

from ..compiler import model as m
from ..compiler import programs as P
from ..compiler.plan import Plan, Slot
from . import validate
from .export import interaction_json
from .names import candidate_names
from .store import JsonlStore

STAGES = ("plan", "scenarios", "conversations", "checklists", "export")


@attrs.define
class Counters:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0


class Programs:
    """The generation programs, built once from the library."""

    def __init__(self, lib: m.Library):
        situations = ", ".join(f"{s.name}: {s.description}" for s in lib.situations)
        domains = ", ".join(d.name for d in lib.domains)
        self.scenario = P.ScenarioSynthesis(situations, domains)
        self.conversation = P.ConversationSynthesis()
        self.checklist = P.ScenarioChecklist()
        self.variation = P.ScenarioVariation()


class Generator:
    def __init__(self, lib: m.Library, dataset: m.Dataset, plan: Plan, work: Path, failures: JsonlStore,
                 max_attempts: int = 3, programs: Programs | None = None):
        self.lib, self.dataset, self.plan = lib, dataset, plan
        self.programs = programs or Programs(lib)
        self.failures = failures
        self.max_attempts = max_attempts
        self.counters = Counters()
        self.stores = {stage: JsonlStore(work / f"{stage}.jsonl") for stage in STAGES[1:4]}
        self.by_id = lib.by_id
        self.situations = {s.id: s for s in lib.situations}
        self.domains = {d.id: d for d in lib.domains}
        self.declared = {(it.patterns, it.type): it for it in lib.interactions}

    # -- one call, with validation and feedback retries
    def _attempt(self, slot: Slot, stage: str, call: Callable[[str, dict], dspy.Prediction],
                 check: Callable[[dspy.Prediction], list[str]]) -> dspy.Prediction | None:
        feedback, problems = "", []
        for attempt in range(self.max_attempts):
            config = {"rollout_id": f"{slot.id}/{stage}/{attempt}"}
            try:
                out = call(feedback, config)
            except (ValueError, KeyError, TypeError, RuntimeError) as exc:  # adapter parse errors and the like
                problems = [f"the output could not be parsed: {exc}"]
                out = None
            self._count(out)
            if out is not None:
                problems = check(out)
                if not problems:
                    return out
            self.counters.retries += attempt + 1 < self.max_attempts
            feedback = "Fix these problems: " + "; ".join(problems)
        self.failures.append({"id": slot.id, "stage": stage, "attempts": self.max_attempts,
                              "reason": "; ".join(problems)})
        return None

    def _count(self, out) -> None:
        self.counters.calls += 1
        usage = out.get_lm_usage() if out is not None and hasattr(out, "get_lm_usage") else None
        for entry in (usage or {}).values():
            self.counters.prompt_tokens += int(entry.get("prompt_tokens") or 0)
            self.counters.completion_tokens += int(entry.get("completion_tokens") or 0)

    # -- stages
    def scenario(self, slot: Slot) -> dict | None:
        rng = random.Random(f"{self.plan.seed}/{slot.id}/names")
        names = candidate_names(rng, slot.characters + 2)
        situation, domain = self.situations[slot.situation], self.domains[slot.domain]
        briefs = [P.pattern_brief(self.by_id[p]) for p in slot.patterns]
        interactions = [self._interaction(i) for i in slot.interactions]

        def call(feedback, config):
            return self.programs.scenario(
                patterns=P.dumps(briefs), interactions=P.dumps(interactions),
                situation=f"{situation.name}: {situation.description}",
                domain=f"{domain.name}: {domain.description}".rstrip(": "),
                character_count=slot.characters, candidate_names=names, feedback=feedback, config=config)

        out = self._attempt(slot, "scenarios", call, lambda o: validate.scenario_problems(_plain(o), slot, names))
        if out is None:
            return None
        result = _plain(out)
        return {"id": slot.id, **result}

    def conversation(self, slot: Slot, scenario: dict) -> dict | None:
        context = self.scenario_context(slot, scenario)
        names = [self.by_id[p].name for p in slot.patterns]

        def call(feedback, config):
            return self.programs.conversation(scenario=P.dumps(context), min_turns=self.dataset.turns[0],
                                              max_turns=self.dataset.turns[1], feedback=feedback, config=config)

        out = self._attempt(slot, "conversations", call, lambda o: validate.conversation_problems(
            _plain(o)["turns"], scenario, self.dataset.turns, names))
        return None if out is None else {"id": slot.id, "turns": _plain(out)["turns"]}

    def checklists(self, slot: Slot, scenario: dict) -> dict | None:
        context = self.scenario_context(slot, scenario)
        out = self._attempt(slot, "checklists",
                            lambda fb, cfg: self.programs.checklist(scenario=P.dumps(context), feedback=fb, config=cfg),
                            lambda o: validate.checklist_problems(_plain(o)["checklist"], scenario))
        if out is None:
            return None
        checklist = _plain(out)["checklist"]
        varied_context = {**context, "checklist": checklist}
        var = self._attempt(slot, "checklists",
                            lambda fb, cfg: self.programs.variation(scenario=P.dumps(varied_context), feedback=fb, config=cfg),
                            lambda o: validate.checklist_problems(_plain(o)["varied_checklist"], scenario))
        if var is None:
            return None
        return {"id": slot.id, "checklist": checklist, "variation": _plain(var)}

    def scenario_context(self, slot: Slot, scenario: dict) -> dict:
        return {key: scenario[key] for key in ("background", "characters", "protagonist", "char2pattern",
                                                "design_analysis")} | {
            "patterns": [P.pattern_brief(self.by_id[p]) for p in slot.patterns],
            "interactions": [self._interaction(i) for i in slot.interactions]}

    def _interaction(self, it) -> dict:
        """The slot's interaction with the rationale and expected behaviour the spec declares."""
        full = self.declared[(it.patterns, it.type)]
        return interaction_json(it) | {"because": full.because, "expect": full.expect}

    # -- driving
    def run(self, stop: str, progress=None) -> None:
        """Run every stage up to and including `stop` over all slots."""
        last = STAGES.index(stop)
        failed = set()
        for stage in STAGES[1:min(last, 3) + 1]:
            store = self.stores[stage]
            todo = [s for s in self.plan.slots if s.id not in store and s.id not in failed]
            task = progress.add_task(stage, total=len(self.plan.slots), completed=len(self.plan.slots) - len(todo)) \
                if progress else None
            for slot in todo:
                result = self._run_stage(stage, slot)
                if result is None:
                    failed.add(slot.id)
                else:
                    store.append(result)
                if progress:
                    progress.advance(task)
            store.close()

    def _run_stage(self, stage: str, slot: Slot) -> dict | None:
        if stage == "scenarios":
            return self.scenario(slot)
        scenario = self.stores["scenarios"].get(slot.id)
        if scenario is None:
            return None
        if stage == "conversations":
            return self.conversation(slot, scenario)
        if slot.id not in self.stores["conversations"]:
            return None
        return self.checklists(slot, scenario)


def _plain(prediction: dspy.Prediction) -> dict:
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
