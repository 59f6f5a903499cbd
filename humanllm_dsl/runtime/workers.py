"""`--workers N`: generate in N processes at once, when one process's CPU is the limit (a fast
local server, many calls in flight). Each worker takes every N-th slot still to do, appends
whole lines to the same work files as a one-process run (one `write` per line on a file opened
for appending, so lines never interleave), and reports each finished record to the parent,
which draws the progress bar. Workers stop when the parent dies, so a killed run leaves no
orphans spending money."""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from collections.abc import Iterable

import attrs

from .pipeline import LMUnavailable, Usage
from .share import Job, run_share


class WorkerFailed(RuntimeError):
    """A worker process crashed or raised; what the others finished is on disk."""


def run_workers(job, slot_ids: list[str], workers: int, progress) -> Usage:
    """Generate `slot_ids` in `workers` processes; the limits (calls in flight, requests and
    tokens per minute) are shared out among them. Returns the run's usage."""
    share = job.config.limits.share(workers)
    job = Job(job.lib, job.dataset, job.plan, attrs.evolve(job.config, limits=share), job.options)
    ctx = multiprocessing.get_context("spawn")
    events = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(job, slot_ids[k::workers], k, events), daemon=True)
             for k in range(workers)]
    for proc in procs:
        proc.start()
    latest = {k: (Usage(), 0, 0) for k in range(workers)}
    running, errors = set(range(workers)), []
    try:
        while running:
            try:
                kind, k, *rest = events.get(timeout=1.0)
            except queue.Empty:
                for k in [k for k in running if procs[k].exitcode is not None]:  # died without a word
                    running.discard(k)
                    errors.append(f"worker {k} exited with code {procs[k].exitcode}")
                continue
            if kind == "record":
                stage, usage, in_flight, resent = rest
                latest[k] = (Usage(**usage), in_flight, resent)
                progress.advance(stage, sum_usage(u for u, _, _ in latest.values()),
                                 sum(f for _, f, _ in latest.values()), sum(r for _, _, r in latest.values()))
                continue
            running.discard(k)
            if kind == "done":
                latest[k] = (Usage(**rest[0]), 0, 0)
            elif kind == "unavailable":
                errors.append(LMUnavailable(rest[0]))
            elif kind == "interrupted":
                errors.append(KeyboardInterrupt)
            elif kind == "oserror":  # a full disk: reported as in a one-process run
                errors.append(OSError(*rest))
            else:
                errors.append(rest[0])
    finally:
        for proc in procs:
            proc.join(timeout=30)
    if KeyboardInterrupt in errors:
        raise KeyboardInterrupt
    for error in errors:
        if isinstance(error, (LMUnavailable, OSError)):
            raise error
    if errors:
        raise WorkerFailed(f"a compile worker failed: {errors[0]}")
    return sum_usage(u for u, _, _ in latest.values())


def sum_usage(usages: Iterable[Usage]) -> Usage:
    """The usages added up (a fresh `Usage`; the given ones are left alone)."""
    total = Usage()
    for usage in usages:
        total.add(usage)
    return total


def _worker(job, slot_ids: list[str], k: int, events) -> None:
    parent = multiprocessing.parent_process()
    if parent is not None:  # the parent died (kill -9): stop spending, like the parent did
        threading.Thread(target=lambda: (parent.join(), os._exit(3)), daemon=True).start()


    def on_record(stage, generator) -> None:
        events.put(("record", k, stage, generator.usage.as_dict(), generator.policy.in_flight,
                    generator.policy.transient_retries))

    usage = None
    try:
        usage = run_share(job, slot_ids, on_record=on_record, repair=False)
        events.put(("done", k, usage.as_dict()))
    except KeyboardInterrupt:
        events.put(("interrupted", k))
    except LMUnavailable as exc:
        events.put(("unavailable", k, str(exc)))
    except OSError as exc:
        events.put(("oserror", k, exc.errno, exc.strerror, exc.filename))
    except Exception:  # noqa: BLE001 - handed to the parent, which reports it
        import traceback
        events.put(("error", k, traceback.format_exc()))
