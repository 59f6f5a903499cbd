"""Shared helpers: small, valid .hpat fixtures built in code (never read from specs/)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import zlib
from pathlib import Path

# Tests never reach a model hub: a hub name must fail at once, not after network retries.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Fixture libraries are whole worlds of their own: their situations and domains (`adversity`,
# `health`, libgen's `duty`, `home`, ...) collide with the shipped ones, and their datasets include
# everything, which with the standard library would mean its 244 patterns too (other plans, other
# counts). Tests of the standard library remove this (monkeypatch.delenv) and run as users do.
os.environ.setdefault("HUMANLLM_NO_STDLIB", "1")
# `datasets.load_dataset` caches a local folder by its name and file patterns: two test builds in
# folders of the same name (tmp paths repeat across sessions) would read each other's cache. Each
# session gets its own cache, removed at exit.
_HF_CACHE = tempfile.mkdtemp(prefix="humanllm-tests-hf-")
os.environ["HF_DATASETS_CACHE"] = _HF_CACHE
atexit.register(shutil.rmtree, _HF_CACHE, ignore_errors=True)

import pytest
from hypothesis import settings

from humanllm_dsl.compiler.loader import LoadResult, check_paths

settings.register_profile("default", max_examples=80, deadline=None, derandomize=True)  # CI sees the same examples every run; "deep" explores
settings.register_profile("deep", max_examples=3000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

SOCIAL_KINDS = ("cognitive", "emotional", "motivational")
TRAIT_KINDS = ("cognitive", "emotional", "behavioral")


def pattern_text(pid: str, *, family: str = "social_cognitive", dimension: str | None = None,
                 pole: str | None = None, items: int = 13, manifestations: int = 3, sources: int = 2,
                 name: str | None = None, extra: str = "") -> str:
    """A pattern that checks cleanly (no errors, no warnings) unless told otherwise."""
    if family == "trait":
        dimension = dimension or "extraversion"
        pole = pole or "positive"
    lines = [f'pattern {pid} "{name or "Display " + pid.replace("_", " ")}" {{', f"  family {family}"]
    if dimension:
        lines.append(f"  dimension {dimension}")
    if pole:
        lines.append(f"  pole {pole}")
    lines.append(f'  definition """\n    What {pid} is, in a sentence or two.\n  """')
    for kind in (TRAIT_KINDS if family == "trait" else SOCIAL_KINDS):
        lines.append(f'  mechanism {kind} "The {kind} side of {pid}."')
    lines += [f'  manifestation "Example {k} of {pid} in daily life."' for k in range(manifestations)]
    lines.append("  checklist {")
    # items differ per pattern without naming it (a checklist item that names its pattern is warned)
    lines += [f'    "Does the character show behaviour {k} of kind {zlib.crc32(pid.encode())}?"' for k in range(items)]
    lines.append("  }")
    lines += [f'  source "Author {k}, A." (19{70 + k}) "A study of {pid} {k}" in "Journal {k}"'
              for k in range(sources)]
    if extra:
        lines.append(extra)
    lines.append("}")
    return "\n".join(lines) + "\n"


def world_text() -> str:
    """A situation and a domain (datasets need at least one of each)."""
    return 'situation adversity "Adversity" { describe "Threats or criticism." }\ndomain health "Health"\n'


def interaction_text(a: str, b: str, kind: str = "reinforce", arrow: bool = False) -> str:
    head = f"{a} -> {b}" if arrow else f"{a}, {b}"
    return f'interaction {head}: {kind} {{\n  because "Why."\n  expect "What it looks like."\n}}\n'


def clean_library() -> str:
    """Four social-cognitive patterns and five traits (one per dimension), with interactions."""
    parts = [pattern_text(p) for p in ("alpha", "beta", "gamma", "delta")]
    dims = ("extraversion", "agreeableness", "conscientiousness", "emotional_stability", "openness")
    parts += [pattern_text(f"trait_{d}", family="trait", dimension=d, pole="positive") for d in dims]
    parts += [interaction_text("alpha", "beta"), interaction_text("beta", "gamma", "conflict"),
              interaction_text("trait_openness", "delta", "modulate", arrow=True), world_text()]
    return "\n".join(parts)


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def check_text_in(tmp_path: Path, text: str, name: str = "spec.hpat") -> LoadResult:
    return check_paths([write(tmp_path, name, text)])


def messages(result: LoadResult, severity: str = "error") -> list[str]:
    return [d.message for d in result.diagnostics if d.severity == severity]


@pytest.fixture
def check(tmp_path):
    """check(text) -> LoadResult of a one-file library written to tmp_path."""
    return lambda text, name="spec.hpat": check_text_in(tmp_path, text, name)


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium (Debian's package, via Playwright) for one test module. Module scope,
    not session: Playwright's sync API runs an event loop in the main thread while it is open,
    and the other tests' `asyncio.run` must not find one."""
    from playwright.sync_api import sync_playwright

    from browser import launch

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    """A small synthetic library (tests/libgen.py) of 24 scenarios, written once per module."""
    from libgen import write_library

    return write_library(tmp_path_factory.mktemp("spec"), scenarios=24)
