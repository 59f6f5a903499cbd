"""How fast `humanllm view` opens and pages at the full dataset's size, and whether browsing grows it.

Compiles the pilot offline (or takes --build), judges its reference conversations offline, then
writes a build of N records (the pilot's, repeated with new ids) and an evaluation of about
4 samples per record, and measures: the index build (cold), reopening (warm), the first page
of each list over HTTP, a scenario and a sample page, and the server's resident memory before
and after browsing many random pages. Prints a table; numbers go into docs/benchmarks.md.

    .venv/bin/python bench/bench_view.py --records 11359
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pilot(work: Path) -> tuple[Path, Path]:
    from humanllm_dsl.compiler.loader import check_paths
    from humanllm_dsl.evaluate.run import EvalOptions, evaluate
    from humanllm_dsl.runtime.compile import CompileOptions, compile_dataset

    build = work / "pilot"
    compile_dataset(check_paths([str(ROOT / "specs")]).library, CompileOptions(out=build, progress=None))
    evaluate(EvalOptions(build=build, out=work / "pilot-eval", model="reference", runs=1, report=False))
    return build, work / "pilot-eval"


def scale(build: Path, ev: Path, work: Path, n: int) -> tuple[Path, Path]:
    """A build of n records and an evaluation of every eval-split sample in it, from the pilot's rows."""
    records = [json.loads(x) for x in (build / "records.jsonl").read_text("utf-8").splitlines() if x.strip()]
    rows = {name: [json.loads(x) for x in (ev / f"{name}.jsonl").read_text("utf-8").splitlines() if x.strip()]
            for name in ("rollouts", "verdicts", "holistic")}
    by_record = {name: {} for name in rows}
    for name, items in rows.items():
        for row in items:
            by_record[name].setdefault(row["record"], []).append(row)
    evaluated = sorted(by_record["rollouts"])  # every big record gets the samples of one of these
    big, big_ev = work / "big", work / "big-eval"
    big.mkdir()
    big_ev.mkdir()
    (big / "patterns.json").write_text((build / "patterns.json").read_text())
    results = json.loads((ev / "results.json").read_text())
    results["build"] = str(big)
    (big_ev / "results.json").write_text(json.dumps(results))
    by_id = {r["id"]: r for r in records}
    outs = {name: (big_ev / f"{name}.jsonl").open("w", encoding="utf-8") for name in rows}
    samples = 0
    with (big / "records.jsonl").open("w", encoding="utf-8") as f:
        for i in range(n):
            r = dict(by_id[evaluated[i % len(evaluated)]])
            r["id"] = f"bench-{i:05d}"
            f.write(json.dumps(r) + "\n")
            for name, out in outs.items():
                source = evaluated[i % len(evaluated)]
                for row in by_record[name].get(source, []):
                    sample = row["id"].split("#")[0].replace(source, r["id"], 1)
                    new = {**row, "record": r["id"], "id": row["id"].replace(source, r["id"], 1)}
                    if "sample" in row:
                        new["sample"] = sample
                    out.write(json.dumps(new) + "\n")
                    samples += name == "rollouts"
    for out in outs.values():
        out.close()
    print(f"generated {n} records, {samples} samples")
    return big, big_ev


def get(url: str) -> tuple[float, int]:
    start = time.perf_counter()
    with urllib.request.urlopen(url) as r:
        body = r.read()
    return time.perf_counter() - start, len(body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=11359)
    ap.add_argument("--browse", type=int, default=400, help="random pages fetched for the memory check")
    args = ap.parse_args()
    from humanllm_dsl.view.app import make_server, open_app

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        big, big_ev = scale(*pilot(work), work, args.records)
        cache = work / "cache"
        t = time.perf_counter()
        app = open_app([big, big_ev], None, cache)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        open_app([big, big_ev], None, cache)
        warm = time.perf_counter() - t
        server = make_server(app)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        db = app.db()
        rids = [r[0] for r in db.execute("SELECT id FROM scenarios")]
        sids = [r[0] for r in db.execute("SELECT id FROM samples")]
        timings = {
            "first page /scenarios": get(url + "/scenarios"),
            "filtered /scenarios?split=train&itype=reinforce": get(url + "/scenarios?split=train&itype=reinforce"),
            "search /scenarios?q=leans+forward": get(url + "/scenarios?q=leans+forward"),
            "last page /scenarios?page=228": get(url + "/scenarios?page=228"),
            "first page /e/1/samples": get(url + "/e/1/samples"),
            "a scenario page": get(url + f"/b/0/s/{rids[len(rids) // 2]}"),
            "a sample page": get(url + f"/e/1/x/{quote(sids[len(sids) // 2])}"),
            "eval overview /e/1": get(url + "/e/1"),
            "patterns /patterns": get(url + "/patterns"),
        }
        rng = random.Random(0)
        memory = [rss_mb()]
        t = time.perf_counter()
        for _ in range(3):
            for _ in range(args.browse):
                if rng.random() < 0.5:
                    get(url + f"/b/0/s/{rng.choice(rids)}")
                else:
                    get(url + f"/e/1/x/{quote(rng.choice(sids))}")
            memory.append(rss_mb())
        browse = (time.perf_counter() - t) / (3 * args.browse)
        server.shutdown()
        index_mb = sum(p.stat().st_size for p in cache.iterdir()) / 2**20
        print(f"| records | samples | index build (cold) | reopen (warm) | index file |\n|---|---|---|---|---|\n"
              f"| {len(rids)} | {len(sids)} | {cold:.2f} s | {warm:.3f} s | {index_mb:.0f} MB |\n")
        print("| request | latency | page size |\n|---|---|---|")
        for name, (seconds, size) in timings.items():
            print(f"| {name} | {1000 * seconds:.0f} ms | {size // 1024} KB |")
        print(f"\nbrowsing {args.browse} random scenario/sample pages: {1000 * browse:.0f} ms each on average; "
              "process memory (MB) before and after each round: " + ", ".join(f"{m:.0f}" for m in memory))


if __name__ == "__main__":
    main()
