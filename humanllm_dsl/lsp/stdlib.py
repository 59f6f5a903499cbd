"""Where the standard library (the shipped patterns) lies, for the server to load with a workspace."""

from __future__ import annotations

from pathlib import Path

from ..compiler.loader import stdlib_path


def stdlib_folders() -> list[Path]:
    """The standard library's folder, as every command loads it (none if it is missing)."""
    root = stdlib_path()
    return [root] if root is not None else []
