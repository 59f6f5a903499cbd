"""`--workers N`: generate in N processes at once, when one process's CPU is the limit (a fast
local server, many calls in flight). Each worker takes every N-th slot still to do, appends
whole lines to the same work files as a one-process run (one `write` per line on a file opened
for appending, so lines never interleave), and reports each finished record to the parent,
which draws the progress bar. Workers stop when the parent dies, so a killed run leaves no
orphans spending money."""

from __future__ import annotations

import math
import multiprocessing
import os
import threading

import attrs

from .pipeline import LMUnavailable, Usage


def run_workers(job, slot_ids: list[str], workers: int, progress) -> Usage:
    from .compile import Job

    ctx = multiprocessing.get_context("spawn")
    events = ctx.Queue()
    per_worker = max(1, math.ceil(job.options.limits.get("concurrency", job.config.limits.concurrency) / workers))
    config = attrs.evolve(job.config, limits=attrs.evolve(job.config.limits, concurrency=per_worker))
    job = Job(job.lib, job.dataset, job.plan, config, attrs.evolve(job.options, limits={}))
    procs = [ctx.Process(target=_worker, args=(job, slot_ids[k::workers], k, events), daemon=True)
             for k in range(workers)]
    for proc in procs:
        proc.start()
    latest = {k: (Usage(), 0, 0) for k in range(workers)}
    running, errors = workers, []
    try:
        while running:
            kind, k, *rest = events.get()
            if kind == "record":
                stage, usage, in_flight, resent = rest
                latest[k] = (Usage(**usage), in_flight, resent)
                total = _sum(u for u, _, _ in latest.values())
                progress.advance(stage, total, sum(f for _, f, _ in latest.values()),
                                 sum(r for _, _, r in latest.values()))
            elif kind == "done":
                latest[k] = (Usage(**rest[0]), 0, 0)
                running -= 1
            elif kind == "error":
                errors.append(rest[0])
                running -= 1
            elif kind == "unavailable":
                running -= 1
                errors.append(LMUnavailable(rest[0]))
            elif kind == "interrupted":
                latest[k] = (Usage(**rest[0]), 0, 0)
                running -= 1
                errors.append(KeyboardInterrupt)
    finally:
        for proc in procs:
            proc.join(timeout=30)
    if KeyboardInterrupt in errors:
        raise KeyboardInterrupt
    for error in errors:
        if isinstance(error, LMUnavailable):
            raise error
    if errors:
        raise RuntimeError(f"a compile worker failed:\n{errors[0]}")
    return _sum(u for u, _, _ in latest.values())


def _sum(usages) -> Usage:
    total = Usage()
    for usage in usages:
        total.add(usage)
    return total


def _worker(job, slot_ids: list[str], k: int, events) -> None:
    parent = multiprocessing.parent_process()
    if parent is not None:  # the parent died (kill -9): stop spending, like the parent did
        threading.Thread(target=lambda: (parent.join(), os._exit(3)), daemon=True).start()
    from .compile import run_share

    def on_record(stage, generator) -> None:
        events.put(("record", k, stage, generator.usage.as_dict(), generator.policy.in_flight,
                    generator.policy.transient_retries))

    usage = None
    try:
        usage = run_share(job, slot_ids, on_record=on_record, repair=False)
        events.put(("done", k, usage.as_dict()))
    except KeyboardInterrupt:
        events.put(("interrupted", k, Usage().as_dict()))
    except LMUnavailable as exc:
        events.put(("unavailable", k, str(exc)))
    except Exception:  # noqa: BLE001 - handed to the parent, which reports it
        import traceback
        events.put(("error", k, traceback.format_exc()))
