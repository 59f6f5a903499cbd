"""`humanllm view` on drafts of `humanllm draft`, in a real headless Chromium: an offline draft
from small papers written here, its page (every sentence with the papers and pointers it rests
on), a note holding `<script>`, a draft given as a file, and an edited or broken draft."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from draft_papers import hot_hand_papers
from humanllm_dsl.draft.cli import add_commands as add_draft
from humanllm_dsl.view.app import make_server, open_app
from humanllm_dsl.view.cli import add_commands as add_view

SPECS = Path(__file__).resolve().parents[1] / "specs"
EVIL = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">"


def command(add, *argv: str):
    parser = argparse.ArgumentParser()
    add(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return args


@pytest.fixture(scope="module")
def drafted(tmp_path_factory) -> dict[str, Path]:
    """drafts/ (the papers, hot_hand_fallacy.hpat and its trace, a note of which holds <script>)
    and build/ (an empty build, so drafts are viewed beside a build)."""
    base = tmp_path_factory.mktemp("view_draft")
    drafts = base / "drafts"
    papers = hot_hand_papers(drafts / "papers")
    out = drafts / "hot_hand_fallacy.hpat"
    args = command(add_draft, "draft", "hot-hand fallacy", str(papers), "-o", str(out), "--specs", str(SPECS),
                   "--no-progress")
    # in a thread of its own: the browser's event loop may already run in this one (draft uses asyncio.run)
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(args.func, args).result() == 0
    trace_file = drafts / "hot_hand_fallacy.trace.json"
    trace = json.loads(trace_file.read_text("utf-8"))
    first = trace["sentences"][0]["rests_on"][0]["note"]
    trace["notes"][first]["claim"] += " " + EVIL
    trace_file.write_text(json.dumps(trace), "utf-8")
    build = base / "build"
    build.mkdir()
    (build / "patterns.json").write_text("{}", "utf-8")
    (build / "records.jsonl").write_text("", "utf-8")
    return {"drafts": drafts, "spec": out, "trace": trace_file, "build": build, "cache": base / "cache"}


def serve(paths: list[Path], cache: Path):
    httpd = make_server(open_app(paths, None, cache))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


@pytest.fixture(scope="module")
def server(drafted):
    httpd, url = serve([drafted["build"], drafted["drafts"]], drafted["cache"])
    yield url
    httpd.shutdown()
    httpd.server_close()


def test_each_sentence_shows_its_papers_and_pointers_on_hover_and_focus(server, drafted, page, tmp_path):
    trace = json.loads(drafted["trace"].read_text("utf-8"))
    page.goto(server + "/")
    page.click("a:has-text('hot_hand_fallacy.hpat')")
    page.wait_for_selector("h2:has-text('Definition')")
    for section in ("Mechanisms", "Manifestations", "Pattern-level checklist", "Sources", "Papers the draft rests on",
                    "Trace"):
        assert page.locator(f"h2:has-text('{section}')").count() == 1, section
    sentences = page.locator("a.sentence")
    assert sentences.count() == len(trace["sentences"]) and page.locator(".sent.untraced").count() == 0
    assert page.locator("ol.checklist li").count() >= 12
    kinds = {s["field"].split(" ", 1)[1] for s in trace["sentences"] if s["field"].startswith("mechanism ")}
    assert set(page.locator("h3").all_inner_texts()) >= kinds

    first = trace["sentences"][0]
    ref = first["rests_on"][0]
    paper = trace["papers"][ref["paper"]]
    popover = page.locator("#pop-1")
    assert not popover.is_visible()
    page.hover("#s-1")
    assert popover.is_visible()
    shown = popover.inner_text()
    assert paper["title"] in shown and ref["pointer"] in shown and ref["paper"] in shown
    assert trace["notes"][ref["note"]]["claim"].split("<script>")[0].strip() in shown
    assert "lit" in page.get_attribute("#t-1", "class")
    page.screenshot(path=str(tmp_path / "draft-hover.png"), full_page=True)

    # keyboard: focus the first mechanism sentence; its notes appear and its trace row lights up
    n = next(k for k, s in enumerate(trace["sentences"], 1) if s["field"].startswith("mechanism "))
    page.mouse.move(0, 0)
    page.focus(f"#s-{n}")
    assert page.locator(f"#pop-{n}").is_visible() and not popover.is_visible()
    for r in trace["sentences"][n - 1]["rests_on"]:
        assert r["pointer"] in page.locator(f"#pop-{n}").inner_text()
    assert "lit" in page.get_attribute(f"#t-{n}", "class")

    # the note holding <script> is text; nothing ran
    assert page.evaluate("window.__pwned") is None
    assert "<script>window.__pwned = 1</script>" in page.locator("#t-1").inner_text()
    assert page.locator("main script, main img").count() == 0

    cited = {pid for pid, p in trace["papers"].items() if p["cited"]}
    rows = page.locator("#papers tbody tr")
    assert rows.count() == len(cited) and "soil2019" not in page.inner_text("#papers")
    assert "soil2019" in page.inner_text("main")  # read, not cited
    link = page.locator("#papers a[href^='/f/']").first
    assert page.request.get(server + link.get_attribute("href")).status == 200
    page.screenshot(path=str(tmp_path / "draft.png"), full_page=True)


def test_a_draft_given_as_a_file_serves_only_its_two_files(drafted, page, tmp_path):
    for given in (drafted["spec"], drafted["trace"]):
        httpd, url = serve([given], tmp_path / "cache")
        try:
            get = page.request.get
            assert get(url + "/d/0/hot_hand_fallacy").status == 200
            assert get(url + "/f/0/hot_hand_fallacy.hpat").status == 200
            assert get(url + "/f/0/hot_hand_fallacy.trace.json").status == 200
            for path in ("/f/0/papers/ayton.txt", "/f/0/hot_hand_fallacy.work/usage.json",
                         "/f/0/../build/patterns.json", "/d/0/nope", "/d/3/hot_hand_fallacy"):
                assert get(url + path).status == 404, path
            page.goto(url + "/drafts")
            assert page.locator("#drafts tbody a").all_inner_texts() == ["hot_hand_fallacy.hpat"]
        finally:
            httpd.shutdown()
            httpd.server_close()


def test_the_command_takes_a_draft_and_refuses_a_spec_without_its_trace(drafted, tmp_path, capsys):
    args = command(add_view, "view", str(drafted["spec"]), "--no-browser", "--cache-dir", str(tmp_path))
    assert args.func(args, serve=False) == 0
    lone = tmp_path / "lone.hpat"
    shutil.copy(drafted["spec"], lone)
    args = command(add_view, "view", str(lone), "--no-browser", "--cache-dir", str(tmp_path))
    assert args.func(args, serve=False) == 2
    assert f"{tmp_path / 'lone.trace.json'}: no such file" in capsys.readouterr().err


def test_an_edited_sentence_is_untraced_and_a_broken_trace_is_named(drafted, page, tmp_path):
    folder = tmp_path / "drafts"
    folder.mkdir()
    for name in ("spec", "trace"):
        shutil.copy(drafted[name], folder / drafted[name].name)
    spec = folder / "hot_hand_fallacy.hpat"
    trace = json.loads(drafted["trace"].read_text("utf-8"))
    old = next(s["text"] for s in trace["sentences"] if s["field"] == "manifestation")
    text = spec.read_text("utf-8")
    assert old in text
    spec.write_text(text.replace(old, "A reviewer rewrote this manifestation."), "utf-8")
    httpd, url = serve([folder], tmp_path / "cache")
    try:
        page.goto(url + "/d/0/hot_hand_fallacy")
        untraced = page.locator(".sent.untraced")
        assert untraced.count() == 1 and untraced.inner_text().startswith("A reviewer rewrote")
        assert old in page.inner_text("#gone")
        (folder / "hot_hand_fallacy.trace.json").write_text("{torn", "utf-8")
        page.goto(url + "/d/0/hot_hand_fallacy")
        assert "hot_hand_fallacy.trace.json: not readable JSON" in page.inner_text(".problem")
        page.screenshot(path=str(tmp_path / "broken.png"), full_page=True)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_view_reads_drafts_without_importing_dspy():
    """The draft's file names come from `draft.layout`, which (unlike the drafting modules) imports no DSPy."""
    code = "import sys, humanllm_dsl.view.app, humanllm_dsl.view.drafts\nprint('dspy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
