"""Diagnostics latency of `humanllm lsp` for one edited file in a workspace of the full library.

Each round edits one file (alternately breaking a family name and fixing it, through the files in
turn), then does what the server does on didChange: parse that file, repeat the cross-file check,
and turn every diagnostic into LSP form. Prints p50 and p95 of the whole, and of parse and check
alone. Run: .venv/bin/python bench/bench_lsp.py [ROUNDS]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from pygls.workspace.position_codec import PositionCodec

from humanllm_dsl.lsp.positions import Positions
from humanllm_dsl.lsp.stdlib import stdlib_folders
from humanllm_dsl.lsp.workspace import Workspace

SPECS = Path(__file__).resolve().parents[1] / "specs"


def percentiles(times: list[float]) -> str:
    ordered = sorted(times)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {p50 * 1000:6.1f} ms   p95 {p95 * 1000:6.1f} ms"


def main(rounds: int = 312) -> None:
    started = time.perf_counter()
    ws = Workspace(stdlib_folders())
    ws.add_folder(SPECS)
    ws.check()
    print(f"workspace: {len(ws.files)} files, first check {time.perf_counter() - started:.2f} s")
    positions = Positions(PositionCodec())
    files = sorted(ws.files)
    total, parse, check = [], [], []
    for i in range(rounds):
        state = ws.files[files[(i // 2) % len(files)]]
        original = state.text
        text = original.replace("family ", "family x", 1) if i % 2 == 0 else original.replace("family x", "family ", 1)
        t0 = time.perf_counter()
        ws.open(state.path, text)
        t1 = time.perf_counter()
        by_file = ws.check()
        t2 = time.perf_counter()
        for path, diags in by_file.items():
            owner = ws.files[path]
            [positions.diagnostic(owner, d) for d in diags]
        t3 = time.perf_counter()
        total.append(t3 - t0)
        parse.append(t1 - t0)
        check.append(t2 - t1)
    print(f"{rounds} edits, diagnostics of one edited file:")
    print(f"  total  {percentiles(total)}")
    print(f"  parse  {percentiles(parse)}")
    print(f"  check  {percentiles(check)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 312)
