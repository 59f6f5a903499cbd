"""Experiment trackers: the names `--report-to` takes, the package each needs, and logging a
finished evaluation's metrics to one. Training hands the name to TRL (`SFTConfig.report_to`);
evaluation logs its summary numbers here. A tracker whose package is missing is a clear error
naming the package, raised before any work starts.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path

TRACKERS = ("none", "tensorboard", "wandb", "trackio")
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio"}


class TrackerError(RuntimeError):
    """An unknown tracker, or one whose package is not installed."""


def require(name: str) -> None:
    """Raise TrackerError unless `name` is a tracker whose package can be imported."""
    if name not in TRACKERS:
        raise TrackerError(f"--report-to must be one of {', '.join(TRACKERS)}; got {name!r}")
    package = PACKAGES.get(name)
    if package and importlib.util.find_spec(package) is None:
        raise TrackerError(f"--report-to {name} needs the `{package}` package, which is not installed "
                           f"(pip install {package})")


def flat_metrics(tree: Mapping, prefix: str = "") -> dict[str, float]:
    """Numbers of a nested mapping as `a/b/c` -> value (what trackers plot); other leaves are skipped."""
    out: dict[str, float] = {}
    for key, value in tree.items():
        tag = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out |= flat_metrics(value, f"{tag}/")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[tag] = float(value)
    return out


def log_metrics(name: str, folder: Path, metrics: Mapping[str, float], *, run_name: str, step: int = 0,
                config: Mapping | None = None) -> None:
    """Log `metrics` (tag -> number) with tracker `name`: TensorBoard event files under
    `folder/tensorboard`, or a wandb / trackio run named `run_name` (project `humanllm`)."""
    require(name)
    if name == "none" or not metrics:
        return
    if name == "tensorboard":
        from tensorboard.summary import DirectoryOutput, Writer

        writer = Writer(DirectoryOutput(str(Path(folder) / "tensorboard")))
        try:
            for tag, value in metrics.items():
                writer.add_scalar(tag, value, step)
            writer.flush()
        finally:
            writer.close()
        return
    module = importlib.import_module(name)  # wandb and trackio share the init / log / finish API
    module.init(project="humanllm", name=run_name, config=dict(config or {}))
    try:
        module.log(dict(metrics), step=step)
    finally:
        module.finish()
