"""Where `humanllm draft` puts its files beside the draft `<stem>.hpat`: the trace `<stem>.trace.json`
and the work folder `<stem>.work/`. It imports no DSPy, so `humanllm view` reads drafts by these names."""

from __future__ import annotations

from pathlib import Path

TRACE_SUFFIX = ".trace.json"
WORK_SUFFIX = ".work"


def trace_path(out: Path) -> Path:
    """The trace beside the draft `out`."""
    return out.with_name(out.stem + TRACE_SUFFIX)


def work_path(out: Path) -> Path:
    """The work folder (notes kept for a resume) beside the draft `out`."""
    return out.with_name(out.stem + WORK_SUFFIX)
