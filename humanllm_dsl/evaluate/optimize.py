"""DSPy optimisation of the judges (against human ratings) and of conversation synthesis
(against the judge), with a choice of optimiser; the result is saved with `save_program`.

Registries, not if-chains: `TARGET_REGISTRY` holds what can be optimised (each target builds its
examples, its program and its metric), `OPTIMIZER_REGISTRY` the DSPy optimisers. This module
imports no DSPy at import time (only attrs and `scores`), so the CLI can list the names cheaply.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import attrs

from ..compiler.model import TRAIN_SPLIT
from ..runtime.stages import OFFLINE
from .scores import HOLISTIC, KINDS



class OptimizeError(Exception):
    """An optimisation that cannot run; `data` is True when the input data is at fault (exit 1)."""

    def __init__(self, message: str, data: bool = False):
        super().__init__(message)
        self.data = data


@attrs.frozen
class OptimizeOptions:
    target: str
    build: Path
    out: Path
    optimizer: str = "bootstrap"
    human: Path | None = None
    rollouts: Path | None = None
    lm: str = OFFLINE
    judge: str = OFFLINE
    reflection_lm: str | None = None
    api_base: str | None = None
    specs: tuple[str, ...] = ()  # they add to the standard library when `stdlib`
    stdlib: bool = True
    split: str = TRAIN_SPLIT
    limit: int = 20
    val_fraction: float = 0.25
    max_demos: int = 4
    budget: str = "light"
    seed: int = 0
    concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    timeout: float = 120.0
    cache: bool = True
    cache_dir: Path | None = None  # default: OUT/cache


# ---- metrics ------------------------------------------------------------------------------
def checklist_percent(verdicts, n_items: int) -> float | None:
    """100 x the mean verdict score, or None when the verdicts are malformed.

    Args:
        verdicts: the judge's raw verdicts.
        n_items: how many items were asked.
    """
    from .judge import VerdictError, normalise_verdicts

    try:
        vs = normalise_verdicts(verdicts, n_items)
    except VerdictError:
        return None
    return 100.0 * sum(v["score"] for v in vs) / len(vs) if vs else None


def judge_agreement(example, pred, trace=None):
    """Agreement of the checklist judge with a human score: 1 - |judge - human| / 200 (0 for a
    malformed answer). While bootstrapping (`trace` set) it says whether the answer is close
    enough to become a demonstration (agreement >= 0.9).

    Args:
        example: has `items` and `human` (the human's IPE or MPD score, -100..100).
        pred: the judge's prediction (`verdicts`).
        trace: set by DSPy while bootstrapping.
    """
    score = checklist_percent(getattr(pred, "verdicts", None), len(example["items"]))  # .items is a method
    agreement = 0.0 if score is None else 1.0 - abs(score - example.human) / 200.0
    return agreement >= 0.9 if trace is not None else agreement


def holistic_agreement(example, pred, trace=None):
    """Agreement of the holistic judge with human ratings: 1 - mean |judge - human| / 100 over the
    rated scales (0 for a malformed answer).

    Args:
        example: has `human`: {"anthropomorphism": x, "fidelity": y} (either may be absent).
        pred: the holistic judge's prediction.
        trace: set by DSPy while bootstrapping.
    """
    from .judge import VerdictError, coerce_rating

    gaps = []
    for field, human in example.human.items():
        try:
            gaps.append(abs(coerce_rating(getattr(pred, field, None), field) - human) / 100.0)
        except VerdictError:
            gaps.append(1.0)
    agreement = 1.0 - sum(gaps) / len(gaps)
    return agreement >= 0.9 if trace is not None else agreement


def with_feedback(metric: Callable) -> Callable:
    """A metric in GEPA's form (`gold, pred, trace, pred_name, pred_trace` -> score and feedback).

    Args:
        metric: `(example, pred, trace) -> float`.
    """
    def gepa_metric(gold, pred, trace=None, pred_name=None, pred_trace=None):
        import dspy

        score = float(metric(gold, pred))
        return dspy.Prediction(score=score, feedback=f"agreement with the reference was {score:.2f} (1 is best)")
    return gepa_metric


# ---- targets ---------------------------------------------------------------------------------
def _human_scores(path: Path) -> dict[tuple[str, str], float]:
    from .align import AlignDataError, read_scores

    try:
        return read_scores(path)
    except AlignDataError as exc:
        raise OptimizeError(str(exc), data=True) from None


def _samples_with_turns(o: OptimizeOptions):
    """Every sample of the build (all splits) with the turns the human ratings are about."""
    from . import data as D
    from . import rollout as R

    patterns = D.load_patterns(o.build)
    samples = D.samples_of(D.load_records(o.build, (*D.EVAL_SPLITS, TRAIN_SPLIT)), patterns)
    if o.rollouts is None:
        return [(s, R.reference_rollout(s)["turns"]) for s in samples]
    path = o.rollouts / "rollouts.jsonl"
    turns = {row["id"]: row["turns"] for row in D.read_jsonl(path) if "id" in row and "turns" in row}
    if not turns:
        raise OptimizeError(f"{path}: no rollouts", data=True)
    return [(s, turns[s.id]) for s in samples if s.id in turns]


def judge_examples(o: OptimizeOptions) -> list:
    """One example per (sample, IPE or MPD) that a human rated: the judge's inputs with only that
    metric's items, and the human score.

    Args:
        o: the options (`build`, `human`, `rollouts`).
    """
    import dspy

    from .rollout import transcript

    human = _human_scores(o.human)
    out = []
    for sample, turns in _samples_with_turns(o):
        for metric, kind in KINDS.items():
            if (sample.id, metric) not in human:
                continue
            items = [i.text for i in sample.items if i.kind == kind]
            if items:
                out.append(dspy.Example(character=sample.character, transcript=transcript(turns, sample.character),
                                        items=items, feedback="", human=human[(sample.id, metric)], sample=sample.id,
                                        metric=metric).with_inputs("character", "transcript", "items", "feedback"))
    return out


def holistic_examples(o: OptimizeOptions) -> list:
    """One example per sample with a human anthropomorphism or fidelity rating.

    Args:
        o: the options (`build`, `human`, `rollouts`).
    """
    import dspy

    from .judge import profile_text
    from .rollout import transcript

    human = _human_scores(o.human)
    out = []
    for sample, turns in _samples_with_turns(o):
        rated = {f: human[(sample.id, f)] for f in HOLISTIC if (sample.id, f) in human}
        if rated:
            out.append(dspy.Example(character=sample.character, profile=profile_text(sample.record, sample.character),
                                    transcript=transcript(turns, sample.character), feedback="", human=rated,
                                    sample=sample.id).with_inputs("character", "profile", "transcript", "feedback"))
    return out


def conversation_examples(o: OptimizeOptions, lib=None) -> list:
    """One example per scenario of the chosen split: the conversation program's inputs (as the
    compiler builds them, pattern definitions from the specs) and what the metric needs.

    Args:
        o: the options (`build`, `specs`, `split`).
        lib: the library of `o.specs`, when already built.
    """
    import dspy

    from ..compiler import programs as P
    from . import data as D

    if lib is None:
        lib = _library(o)
    declared = {(tuple(it.patterns), it.type): it for it in lib.interactions}
    turns_range = tuple(lib.dataset(None).turns)
    patterns = D.load_patterns(o.build)
    out = []
    for record in D.load_records(o.build, D.splits_for(o.split)):
        missing = [p for p in record["patterns"] if p not in lib.by_id]
        if missing:
            raise OptimizeError(f"record `{record['id']}` uses patterns the specs lack: {', '.join(missing)}", data=True)
        interactions = []
        for it in record.get("interactions", []):
            full = declared.get((tuple(it["patterns"]), it["type"]))
            interactions.append({**it, "because": getattr(full, "because", ""), "expect": getattr(full, "expect", "")})
        context = P.scenario_context(record, [lib.by_id[p] for p in record["patterns"]], interactions)
        checks = {s.character: [i.text for i in s.items] for s in D.samples_of([record], patterns)}
        out.append(dspy.Example(scenario=P.dumps(context), min_turns=turns_range[0], max_turns=turns_range[1],
                                feedback="", record=record, checks=checks, turn_range=turns_range)
                   .with_inputs("scenario", "min_turns", "max_turns", "feedback"))
    return out


def _library(o: OptimizeOptions):
    """The library of `o.specs` (with the standard library when `o.stdlib`)."""
    from ..compiler.loader import check_paths

    result = check_paths(list(o.specs), stdlib=o.stdlib)
    if result.errors or result.library is None:
        where = ", ".join(o.specs) or "the standard library"
        raise OptimizeError(f"the specs in {where} have errors; run `humanllm check`", data=True)
    return result.library


def conversation_metric_for(judge_lm, o: OptimizeOptions, lib=None) -> Callable:
    """The conversation metric: 0.5 x format validity (no problem found by the compiler's
    conversation checks) + 0.5 x the judge's mean checklist score over the characters, mapped
    from [-1, 1] to [0, 1]. An invalid conversation is not judged (its judge half is 0).

    Args:
        judge_lm: the LM that runs the checklist judge.
        o: the options (`specs`, `stdlib`): as in compile, a conversation may name no pattern of
            their whole library, not just of its own scenario.
        lib: the library of `o.specs`, when already built.
    """
    from ..runtime.validate import Vocabulary

    vocabulary = Vocabulary.of((_library(o) if lib is None else lib).patterns)

    def metric(example, pred, trace=None):
        import dspy

        from ..compiler import programs as P
        from ..runtime.pipeline import plain
        from ..runtime.validate import conversation_problems
        from .judge import judge_checklist
        from .rollout import transcript

        turns = plain(pred).get("turns") or []
        problems = conversation_problems(turns, example.record, tuple(example.turn_range), vocabulary)
        if problems:
            return False if trace is not None else 0.0
        judge = P.ChecklistJudge()
        scores = []
        with dspy.context(lm=judge_lm):
            for name, items in example.checks.items():
                out = judge_checklist(judge, name, transcript(turns, name), items, base_id=f"opt/{name}", max_attempts=1)
                if out["status"] == "ok":
                    scores += [v["score"] for v in out["verdicts"]]
        quality = (sum(scores) / len(scores) + 1) / 2 if scores else 0.0
        value = 0.5 + 0.5 * quality
        return value >= 0.75 if trace is not None else value
    return metric


@attrs.frozen
class Target:
    program: Callable[[], object]          # a fresh module
    examples: Callable[[OptimizeOptions], list]
    metric: Callable[[object, OptimizeOptions], Callable]  # (judge LM, options) -> metric(example, pred, trace)
    library: bool = False  # examples and metric take the specs' library (`lib=`), built once per run


def _program(name: str) -> Callable[[], object]:
    def make():
        from ..compiler.saved_programs import program_class
        return program_class(name)()
    return make


TARGET_REGISTRY: dict[str, Target] = {
    "judge": Target(_program("judge"), judge_examples, lambda _lm, _o: judge_agreement),
    "holistic": Target(_program("holistic"), holistic_examples, lambda _lm, _o: holistic_agreement),
    "conversation": Target(_program("conversation"), conversation_examples, conversation_metric_for, library=True),
}
TARGETS = tuple(TARGET_REGISTRY)


# ---- optimisers ------------------------------------------------------------------------------
def bootstrap(metric, o: OptimizeOptions, lm, reflection_lm):
    """BootstrapFewShot: keep up to `max_demos` demonstrations that passed the metric.

    Args:
        metric: `(example, pred, trace) -> float | bool`.
        o: the options.
        lm: unused (the program runs on the context's LM).
        reflection_lm: unused.
    """
    import dspy

    return dspy.BootstrapFewShot(metric=metric, max_bootstrapped_demos=o.max_demos, max_labeled_demos=0,
                                 max_rounds=1)


def mipro(metric, o: OptimizeOptions, lm, reflection_lm):
    """MIPROv2 (needs optuna): proposes instructions with `reflection_lm` and searches instructions
    and demos together.

    Args:
        metric: `(example, pred, trace) -> float | bool`.
        o: the options.
        lm: the task model (the LM running the program).
        reflection_lm: the prompt model.
    """
    import dspy

    try:
        import optuna  # noqa: F401
    except ImportError:
        raise OptimizeError("MIPROv2 needs optuna: pip install 'humanllm[eval]'") from None
    return dspy.MIPROv2(metric=metric, auto=o.budget, prompt_model=reflection_lm, task_model=lm, max_bootstrapped_demos=o.max_demos,
                        max_labeled_demos=0, seed=o.seed, verbose=False)


def gepa(metric, o: OptimizeOptions, lm, reflection_lm):
    """GEPA: evolves instructions by reflecting on the metric's feedback with `reflection_lm`.

    Args:
        metric: `(example, pred, trace) -> float | bool`.
        o: the options.
        lm: unused (the program runs on the context's LM).
        reflection_lm: the reflection model.
    """
    import dspy

    return dspy.GEPA(metric=with_feedback(metric), auto=o.budget, reflection_lm=reflection_lm, seed=o.seed)


OPTIMIZER_REGISTRY: dict[str, Callable] = {"bootstrap": bootstrap, "mipro": mipro, "gepa": gepa}
OPTIMIZERS = tuple(OPTIMIZER_REGISTRY)
COMPILE_ARGS: dict[str, Callable[[list], dict]] = {
    "bootstrap": lambda val: {},
    "mipro": lambda val: {"valset": val, "requires_permission_to_run": False},
    "gepa": lambda val: {"valset": val},
}


def split_examples(examples: list, val_fraction: float, seed: int) -> tuple[list, list]:
    """Shuffle with `seed` and hold out `val_fraction` (at least one example on each side).

    Args:
        examples: all examples.
        val_fraction: the held-out share.
        seed: the shuffle's seed.
    """
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    n_val = min(len(shuffled) - 1, max(1, round(len(shuffled) * val_fraction)))
    return shuffled[n_val:], shuffled[:n_val]


def score(program, examples: list, metric) -> float:
    """The mean metric of `program` over `examples` (a failed call scores 0).

    Args:
        program: the module.
        examples: the examples.
        metric: `(example, pred, trace) -> float`.
    """
    from dspy.utils.exceptions import DSPyError

    total = 0.0
    for ex in examples:
        try:
            total += float(metric(ex, program(**ex.inputs())))
        except DSPyError:  # an LM or adapter failure on this example (programming errors propagate)
            pass
    return total / len(examples) if examples else 0.0


def optimize(o: OptimizeOptions) -> dict:
    """Build the examples, score the default program, optimise, score again, save.

    Args:
        o: the options (see `humanllm optimize --help`).
    Returns:
        `{"target", "optimizer", "train", "val", "baseline", "optimized", "path"}`.
    """
    import dspy

    from ..compiler.saved_programs import save_program
    from ..runtime.adapter import FastChatAdapter
    from ..runtime.backends import configure_cache
    from ..runtime.calls import CallPolicy, Limits, UsageMeter
    from .lms import make_lm

    if o.target not in TARGET_REGISTRY:
        raise OptimizeError(f"unknown target `{o.target}` (one of: {', '.join(TARGETS)})")
    if o.optimizer not in OPTIMIZER_REGISTRY:
        raise OptimizeError(f"unknown optimizer `{o.optimizer}` (one of: {', '.join(OPTIMIZERS)})")
    target = TARGET_REGISTRY[o.target]
    given = {"lib": _library(o)} if target.library else {}
    examples = target.examples(o, **given)[:o.limit]
    if len(examples) < 2:
        raise OptimizeError(f"only {len(examples)} usable example(s) for `{o.target}`: need at least 2 "
                            f"(check that the sample ids match RECORD_ID/CHARACTER in {o.build})", data=True)
    train, val = split_examples(examples, o.val_fraction, o.seed)
    try:
        policy = CallPolicy(Limits(concurrency=o.concurrency, rpm=o.rpm, tpm=o.tpm, timeout=o.timeout))
    except ValueError as exc:
        raise OptimizeError(str(exc)) from None
    meter = UsageMeter()
    if {o.lm, o.judge, o.reflection_lm or o.lm} != {OFFLINE}:
        configure_cache(o.cache_dir or o.out / "cache", o.cache)

    def build(spec: str):  # every LM call goes through the run's policy (limits, transport resends)
        made = make_lm(spec, o.seed, o.api_base)
        made.policy, made.meter = policy, meter
        return made

    lm = build(o.lm)
    judge_lm = lm if o.judge == o.lm else build(o.judge)
    reflection = lm if not o.reflection_lm else build(o.reflection_lm)
    metric = target.metric(judge_lm, o, **given)
    program = target.program()
    try:
        with dspy.context(lm=lm, adapter=FastChatAdapter()):
            baseline = score(program, val, metric)
            optimizer = OPTIMIZER_REGISTRY[o.optimizer](metric, o, lm, reflection)
            optimized = optimizer.compile(program, trainset=train, **COMPILE_ARGS[o.optimizer](val))
            after = score(optimized, val, metric)
    finally:
        policy.close()
    summary = {"target": o.target, "optimizer": o.optimizer, "train": len(train), "val": len(val),
               "baseline": baseline, "optimized": after, "lm": o.lm, "judge": o.judge, "build": str(o.build),
               "usage": {**meter.as_dict(), "transient_retries": policy.transient_retries}}
    save_program(optimized, o.target, o.out, extra={"optimization": summary})
    return {**summary, "path": str(o.out)}
