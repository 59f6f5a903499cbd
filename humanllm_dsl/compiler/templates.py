"""Prompt instructions, rendered from Jinja2 template files in a sandboxed environment."""

from __future__ import annotations

from functools import cache
from importlib import resources

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment


@cache
def environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False,
                                trim_blocks=False, autoescape=False)


@cache
def _template(name: str):
    source = resources.files("humanllm_dsl").joinpath(f"templates/{name}.jinja").read_text("utf-8")
    return environment().from_string(source)


def render(template: str, **context) -> str:
    """Render `templates/NAME.jinja` with `context`."""
    return _template(template).render(**context).strip()
