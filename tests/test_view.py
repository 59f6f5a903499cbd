"""`humanllm view` in a real headless Chromium: a compiled pilot build and two offline
evaluations, served on 127.0.0.1 from a thread; a screenshot of each page in the test's folder."""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from humanllm_dsl.view import index as I
from humanllm_dsl.view.app import make_server, open_app
from humanllm_dsl.view.cli import add_commands

ROOT = Path(__file__).resolve().parents[1]
EVIL = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">"


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    from humanllm_dsl.compiler.loader import check_paths
    from humanllm_dsl.evaluate.run import EvalOptions, evaluate
    from humanllm_dsl.runtime.compile import CompileOptions, compile_dataset

    base = tmp_path_factory.mktemp("view")
    build = base / "pilot"
    result = check_paths([str(ROOT / "specs")])
    assert not result.errors

    def make() -> None:
        compile_dataset(result.library, CompileOptions(out=build, progress=None))
        evaluate(EvalOptions(build=build, out=base / "generic", model="offline", runs=2))
        evaluate(EvalOptions(build=build, out=base / "reference", model="reference", runs=1))

    # in a thread of its own: the browser's event loop may already run in this one (compile uses asyncio.run)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(make).result()
    evil = base / "evil"
    evil.mkdir()
    shutil.copy(build / "patterns.json", evil / "patterns.json")
    record = json.loads((build / "records.jsonl").read_text("utf-8").splitlines()[0])
    record["id"] = "evil-1"
    record["background"] = EVIL + " The rest of the background."
    turn = record["conversation"][0]
    turn["content"] += " " + EVIL
    turn["segments"].append({"kind": "speech", "text": EVIL})
    (evil / "records.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    return {"build": build, "generic": base / "generic", "reference": base / "reference", "evil": evil,
            "cache": base / "cache"}


@pytest.fixture(scope="module")
def server(folders):
    app = open_app([folders[k] for k in ("build", "generic", "reference", "evil")], [ROOT / "specs"],
                   folders["cache"])
    httpd = make_server(app, "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", app
    httpd.shutdown()
    httpd.server_close()


def test_filter_search_and_a_scenario_with_its_three_channels(server, page, tmp_path):
    url, app = server
    page.goto(url + "/scenarios")
    page.screenshot(path=str(tmp_path / "scenarios.png"), full_page=True)
    everything = int(page.locator(".pager b").first.inner_text())
    page.select_option("select[name=split]", "train")
    page.click("button[type=submit]")
    page.wait_for_url("**split=train**")
    train = int(page.locator(".pager b").first.inner_text())
    assert 0 < train < everything
    splits = page.locator("#results tbody tr td:nth-child(2)").all_inner_texts()
    assert splits and set(splits) == {"train"}
    page.fill("input[name=q]", "leans forward")
    page.click("button[type=submit]")
    searched = int(page.locator(".pager b").first.inner_text())
    assert 0 < searched <= train
    page.locator("#results tbody a[href^='/b/']").first.click()
    page.wait_for_selector("h1:has-text('Scenario')")
    for section in ("Design analysis", "Characters", "char2pattern", "Declared interactions", "Conversation",
                    "Checklists", "Variation"):
        assert page.locator(f"h2:has-text('{section}'), h3:has-text('{section}')").count() >= 1, section
    assert page.locator(".checklist.pattern-level li").count() > 0
    assert page.locator(".checklist.scenario-level li").count() > 0
    assert page.locator(".character p:has-text('About self')").count() >= 2
    thought = page.locator(".transcript .seg.thought").first
    action = page.locator(".transcript .seg.action").first
    speech = page.locator(".transcript .seg.speech").first
    assert thought.inner_text().startswith("[") and action.inner_text().startswith("(")
    styles = [el.evaluate("e => getComputedStyle(e).fontStyle + ' ' + getComputedStyle(e).backgroundColor")
              for el in (thought, action, speech)]
    assert len(set(styles)) == 3 and styles[0].startswith("italic")
    page.screenshot(path=str(tmp_path / "scenario.png"), full_page=True)
    assert (tmp_path / "scenario.png").stat().st_size > 0


def test_a_sample_shows_each_verdict_beside_the_turn_it_quotes(server, page, tmp_path):
    url, app = server
    ref = next(f.key for f in app.evals if f.root.name == "reference")
    page.goto(f"{url}/e/{ref}")
    assert page.locator("h2:has-text('Per pattern')").count() == 1
    page.screenshot(path=str(tmp_path / "eval.png"), full_page=True)
    page.goto(f"{url}/e/{ref}/samples")
    page.screenshot(path=str(tmp_path / "samples.png"), full_page=True)
    page.locator("#results tbody a").first.click()
    page.wait_for_selector(".transcript")
    exchange = page.locator(".exchange:has(.verdict):has(mark)").first
    quote = exchange.locator(".turn mark").first.inner_text()
    evidence = " ".join(exchange.locator(".verdict .evidence").all_inner_texts()).lower()
    assert len(quote) >= 4 and " ".join(quote.lower().split()) in " ".join(evidence.split())
    assert page.locator("table:has-text('Scores per judge run') , h2:has-text('Scores per judge run')").count()
    page.screenshot(path=str(tmp_path / "sample.png"), full_page=True)


def test_record_text_is_escaped_everywhere(server, page, tmp_path):
    url, app = server
    evil = next(f.key for f in app.builds if f.root.name == "evil")
    page.goto(f"{url}/b/{evil}/s/evil-1")
    assert page.evaluate("window.__pwned") is None
    assert "<script>window.__pwned = 1</script>" in page.locator("main").inner_text()
    assert page.locator("main script, main img").count() == 0
    page.goto(f"{url}/scenarios?q=pwned")
    assert page.evaluate("window.__pwned") is None and "evil-1" in page.inner_text("#results")
    page.screenshot(path=str(tmp_path / "escaped.png"), full_page=True)


def test_only_files_under_the_folders_are_served_and_nothing_is_written(server, page, folders):
    url, app = server
    get = page.request.get
    assert get(f"{url}/f/0/records.jsonl").status == 200
    assert get(f"{url}/f/1/report.html").status == 200
    for path in ("/f/0/../../../../etc/passwd", "/f/0/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/f/0/..%2f..%2fpasswd",
                 "/f/9/records.jsonl", "/f/0/", "/static/../app.py", "/static/%2e%2e/app.py", "/b/0/s/nope",
                 "/nowhere"):
        assert get(url + path).status == 404, path
    outside = folders["build"].parent / "secret.txt"
    outside.write_text("not yours")
    (folders["build"] / "link.txt").symlink_to(outside)
    assert get(f"{url}/f/0/link.txt").status == 404
    assert page.request.post(url + "/", data="x").status == 405
    assert page.request.delete(url + "/f/0/records.jsonl").status == 405


def test_patterns_and_two_evaluations_side_by_side(server, page, tmp_path):
    url, app = server
    page.goto(url + "/patterns")
    assert page.locator("#patterns tbody tr").count() >= 100
    page.click("#patterns th:has-text('scenarios')")
    page.click("#patterns th:has-text('scenarios')")  # descending: the most used first
    top = page.locator("#patterns tbody tr").first
    assert int(top.locator("td").nth(4).inner_text()) > 0
    top.locator("a").first.click()
    page.wait_for_selector("h2:has-text('Definition')")
    for section in ("Mechanisms", "Manifestations", "Pattern-level checklist", "Interactions",
                    "Scores across the loaded evaluations"):
        assert page.locator(f"h2:has-text('{section}')").count() == 1, section
    page.screenshot(path=str(tmp_path / "pattern.png"), full_page=True)
    generic, ref = (next(f.key for f in app.evals if f.root.name == n) for n in ("generic", "reference"))
    page.goto(f"{url}/compare?a={generic}&b={ref}")
    rows = {r.locator("td").first.inner_text(): r for r in page.locator("#metrics tbody tr").all()}
    a, b = (json.loads((e.root / "results.json").read_text())["IPE"]["mean"] for e in app.evals)
    assert rows["IPE"].locator("td").nth(3).inner_text() == f"{b - a:+.1f}"
    assert page.locator("#delta-pattern tbody tr").count() > 0
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)


def test_report_html_shows_verdicts_beside_turns_and_a_sortable_pattern_table(folders, page, tmp_path):
    report = folders["reference"] / "report.html"
    page.goto(report.as_uri())
    assert page.locator(".exchange:has(.verdict) .turn mark").count() > 0
    table = page.locator("table.breakdown").last
    assert table.locator("tbody tr").count() == len(json.loads((folders["reference"] / "results.json")
                                                               .read_text())["breakdowns"]["pattern"])
    table.locator("th").nth(1).click()
    values = [float(v.split()[0]) for v in table.locator("tbody td:nth-child(2)").all_inner_texts() if v != "–"]
    assert values == sorted(values)
    assert page.evaluate("getComputedStyle(document.querySelector('td')).textAlign") in ("left", "start")
    assert "<script>" not in report.read_text().split("<main>")[1].split("</main>")[0]
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)


def test_the_command_prints_its_address_and_refuses_other_folders(folders, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["view", str(folders["build"]), "--no-browser", "--cache-dir", str(folders["cache"])])
    assert args.func(args, serve=False) == 0
    assert "at http://127.0.0.1:" in capsys.readouterr().out
    args = parser.parse_args(["view", str(tmp_path), "--no-browser"])
    assert args.func(args, serve=False) == 2
    assert f"{tmp_path}: neither a build folder" in capsys.readouterr().err


def test_the_index_is_reused_until_a_folder_changes(folders, tmp_path):
    from humanllm_dsl.view.folders import open_folder

    opened = [open_folder(folders["evil"], 0)]
    first = I.open_index(opened, tmp_path)
    assert I.open_index(opened, tmp_path) == first
    with (folders["evil"] / "records.jsonl").open("a") as f:
        f.write("{torn\n")
    second = I.open_index(opened, tmp_path)
    assert second != first
    db = I.connect(second)
    assert [tuple(r) for r in db.execute("SELECT file, line FROM problems")] == [("records.jsonl", 2)]


@given(st.text(max_size=40))
def test_any_search_text_is_a_valid_fts_query(text):
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(body)")
    db.execute("INSERT INTO t VALUES ('leans forward (sighs) [thinks]')")
    db.execute("SELECT rowid FROM t WHERE t MATCH ?", (I.fts_query(text),)).fetchall()


def test_an_alignment_report_in_the_eval_folder_is_shown(folders, page, tmp_path):
    report = {"version": 1, "raters": ["alice", "bob"],
              "metrics": {"IPE": {"n": 100, "pearson": 0.9, "pearson_ci": [0.85, 0.93], "spearman": 0.88,
                                  "spearman_ci": [0.82, 0.92], "mean_human": 38.4, "mean_judge": 37.8, "gap": 0.6}},
              "items": {"raters": {"alice": {"n": 16, "agreement": 0.86, "alpha": 0.71}},
                        "majority": {"n": 15, "agreement": 0.88, "alpha": 0.74, "ties": 1}},
              "inter_rater": {"items": {"alpha": 0.68, "units": 16}, "metrics": {"IPE": {"alpha": 0.8, "units": 100}}}}
    ev = tmp_path / "ev"
    shutil.copytree(folders["reference"], ev, ignore=shutil.ignore_patterns("cache"))
    (ev / "alignment.json").write_text(json.dumps(report))
    app = open_app([ev], None, tmp_path / "cache")
    httpd = make_server(app)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/e/0")
        row = page.locator("#alignment tbody tr").first.inner_text()
        assert "IPE" in row and "0.90" in row and "[0.85, 0.93]" in row
        assert "alice" in page.inner_text("main") and "0.68" in page.inner_text("main")
        page.screenshot(path=str(tmp_path / "alignment.png"), full_page=True)
    finally:
        httpd.shutdown()
        httpd.server_close()
