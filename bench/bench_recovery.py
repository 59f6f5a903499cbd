"""Error recovery cost: parsing N broken declarations against N clean ones of the same size.

For each N the parser reads three inputs built from the same pattern header:
  clean     N closed blocks          pattern pI "P" {  family trait  }
  unclosed  N blocks never closed    pattern pI "P" {  family trait
  misspelt  N closed blocks with an unknown field word (`famly trait`)
and prints the best of --repeat wall times, the number of errors reported, and the ratio
broken / clean. Linear recovery keeps each ratio flat as N doubles; quadratic recovery would
double it at every step.

    python bench/bench_recovery.py                 # N = 150, 300, 600, 1200, 2400
    python bench/bench_recovery.py --sizes 1200 4800 --repeat 5
"""

from __future__ import annotations

import argparse
import time

from humanllm_dsl.syntax.diagnostics import HpatError
from humanllm_dsl.syntax.parser import parse_text

KINDS = {
    "clean": lambda i: f'pattern p{i} "P" {{\n  family trait\n}}\n',
    "unclosed": lambda i: f'pattern p{i} "P" {{\n  family trait\n',
    "misspelt": lambda i: f'pattern p{i} "P" {{\n  famly trait\n}}\n',
}


def text(kind: str, n: int) -> str:
    return "".join(KINDS[kind](i) for i in range(n))


def parse_seconds(source: str, repeat: int) -> tuple[float, int]:
    """(best wall seconds over `repeat` parses, errors reported)."""
    best, errors = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            parse_text(source, "bench.hpat")
            errors = 0
        except HpatError as exc:
            errors = len(exc.diagnostics)
        best = min(best, time.perf_counter() - start)
    return best, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[150, 300, 600, 1200, 2400])
    ap.add_argument("--repeat", type=int, default=3, help="parses per input; the best is kept (default 3)")
    args = ap.parse_args()
    parse_seconds(text("unclosed", 50), 1)  # build the parser once, outside the figures
    print(f"{'N':>6} {'KB':>6} {'clean s':>9} {'unclosed s':>11} {'errors':>7} {'ratio':>6} "
          f"{'misspelt s':>11} {'errors':>7} {'ratio':>6}")
    for n in args.sizes:
        clean, _ = parse_seconds(text("clean", n), args.repeat)
        row = [f"{n:>6}", f"{len(text('unclosed', n).encode()) / 1024:>6.0f}", f"{clean:>9.3f}"]
        for kind in ("unclosed", "misspelt"):
            seconds, errors = parse_seconds(text(kind, n), args.repeat)
            row += [f"{seconds:>11.3f}", f"{errors:>7}", f"{seconds / clean:>6.1f}"]
        print(" ".join(row), flush=True)


if __name__ == "__main__":
    main()
