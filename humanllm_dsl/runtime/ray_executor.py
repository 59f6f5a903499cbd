"""`--executor ray`: generate on a Ray cluster (`--ray-address`) or a local Ray instance.

Each Ray worker is an async actor with its own LMs (an `hf:` model on the GPU Ray gives it, or
an endpoint); the driver gives every worker every N-th slot still to do, with the rows of the
stages those slots already finished. A worker writes nothing: it streams each finished stage
row (and each failure) back, and the driver alone appends it to the output folder's work files
as it arrives. So no shared filesystem is needed, a killed run resumes as today, and the output
equals a one-process run's (the work files' line order aside). Ray is imported only here.
`humanllm eval --executor ray` (evaluate/ray_eval.py) is built from the same pieces, below
`run_ray`: `session`, `check_room`, `start_actors`, `drain`, `raise_worker_errors`.

Keys: workers on other machines read their keys from their own environment; the variables an
LM config names with `api_key_env`, and the driver's `*_API_KEY` / `*_API_BASE` variables, are
passed to the workers' environment so a local instance or a fresh cluster works unchanged.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import attrs

from ..compiler.loader import UsageError
from .backends import HF_PREFIX
from .layout import Build
from .pipeline import LMUnavailable, Usage
from .share import Job, make_generator, make_lms, run_generator
from .stages import GENERATION_PROGRAMS, work_stages
from .store import JsonlStore, dumps
from .workers import WorkerFailed, sum_usage


class RayUnavailable(UsageError):
    """Ray is not installed, or the cluster cannot be reached (a usage error at the command line)."""


class RelayStore:
    """Stands in for a work file inside a Ray worker: holds the rows the driver sent (stages
    already finished) and hands each new row to `send` instead of writing it."""

    def __init__(self, stage: str, rows: dict[str, dict], send):
        self.stage, self.rows, self.send = stage, rows, send
        self.items = rows

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def get(self, key: str) -> dict | None:
        return self.rows.get(key)

    async def commit(self, row: dict) -> None:
        self.append(row)

    def append(self, row: dict) -> None:
        row = json.loads(dumps(row))  # as a work file reads it back (keys sorted): later prompts see the same text
        self.rows[row["id"]] = row
        self.send(self.stage, row)

    def close(self) -> None:
        pass


class SlotWorker:
    """One Ray worker (made an actor in `_actor_class`): its LMs are built once, on its node."""

    def __init__(self, job: Job):
        self.job = job
        self.lms = make_lms(job)

    async def run(self, slot_ids: list[str], done: dict[str, dict[str, dict]]):
        """Generate `slot_ids` (`done`: stage -> id -> row already in the driver's work files);
        yields ("row", stage, row, usage) for each finished row, then ("done", usage)."""
        events: asyncio.Queue = asyncio.Queue()
        with tempfile.TemporaryDirectory() as scratch:  # never written: the relay stores stand in
            job = attrs.evolve(self.job, options=attrs.evolve(self.job.options, out=Path(scratch)))
            generator = make_generator(job, slot_ids, self.lms, failures=None, repair=False)
            send = lambda stage, row: events.put_nowait(("row", stage, row, generator.usage.as_dict()))  # noqa: E731
            generator.stores = {stage: RelayStore(stage, dict(done.get(stage, {})), send)
                                for stage in generator.stores}
            generator.failures = RelayStore("failures", {}, send)
            task = asyncio.ensure_future(run_generator(generator, job))
            while not (task.done() and events.empty()):
                getter = asyncio.ensure_future(events.get())
                await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield getter.result()
                else:
                    getter.cancel()
            task.result()  # raises what the generator raised
            yield ("done", generator.usage.as_dict())


def run_ray(job: Job, slot_ids: list[str], workers: int, progress, address: str | None = None) -> Usage:
    """Generate `slot_ids` on `workers` Ray workers; the limits are shared out among them.
    Returns the run's usage."""
    share = job.config.limits.share(workers)
    worker_job = Job(job.lib, job.dataset, job.plan, attrs.evolve(job.config, limits=share),
                     attrs.evolve(job.options, progress=None))
    out = job.options.out
    durable = not job.config.offline()
    stages = work_stages(job.options.stage)
    gpu = _needs_gpu(job)
    env = forwarded_env(spec.api_key_env for spec in (job.config.lm, *job.config.programs.values()))
    with session(address, env) as ray:
        check_room(ray, gpu, workers, "--workers")
        stores = {stage: JsonlStore(Build(out).work(stage), durable=durable) for stage in stages}
        failures = JsonlStore(Build(out).failures)
        actors = start_actors(ray, SlotWorker, gpu, env, [(worker_job,)] * workers)
        latest = {k: Usage() for k in range(workers)}

        def on_event(k: int, event: tuple) -> None:
            kind, *rest = event
            if kind == "row":
                stage, row, usage = rest
                latest[k] = Usage(**usage)
                (failures if stage == "failures" else stores[stage]).append(row)
                progress.advance(stage, sum_usage(latest.values()), 0, 0)
            else:  # "done", with the worker's final usage
                latest[k] = Usage(**rest[0])

        streams = []
        for k, handle in enumerate(actors):
            share_ids = slot_ids[k::workers]
            done = {stage: {i: stores[stage].get(i) for i in share_ids if i in stores[stage]} for stage in stages}
            streams.append(handle.run.options(num_returns="streaming").remote(share_ids, done))
        try:
            errors = drain(ray, actors, streams, on_event)
        finally:
            for store in (*stores.values(), failures):
                store.close()
    raise_worker_errors(errors, (LMUnavailable, OSError))
    return sum_usage(latest.values())


def _needs_gpu(job: Job) -> bool:
    return any(job.config.for_program(p).model.startswith(HF_PREFIX) for p in GENERATION_PROGRAMS)


# The pieces every Ray executor (compile's here, eval's in evaluate/ray_eval.py) is made of.

@contextmanager
def session(address: str | None, env: dict[str, str]):
    """Ray, connected to the cluster at `address` (default: a local instance started here, and
    stopped on leaving); `env` goes into the workers' environment."""
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=True, runtime_env={"env_vars": env})
        except ConnectionError as exc:
            raise RayUnavailable(f"--ray-address {address}: cannot reach the Ray cluster: {exc}") from None
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()


def check_room(ray, gpu: bool, workers: int, flag: str) -> None:
    """Each worker holds a GPU (`hf:` models) or a CPU for the whole run: more workers than the
    cluster has would wait for ever, so say so instead (`flag`: the option that set `workers`)."""
    kind = "GPU" if gpu else "CPU"
    have = int(ray.cluster_resources().get(kind, 0))
    if workers > have:
        raise RayUnavailable(f"{flag} {workers}: each Ray worker takes a {kind}, and the Ray cluster has "
                             f"{have}; use {flag} {max(1, have)} or a larger cluster")


def start_actors(ray, cls, gpu: bool, env: dict[str, str], args: list[tuple]) -> list:
    """One actor of `cls` per entry of `args` (its constructor's arguments): each holds one GPU
    when it runs an `hf:` model, else one CPU."""
    actor = ray.remote(num_gpus=1 if gpu else 0, num_cpus=0 if gpu else 1, max_restarts=0)(cls)
    return [actor.options(runtime_env={"env_vars": env}).remote(*given) for given in args]


def drain(ray, actors: list, streams: list, on_event) -> list[Exception]:
    """Read the actors' streamed events (one stream per actor, each on its own thread) until all
    end; `on_event(k, event)` runs here, in this thread, as each event arrives. Returns the
    workers' errors (as Ray raised them here). Stopping here (Ctrl-C, a failed write) kills the actors."""
    events: queue.Queue = queue.Queue()
    for k, stream in enumerate(streams):
        threading.Thread(target=_pump, args=(ray, stream, k, events), daemon=True).start()
    running, errors = set(range(len(streams))), []
    try:
        while running:
            kind, k, payload = events.get()
            if kind == "event":
                on_event(k, payload)
            else:
                running.discard(k)
                if kind == "error":
                    errors.append(payload)
    except BaseException:
        for handle in actors:
            ray.kill(handle)
        raise
    return errors


def _pump(ray, stream, k: int, events: queue.Queue) -> None:
    """Move one worker's streamed events onto the driver's queue, then "end" or "error"."""
    try:
        for ref in stream:
            events.put(("event", k, ray.get(ref)))
    except Exception as exc:  # noqa: BLE001 - handed to the driver, which reports it
        events.put(("error", k, exc))
    else:
        events.put(("end", k, None))


def raise_worker_errors(errors: list[Exception], passed_on: tuple[type[BaseException], ...]) -> None:
    """Raise the first worker error: the worker's own exception where it is one of `passed_on`
    (the errors the command reports as a local run would), else WorkerFailed."""
    for error in errors:
        cause = getattr(error, "cause", None)
        if isinstance(cause, passed_on):
            raise cause
    if errors:
        raise WorkerFailed(f"a Ray worker failed: {errors[0]}")


def forwarded_env(api_key_envs=()) -> dict[str, str]:
    """What the workers' environment gets from the driver's: the named key variables, every
    `*_API_KEY` / `*_API_BASE` variable, and LITELLM_LOCAL_MODEL_COST_MAP."""
    names = {name for name in api_key_envs if name}
    names |= {k for k in os.environ if k.endswith(("_API_KEY", "_API_BASE"))} | {"LITELLM_LOCAL_MODEL_COST_MAP"}
    return {k: os.environ[k] for k in sorted(names) if k in os.environ}


def import_ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--executor ray needs Ray: pip install 'humanllm[ray]'") from None
    return ray
