"""`humanllm eval --executor ray`: rollouts and judge runs on Ray workers.

Each worker is a Ray actor that builds its own LMs once, on its node (`Work`: an `hf:` model on
the GPU Ray gives it, or an endpoint), and keeps them for the whole evaluation. For each kind of
work (rollouts, then each judge), the driver gives every worker every N-th job still to do; the
worker streams each result back as it finishes, and the driver alone appends it to the output
folder. So no shared filesystem is needed, a killed evaluation resumes as a local one, and the
results equal a local run's. Ray itself is imported only by runtime/ray_executor.py.
"""

from __future__ import annotations

from contextlib import ExitStack

import attrs

from ..runtime.pipeline import LMUnavailable
from ..runtime.ray_executor import (HF_PREFIX, check_room, drain, forwarded_env, raise_worker_errors, session,
                                    start_actors)
from .data import EvalDataError
from .lms import LMSpecError
from .work import Totals, Work

RAY_WORKERS = "--ray-workers"  # the option that sets the number of workers


class EvalWorker:
    """One Ray worker (an actor, made in `start_actors`); its LMs are built on its first job, so
    an LM that cannot be made fails that call with the reason."""

    def __init__(self, o, judges: dict):
        self.o, self.judges = o, judges
        self.work: Work | None = None

    def run(self, kind: str, jobs: list):
        """Yield (result, usage so far) for each finished job."""
        if self.work is None:
            self.work = Work(self.o, self.judges)
        for result in self.work.results(kind, jobs):
            yield result, self.work.usage()


class RayExecutor:
    """Eval work on `o.ray_workers` Ray workers; the call limits are shared out among them."""

    def __init__(self, o, judges: dict):
        workers = o.ray_workers or 1
        limits = o.limits().share(workers)
        share = attrs.evolve(o, concurrency=limits.concurrency, rpm=limits.rpm, tpm=limits.tpm, progress=None)
        gpu = any(spec.startswith(HF_PREFIX) for spec in (o.model, o.judge))
        env = forwarded_env()
        self._stack = ExitStack()
        self.ray = self._stack.enter_context(session(o.ray_address, env))
        try:
            check_room(self.ray, gpu, workers, RAY_WORKERS)
            self.actors = start_actors(self.ray, EvalWorker, gpu, env, [(share, judges)] * workers)
        except BaseException:
            self._stack.close()
            raise
        self.latest = [Totals()] * workers

    def map(self, kind: str, jobs: list, done) -> None:
        """Run the jobs on the workers; `done(result)` runs here as each result arrives."""
        def on_event(k: int, event: tuple) -> None:
            result, usage = event
            self.latest[k] = usage
            done(result)

        n = len(self.actors)
        streams = [actor.run.options(num_returns="streaming").remote(kind, jobs[k::n])
                   for k, actor in enumerate(self.actors)]
        errors = drain(self.ray, self.actors, streams, on_event)
        raise_worker_errors(errors, (LMSpecError, LMUnavailable, EvalDataError, OSError))

    def usage(self) -> Totals:
        return Totals.sum(self.latest)

    def close(self) -> None:
        """Free the workers (and their GPUs) at once, even on a cluster that outlives the run."""
        for actor in self.actors:
            self.ray.kill(actor)
        self._stack.close()
