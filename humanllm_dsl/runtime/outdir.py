"""The one place an output folder (`-o DIR`) is claimed before a command writes into it.

`claim(out, kind)` refuses a path that is a file, and a non-empty folder this tool did not make
(it could be anyone's: writing there would replace their README.md or manifest.json); takes an
exclusive lock so a second run on the same folder stops at once instead of paying every LM call
twice; and marks the folder as ours (`.humanllm`, holding its kind) so later runs may resume in
it. Folders written before the marker existed are recognised by their files and marked.

Only the process that claims holds the lock; `--workers` children append to the work files
without claiming. The lock is `fcntl.flock` on `.humanllm.lock`, released by the kernel when
the holder exits however it exits (kill -9 included), so a stale lock never blocks a resume.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ..compiler.loader import UsageError
from ..redact import redact
from .store import write_json

MARKER, LOCK = ".humanllm", ".humanllm.lock"
OURS = (MARKER, LOCK)

# kind -> files that show a folder of that kind written before the marker existed
LEGACY = {
    "build": (("plan.jsonl", "manifest.json"), ("plan.jsonl", "work")),
    "shard": (("plan.jsonl", "shard.json"), ("plan.jsonl", "work")),
    "merge": (("plan.jsonl", "manifest.json"),),
    "eval": (("run.json",),),
    "program": (("meta.json",),),
    "train": (("train_config.yaml",), ("train_log.jsonl",)),
}
KINDS = tuple(LEGACY)


class OutputDirError(UsageError):
    """An output folder this run may not write into; the message says why and what to do."""


class OutputBusy(OutputDirError):
    """Another process holds the output folder's lock."""


def lead_process() -> bool:
    """False in the other ranks of a distributed run (`accelerate launch`): only rank 0 claims."""
    return os.environ.get("RANK", "0") == "0"


def refuse_file(out: Path | str) -> None:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"-o {out}: exists and is not a folder")


def kind_of(out: Path) -> str | None:
    """The kind this tool marked `out` with, or recognises it as (None: not ours, or empty)."""
    marker = out / MARKER
    if marker.is_file():
        try:
            return json.loads(marker.read_text("utf-8"))["kind"]
        except (OSError, ValueError, KeyError, TypeError):
            raise OutputDirError(f"{marker}: damaged marker file; if {out} is this tool's output, "
                                 f"delete {marker} and run again") from None
    return None


def _legacy(out: Path, kind: str) -> bool:
    return any(all((out / name).exists() for name in names) for names in LEGACY[kind])


def _check_ours(out: Path, kind: str) -> bool:
    """Raise unless `out` is empty or this tool's `kind` folder; return whether it was empty."""
    entries = [p.name for p in out.iterdir() if p.name not in OURS]
    marked = kind_of(out)
    if marked is not None:
        if marked != kind:
            raise OutputDirError(f"-o {out}: is a humanllm {marked} folder, and this command writes {kind} "
                                 f"output; choose another folder")
        return False
    if not entries:
        return True
    if _legacy(out, kind):
        return False
    shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
    raise OutputDirError(f"-o {out}: the folder is not empty ({shown}) and was not made by humanllm, so "
                         f"nothing is written there; choose a new or empty folder")


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "another process"
    return (f"process {info['pid']} on {info.get('host', '?')} (`{info.get('command', '?')}`, "
            f"started {info.get('started', '?')})")


@contextlib.contextmanager
def claim(out: Path, kind: str, command: list[str] | None = None) -> Iterator[Path]:
    """Hold `out` for one run of a `kind` command (see `KINDS`).

    Raises OutputDirError (a usage error) for a file, a foreign folder or another kind's folder,
    and OutputBusy while another run holds it. If the run writes nothing, the folder is left
    as it was found.
    """
    if kind not in LEGACY:
        raise ValueError(f"unknown output kind `{kind}`")
    out = Path(out)
    refuse_file(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    empty = _check_ours(out, kind)
    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputBusy(f"-o {out}: in use by {_holder(fd)}; wait for it to finish (or stop it), "
                             f"or choose another folder") from None
        _check_ours(out, kind)  # again, now that no one else can be writing
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "command": shlex.join(["humanllm", *(command if command is not None else sys.argv[1:])])}
        info["command"] = redact(info["command"])
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        if not (out / MARKER).exists():
            write_json(out / MARKER, {"kind": kind})
        try:
            yield out
        finally:
            os.ftruncate(fd, 0)  # an empty lock file: no holder (the file stays: removing it would race)
            if empty and not [p for p in out.iterdir() if p.name not in OURS]:  # nothing written: undo
                (out / MARKER).unlink(missing_ok=True)
                (out / LOCK).unlink(missing_ok=True)
                if created:
                    out.rmdir()
    finally:
        os.close(fd)  # releases the lock
