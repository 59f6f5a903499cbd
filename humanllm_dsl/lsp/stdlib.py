"""Where the standard library (the shipped patterns) lies, for the server to load with a workspace."""

from __future__ import annotations

from pathlib import Path


def stdlib_folders() -> list[Path]:
    """The folders of the standard library: the repository's `specs/` beside the package.

    Stand-in until the loader ships the library inside the package; then this returns the
    loader's folder."""
    specs = Path(__file__).resolve().parents[2] / "specs"
    return [specs] if specs.is_dir() else []
