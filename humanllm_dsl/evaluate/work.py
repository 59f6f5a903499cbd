"""The work of an evaluation, as one process does it: rollouts and judge runs with its own LMs.

`Work` is built where the work runs: in the `humanllm eval` process for the local executor, in
each Ray worker for `--executor ray` (evaluate/ray_eval.py). A job carries everything it needs
(the sample, and for a judge run the rollout's turns), and a result is the row the driver
writes, so whichever executor ran it, the driver's files are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed

import attrs

from ..runtime.errors import describe
from ..runtime.stages import OFFLINE
from . import judge as J
from . import rollout as R
from .data import Sample

REFERENCE = "reference"  # --model reference: judge the build's own conversations
ROLLOUT, JUDGE, HOLISTIC = "rollout", "judge", "holistic"  # the kinds of job


@attrs.frozen
class JudgeJob:
    """One judge run (`kind`: judge or holistic) of one sample's rollout."""

    kind: str
    sample: Sample
    run: int
    turns: list


@attrs.frozen
class Totals:
    """LM calls so far (of one process, or summed over Ray workers), as the progress display and
    results.json's `usage` read them."""

    calls: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    transient_retries: int = 0
    in_flight: int = 0

    @classmethod
    def sum(cls, totals: Iterable[Totals]) -> Totals:
        fields = [f.name for f in attrs.fields(cls)]
        return cls(**{name: sum(getattr(t, name) for t in totals) for name in fields})

    def as_dict(self) -> dict:
        """results.json's `usage`: calls, tokens, cost, answers from the cache, resends."""
        return {"calls": self.calls, "cached": self.cached, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost": round(self.cost, 6),
                "transient_retries": self.transient_retries}


class Work:
    """One process's LMs (through its own call policy and usage meter) and the judge programs."""

    def __init__(self, o, judges: dict):
        """`o`: the EvalOptions (its limits are this process's); `judges`: name -> judge program."""
        from ..runtime.adapter import FastChatAdapter
        from ..runtime.backends import configure_cache
        from ..runtime.calls import CallPolicy, UsageMeter
        from .lms import make_lm

        self.o, self.judges = o, judges
        self.adapter = FastChatAdapter()
        self.policy, self.meter = CallPolicy(o.limits()), UsageMeter()
        if {o.model, o.judge} - {OFFLINE, REFERENCE}:
            configure_cache(o.cache_dir or o.out / "cache", o.cache)
        self.judge_lm = self._through(make_lm(o.judge, o.seed, o.judge_api_base))
        self.model_lm = None if o.model == REFERENCE else (
            self.judge_lm if (o.model, o.api_base) == (o.judge, o.judge_api_base)
            else self._through(make_lm(o.model, o.seed, o.api_base, o.max_tokens)))

    def _through(self, lm):
        """The LM with every call going through this process's call policy and counted in its meter."""
        lm.policy, lm.meter = self.policy, self.meter
        return lm

    def results(self, kind: str, jobs: Iterable) -> Iterator:
        """Run the jobs of one kind with `o.concurrency` threads; yield each result as it finishes."""
        if kind == ROLLOUT:
            fn, lm = self.rollout, self.model_lm
        else:
            fn, lm = self.judge, self.judge_lm
        return threaded(fn, list(jobs), self.o.concurrency, {"lm": lm, "adapter": self.adapter} if lm else {})

    def rollout(self, sample: Sample) -> tuple[str, dict | None, str | None]:
        """(sample id, the rollout row or None, why it failed or None)."""
        if self.model_lm is None:
            return sample.id, R.reference_rollout(sample), None
        try:
            return sample.id, R.rollout(sample, self.model_lm, max_tokens=self.o.max_tokens, seed=self.o.seed), None
        except J.call_errors() as exc:
            return sample.id, None, describe(exc)

    def judge(self, job: JudgeJob) -> dict:
        """The verdicts.jsonl (kind judge) or holistic.jsonl row of one judge run."""
        sample, run, o = job.sample, job.run, self.o
        text = R.transcript(job.turns, sample.character)
        base = {"id": f"{sample.id}#{run}", "sample": sample.id, "run": run, "split": sample.split,
                "character": sample.character, "record": sample.record_id}
        if job.kind == JUDGE:
            out = J.judge_checklist(self.judges[JUDGE], sample.character, text, [i.text for i in sample.items],
                                    base_id=f"{sample.id}/judge/run{run}", max_attempts=o.max_attempts)
            extra = {"items": [{"kind": i.kind, "pattern": i.pattern, "text": i.text} for i in sample.items]}
            if out["status"] == "ok":
                extra["grounded"] = list(J.evidence_grounded(out["verdicts"], text))
            return {**base, **out, **extra}
        out = J.judge_holistic(self.judges[HOLISTIC], sample.character, J.profile_text(sample.record, sample.character),
                               text, base_id=f"{sample.id}/holistic/run{run}", max_attempts=o.max_attempts)
        return {**base, **out}

    def usage(self) -> Totals:
        """This process's LM calls so far, with the calls resent and those in flight."""
        return Totals(**self.meter.as_dict(), transient_retries=self.policy.transient_retries,
                      in_flight=self.policy.in_flight)

    def close(self) -> None:
        self.policy.close()


def threaded(fn: Callable, jobs: list, workers: int, context: dict) -> Iterator:
    """`fn(job)` for every job with `workers` threads under `dspy.context(**context)`, yielding
    each result as it finishes (so the caller writes the stores from one thread)."""
    import dspy

    def wrapped(job):
        with dspy.context(**context):
            return fn(job)

    if workers <= 1:
        for job in jobs:
            yield wrapped(job)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(wrapped, job) for job in jobs]
        for future in as_completed(futures):
            yield future.result()


class LocalExecutor:
    """Eval work in this process (`--executor local`)."""

    def __init__(self, o, judges: dict):
        self.work = Work(o, judges)

    def map(self, kind: str, jobs: list, done: Callable[[object], None]) -> None:
        """Run the jobs; `done(result)` runs in this thread as each finishes."""
        for result in self.work.results(kind, jobs):
            done(result)

    def usage(self) -> Totals:
        return self.work.usage()

    def close(self) -> None:
        self.work.close()
