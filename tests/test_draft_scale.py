"""50 papers of 30 pages each fit a model's context: every call's prompt stays under a budget,
whatever the size of the literature (chunks for the map, at most 12 notes per paper for the reduce)."""

from __future__ import annotations

import argparse
from pathlib import Path

from humanllm_dsl.draft.cli import add_commands
from humanllm_dsl.runtime import offline

SPECS = Path(__file__).resolve().parents[1] / "specs"
CONTEXT_BUDGET = 32_000  # tokens: well inside the 128k context of current models


def test_fifty_papers_of_thirty_pages_fit_the_context(tmp_path, monkeypatch):
    folder = tmp_path / "papers"
    folder.mkdir()
    for n in range(50):
        pages = [f"Study {n}, page {p}. The hot hand is the belief number {n}-{p} that streaks continue. "
                 f"Players feel excited after run {p} of study {n}, and that emotion makes them expect more. "
                 f"For example, fan {n}-{p} bets on a shooter after three hits. "
                 + "Filler text about methods and samples without any cue. " * 45 for p in range(1, 31)]
        (folder / f"paper{n:02d}.txt").write_text("\f".join(pages), "utf-8")
    largest = []
    complete = offline.OfflineEngine.complete

    def measured(self, request):
        response = complete(self, request)
        largest.append(response.usage.input_tokens)
        return response

    monkeypatch.setattr(offline.OfflineEngine, "complete", measured)
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["draft", "hot-hand fallacy", str(folder), "-o", str(tmp_path / "hh.hpat"),
                              "--specs", str(SPECS), "--no-progress"])
    assert args.func(args) == 0
    pages_chars = sum(len(p.read_text("utf-8")) for p in folder.iterdir())
    assert pages_chars // 4 > 10 * CONTEXT_BUDGET  # the literature itself is far larger than the budget
    assert len(largest) > 50 * 5  # mapped over chunks: several calls per paper
    assert max(largest) < CONTEXT_BUDGET, max(largest)
    print(f"{len(largest)} calls, {pages_chars // 4:,} tokens of papers, largest prompt {max(largest):,} tokens")
