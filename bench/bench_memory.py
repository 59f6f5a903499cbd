"""Peak memory of a whole offline compile, at 1x and 4x the dataset's size, side by side.

Each size runs `humanllm compile specs/ --dataset humanllm --scenarios N` in a fresh process
(offline engine, so the figures are the pipeline's own: plan, generation, records and every
export) and reports the child's peak resident set size. Flat memory means the 4x figure is close
to the 1x one.

    python bench/bench_memory.py                     # 11,359 and 45,436 scenarios
    python bench/bench_memory.py --scenarios 2000    # 2,000 and 8,000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_MEASURE = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.returncode)")


def peak_rss_mb(scenarios: int, out: Path) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one compile in its own process."""
    cmd = [sys.executable, "-m", "humanllm_dsl", "compile", str(ROOT / "specs"), "-o", str(out), "--dataset",
           "humanllm", "--scenarios", str(scenarios), "--no-progress"]
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - started
    kilobytes, code = done.stdout.split()[-2:]
    if code != "0":
        raise SystemExit(f"compile of {scenarios} scenarios exited {code}:\n{done.stderr[-2000:]}")
    return int(kilobytes) / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", type=int, default=11359, help="the 1x size (default: the humanllm dataset)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        for factor in (1, 4):
            n = args.scenarios * factor
            rss, seconds = peak_rss_mb(n, Path(tmp) / f"x{factor}")
            rows.append((factor, n, rss, seconds))
            print(f"{factor}x: {n} scenarios, peak RSS {rss:.0f} MB, {seconds:.0f} s", flush=True)
    (_, _, base, _), (_, _, big, _) = rows
    print(f"peak RSS 4x / 1x: {big / base:.2f}")


if __name__ == "__main__":
    main()
