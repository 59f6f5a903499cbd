"""The judge's rubric never reaches a generation prompt.

Every prompt of a compile of the shipped pilot dataset is recorded as it crosses the wire to a
local OpenAI-compatible server; no pattern-level checklist item may appear in any of them, and
no scenario-level checklist item in a conversation prompt. What generators get instead is the
method's pattern summary: definition, mechanisms with their kinds, manifestations.
"""

import json
import re
from pathlib import Path

import pytest

from humanllm_dsl.runtime.records import map_shape
from humanllm_dsl import load
from humanllm_dsl.cli import main
from humanllm_dsl.compiler import programs as P
from humanllm_dsl.testing import FakeOpenAIServer

SPECS = Path(__file__).resolve().parent.parent / "specs"


class RecordingServer(FakeOpenAIServer):
    """Answers like the offline engine and keeps the text of every request's messages."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.prompts: list[str] = []

    def _answer(self, request: dict) -> str:
        self.prompts.append("\n".join(str(m.get("content", "")) for m in request.get("messages", [])))
        return super()._answer(request)


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


def _program(prompt: str) -> str:
    """Which generation program a prompt belongs to, from the output fields it asks for."""
    for field, name in (("design_analysis", "scenario"), ("turns", "conversation"),
                        ("varied_checklist", "variation"), ("checklist", "checklist")):
        if f"[[ ## {field} ## ]]" in prompt:
            return name
    raise AssertionError(f"a prompt of no known program: {prompt[:200]}")


@pytest.fixture(scope="module")
def pilot(tmp_path_factory):
    out = tmp_path_factory.mktemp("pilot")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_API_KEY", "sk-test-rubric")
        with RecordingServer() as server:
            rc = main(["compile", str(SPECS), "-o", str(out), "--lm", "openai/recorder",
                       "--api-base", server.base_url, "--no-progress", "--no-cache", "--concurrency", "16"])
    assert rc == 0
    return out, server.prompts


def test_no_checklist_item_of_either_level_reaches_a_generation_prompt(pilot):
    out, prompts = pilot
    lib = load(str(SPECS))
    records = [map_shape(json.loads(line)) for line in (out / "records.jsonl").read_text("utf-8").splitlines()]
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert len(prompts) == manifest["lm_calls"] >= 4 * len(records) > 0
    texts = [_norm(p) for p in prompts]
    pattern_items = {_norm(item) for p in lib.patterns for item in p.checklist}
    leaked = sorted({item for item in pattern_items for text in texts if item in text})
    assert not leaked, f"{len(leaked)} pattern-level items reached generation prompts, e.g. {leaked[:3]}"
    scenario_items = {_norm(item) for r in records for items in r["checklist"].values() for item in items}
    scenario_items |= {_norm(item) for r in records for items in r["variation"]["checklist"].values() for item in items}
    conversations = [text for text, raw in zip(texts, prompts) if _program(raw) == "conversation"]
    assert len(conversations) == len(records)
    assert not [item for item in scenario_items for text in conversations if item in text]


def test_generators_get_the_pattern_summary(pilot):
    _, prompts = pilot
    lib = load(str(SPECS))
    scenario_prompts = [p for p in prompts if _program(p) == "scenario"]
    used = [p for p in lib.patterns if any(f'"id": "{p.id}"' in text for text in scenario_prompts)]
    assert used
    for pattern in used[:20]:
        prompt = next(text for text in scenario_prompts if f'"id": "{pattern.id}"' in text)
        brief = P.pattern_brief(pattern)
        assert json.dumps(brief["definition"], ensure_ascii=False)[1:-1] in prompt
        for mechanism in brief["mechanisms"]:
            assert json.dumps(mechanism, ensure_ascii=False)[1:-1] in prompt
        assert re.search(r"\b(cognitive|emotional|behavioral|motivational|evolutionary|social): ", prompt)
        for manifestation in pattern.manifestations:
            assert json.dumps(manifestation, ensure_ascii=False)[1:-1] in prompt


def test_pattern_brief_holds_no_checklist():
    lib = load(str(SPECS))
    for pattern in lib.patterns:
        text = _norm(json.dumps(P.pattern_brief(pattern), ensure_ascii=False))
        assert "checklist" not in text
        assert not [item for item in pattern.checklist if _norm(item) in text]
