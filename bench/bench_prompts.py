"""Prompt and completion tokens per finished scenario, this tree against a baseline revision.

Compiles the same dataset twice with the offline engine, side by side: once with this working
tree and once with a baseline revision checked out in a temporary git worktree. The offline
engine counts tokens as characters / 4 for the prompt it receives (system and user messages,
exactly as DSPy's ChatAdapter renders them) and the answer it gives, so the figures compare the
prompts' sizes, not a tokenizer's. Also prints tokens per planned pattern, since the two
revisions may plan bundles of different sizes.

    python bench/bench_prompts.py                          # pilot, baseline 82a462e (before issue 11)
    python bench/bench_prompts.py --baseline HEAD~3 --scenarios 200 --dataset humanllm
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "82a462e"  # the last commit whose prompts carried pattern-level checklists


def compile_tokens(tree: Path, out: Path, dataset: str | None, scenarios: int | None) -> dict:
    cmd = [sys.executable, "-m", "humanllm_dsl", "compile", str(tree / "specs"), "-o", str(out), "--no-progress"]
    cmd += ["--dataset", dataset] if dataset else []
    cmd += ["--scenarios", str(scenarios)] if scenarios else []
    env = dict(os.environ, PYTHONPATH=str(tree), LITELLM_LOCAL_MODEL_COST_MAP="True")
    done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 3):  # 3: finished with failed scenarios (still measured)
        raise SystemExit(f"compile in {tree} failed:\n{done.stderr[-2000:]}")
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    records = [json.loads(line) for line in (out / "records.jsonl").read_text("utf-8").splitlines()]
    patterns = sum(len(r["patterns"]) for r in records)
    n = max(len(records), 1)
    return {"records": len(records), "calls": manifest["lm_calls"],
            "prompt": manifest["prompt_tokens"] / n, "completion": manifest["completion_tokens"] / n,
            "prompt_per_pattern": manifest["prompt_tokens"] / max(patterns, 1),
            "prompt_per_call": manifest["prompt_tokens"] / max(manifest["lm_calls"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default=BASELINE, help="git revision to compare against")
    parser.add_argument("--dataset", help="dataset to compile (default: the specs' default)")
    parser.add_argument("--scenarios", type=int, help="override the number of scenarios")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-prompts-") as tmp:
        tmp = Path(tmp)
        worktree = tmp / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.baseline], cwd=ROOT,
                       check=True, capture_output=True)
        try:
            figures = {"baseline": compile_tokens(worktree, tmp / "a", args.dataset, args.scenarios),
                       "this tree": compile_tokens(ROOT, tmp / "b", args.dataset, args.scenarios)}
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, capture_output=True)
    base, now = figures["baseline"], figures["this tree"]
    print(f"baseline: {args.baseline}; offline engine; tokens = characters / 4")
    print(f"{'':24}{'baseline':>12}{'this tree':>12}{'ratio':>8}")
    for key, label in (("records", "scenarios"), ("calls", "LM calls"), ("prompt", "prompt tokens/scenario"),
                       ("completion", "completion tokens/scen."), ("prompt_per_pattern", "prompt tokens/pattern"),
                       ("prompt_per_call", "prompt tokens/call")):
        ratio = now[key] / base[key] if base[key] else float("nan")
        print(f"{label:24}{base[key]:>12.0f}{now[key]:>12.0f}{ratio:>8.2f}")


if __name__ == "__main__":
    main()
