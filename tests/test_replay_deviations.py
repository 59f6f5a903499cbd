"""Replay: a local OpenAI-compatible server rewrites the offline engine's answers the way real
models write them (testing/deviations.py); compile through it and check the records."""

import json
from pathlib import Path

import pytest

from humanllm_dsl.runtime.records import map_shape
from humanllm_dsl.cli import main
from humanllm_dsl.compiler.loader import load
from humanllm_dsl.runtime.channels import visible
from humanllm_dsl.runtime.validate import Vocabulary
from humanllm_dsl.testing import FakeOpenAIServer
from humanllm_dsl.testing.deviations import HARMLESS, Deviations
from libgen import read_jsonl

SPECS = Path(__file__).resolve().parent.parent / "specs"
NAMES = ["sunk cost fallacy", "confirmation bias", "automation bias"]


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    out = tmp_path_factory.mktemp("replay") / "b"
    deviations = Deviations(pattern_names=NAMES, seed=1, harm=0.6)
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENAI_API_KEY", "test")
    try:
        with FakeOpenAIServer(transform=deviations) as server:
            rc = main(["compile", str(SPECS), "-o", str(out), "--no-progress", "--lm", "openai/x",
                       "--api-base", server.base_url, "--scenarios", "4"])
    finally:
        mp.undo()
    assert rc == 0
    return out, deviations


def test_every_deviation_was_exercised(replay):
    _, deviations = replay
    assert set(HARMLESS) <= set(deviations.applied), deviations.applied
    assert {"cut_stop", "pattern_in_thought", "pattern_in_background"} <= set(deviations.applied)


def test_harmless_deviations_cost_no_retry(replay):
    """Fences, JSON, preambles, think blocks, a missing final marker and two actions are accepted
    on the first try: the only retries are the harmful first attempts, one each."""
    out, deviations = replay
    manifest = json.loads((out / "manifest.json").read_text())
    assert not read_jsonl(out / "failures.jsonl")
    retries = sum(row["usage"]["retries"] for stage in out.joinpath("work").glob("*.jsonl")
                  for row in read_jsonl(stage) if "usage" in row)
    assert retries == deviations.harmful_first_attempts > 0, (retries, deviations.applied, manifest)


def test_no_pattern_name_where_refused_and_no_cut_item(replay):
    out, _ = replay
    vocab = Vocabulary.of(load(SPECS).patterns)
    records = [map_shape(r) for r in read_jsonl(out / "records.jsonl")]
    assert len(records) == 4
    for r in records:
        texts = [r["background"], r["variation"]["background"]]
        texts += [c["about_self"] for c in r["characters"]] + [v for c in r["characters"] for v in c["about_others"].values()]
        texts += [t["content"] for t in r["conversation"]]
        items = [i for items in r["checklist"].values() for i in items]
        items += [i for items in r["variation"]["checklist"].values() for i in items]
        for text in texts + items:
            assert vocab.pattern_terms(text) == [], text
        for item in items:
            assert item.rstrip().endswith("?"), item  # whole items only


def test_sft_user_turns_keep_the_order_of_actions_and_speech(replay):
    out, _ = replay
    records = {r["id"]: r for r in read_jsonl(out / "records.jsonl")}
    two_actions = 0
    for sample in (s for path in sorted((out / "sft").glob("messages_*.jsonl")) for s in read_jsonl(path)):
        users = "\n".join(m["content"] for m in sample["messages"] if m["role"] == "user")
        turns = records[sample["scenario"]]["conversation"]
        last_own = max(k for k, t in enumerate(turns) if t["char"] == sample["character"])
        for turn in turns[:last_own]:  # what the character has seen before its last turn
            if turn["char"] != sample["character"]:
                seen = visible(turn["content"])
                assert f"{turn['char']}: {seen}" in users
                assert "[" not in seen
                two_actions += "Fine. (shrugs)" in seen
    assert two_actions > 0  # the injected "(action) Fine. (shrugs) ..." reached the others in order
