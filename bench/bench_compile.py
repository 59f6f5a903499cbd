"""Compile throughput against a local OpenAI-compatible server with a fixed latency.

For each concurrency, runs `humanllm compile` (the whole pipeline: DSPy programs, ChatAdapter,
HTTP, validation, durable writes) against the fake server in its own process, and prints the
achieved LM calls per second side by side with the ideal concurrency / latency and their ratio,
the client's CPU time per LM call (the whole compile process, start-up included: what limits
it against a fast server) and the fake server's (it shares the machine), then LM calls and tokens per finished scenario.

    python bench/bench_compile.py                      # latency 0.2 s, concurrency 1, 16, 64
    python bench/bench_compile.py --latency 0.1 --concurrency 8 32
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "humanllm_dsl.testing", "--latency", str(latency)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    return proc, proc.stdout.readline().strip()


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(concurrency: int, scenarios: int, url: str, out: Path, workers: int = 1) -> dict:
    env = dict(os.environ, OPENAI_API_KEY="bench", LITELLM_LOCAL_MODEL_COST_MAP="True")
    cmd = [sys.executable, "-m", "humanllm_dsl", "compile", str(ROOT / "specs"), "-o", str(out), "--no-progress",
           "--scenarios", str(scenarios), "--lm", "openai/bench", "--api-base", url,
           "--concurrency", str(concurrency), "--no-cache", "--workers", str(workers)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode:
        raise SystemExit(done.stderr)
    line = next(x for x in done.stdout.splitlines() if x.startswith("time:"))
    generate = float(line.split("generate ")[1].split("s")[0])
    manifest = json.loads((out / "manifest.json").read_text())
    return {"generate_s": generate, "cpu_s": cpu, **{k: manifest[k] for k in ("lm_calls", "prompt_tokens", "completion_tokens",
                                                                 "failures", "scenarios")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="about how long each run should take at the ideal rate (a short run is mostly "
                             "ramp-up and tail: each scenario makes its calls one after another)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="processes (compared side by side)")
    args = parser.parse_args()
    server, url = start_server(args.latency)
    try:
        print(f"fake server at {url}, latency {args.latency * 1000:.0f} ms per call")
        print(f"{'concurrency':>11} {'workers':>7} {'calls':>6} {'seconds':>8} {'calls/s':>8} {'ideal':>7} {'ratio':>6} {'cpu/call':>9} {'server':>7}")
        last = None
        for c in args.concurrency:
            ideal = c / args.latency
            scenarios = max(4, int(ideal * args.seconds / 4))
            for w in args.workers:
                if w > c:
                    continue
                served = cpu_seconds(server.pid)
                with tempfile.TemporaryDirectory() as tmp:
                    r = run(c, scenarios, url, Path(tmp) / "out", w)
                served = cpu_seconds(server.pid) - served
                rate = r["lm_calls"] / r["generate_s"]
                print(f"{c:>11} {w:>7} {r['lm_calls']:>6} {r['generate_s']:>8.2f} {rate:>8.1f} {ideal:>7.1f} "
                      f"{rate / ideal:>6.2f} {r['cpu_s'] / r['lm_calls'] * 1000:>7.1f}ms "
                      f"{served / r['lm_calls'] * 1000:>5.1f}ms")
                last = r
        finished = last["scenarios"] - last["failures"]
        print(f"\nper finished scenario (all stages): {last['lm_calls'] / finished:.2f} LM calls, "
              f"{last['prompt_tokens'] / finished:,.0f} prompt + {last['completion_tokens'] / finished:,.0f} "
              f"completion tokens")
    finally:
        server.kill()


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"(benchmark took {time.perf_counter() - t:.0f} s)")
