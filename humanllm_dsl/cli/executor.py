"""`--executor` and the Ray options, defined once for `compile` and `eval`."""

from __future__ import annotations

from ..runtime.executors import EXECUTORS


def add_executor_options(group, *, local: str, workers: str) -> None:
    """`--executor` and `--ray-address` in the argument group `group`; `local` says what the local
    executor runs on, `workers` names the option that sets the number of Ray workers."""
    group.add_argument("--executor", choices=EXECUTORS, default="local",
                       help=f"where the work runs: `local` ({local}) or `ray` ({workers} Ray workers, each with its "
                            "own LM: an `hf:` model on a GPU of its own, an endpoint on a CPU; needs humanllm[ray]); "
                            "the output folder is written here either way")
    group.add_argument("--ray-address", metavar="ADDR",
                       help="the Ray cluster for --executor ray (e.g. ray://head:10001 or auto; default: a local "
                            "Ray instance)")
