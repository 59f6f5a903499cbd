"""Commands of the later stages (compile, train, eval...). Registered here as they land."""

from __future__ import annotations


def add_commands(sub) -> None:
    return None
