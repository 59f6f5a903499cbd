"""One LM call's client cost: DSPy's default route against the project's endpoint engine
(runtime/endpoint.py), side by side, on the same local server.

Sends N chat calls at a fixed concurrency to the fake OpenAI-compatible server (its own process,
fixed latency) and prints, for each route, calls per second against the ideal concurrency /
latency, the client's CPU time per call, and the latency the client saw (p50, p95). No adapter,
no validation: the LM layer alone.

    python bench/bench_lm_call.py                    # 1,000 calls, concurrency 64, latency 0.2 s
    python bench/bench_lm_call.py --calls 3000 --concurrency 128
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = [{"role": "system", "content": "You write scenes. " * 200},
            {"role": "user", "content": "[[ ## scenario ## ]]\nTwo colleagues argue about a deadline. " * 40}]


def routes(url: str) -> dict:
    from humanllm_dsl.runtime.backends import GuardedLM, LMSpec, make_lm

    return {
        "dspy default route": GuardedLM("openai/bench", api_base=url, api_key="bench", cache=False, num_retries=0),
        "endpoint engine": make_lm(LMSpec("openai/bench", api_base=url), cache=False),
    }


async def measure(lm, calls: int, concurrency: int) -> dict:
    gate, seen = asyncio.Semaphore(concurrency), []

    async def one():
        async with gate:
            start = time.perf_counter()
            await lm.acall(messages=MESSAGES)
            seen.append(time.perf_counter() - start)

    await asyncio.gather(*(one() for _ in range(concurrency)))  # connections and first-call set-up
    seen.clear()
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(calls)))
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    q = statistics.quantiles(seen, n=20)
    return {"rate": calls / wall, "cpu_ms": cpu / calls * 1000, "p50": q[9] * 1000, "p95": q[18] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    server = subprocess.Popen([sys.executable, "-m", "humanllm_dsl.testing", "--latency", str(args.latency)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        url = server.stdout.readline().strip()
        import dspy

        dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
        ideal = args.concurrency / args.latency
        print(f"fake server at {url}, latency {args.latency * 1000:.0f} ms; {args.calls} calls at concurrency "
              f"{args.concurrency} (ideal {ideal:.0f} calls/s)")
        print(f"{'route':<20} {'calls/s':>8} {'ratio':>6} {'cpu/call':>9} {'p50':>7} {'p95':>7}")
        results = {}
        for name, lm in routes(url).items():
            r = results[name] = asyncio.run(measure(lm, args.calls, args.concurrency))
            print(f"{name:<20} {r['rate']:>8.1f} {r['rate'] / ideal:>6.2f} {r['cpu_ms']:>7.2f}ms "
                  f"{r['p50']:>5.0f}ms {r['p95']:>5.0f}ms")
        base, new = results["dspy default route"], results["endpoint engine"]
        print(f"\nclient CPU per call: {new['cpu_ms'] / base['cpu_ms']:.2f}x the default route's")
    finally:
        server.kill()


if __name__ == "__main__":
    main()
