"""`humanllm annotate` in a real headless Chromium: a study rated by two raters at once through
the keyboard, the server SIGKILLed midway and restarted, the export, and `align` on it with a
known result; the pattern review round trip. A screenshot of each page goes to tmp_path."""

from __future__ import annotations

import csv
import json
import signal
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import pattern_text
from humanllm_dsl.annotate.cli import main as annotate
from humanllm_dsl.cli import main
from humanllm_dsl.evaluate import align as A

ROOT = Path(__file__).resolve().parents[1]
N, SEED = 3, 1  # three samples whose judge IPE and holistic scores differ (so r is defined)


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory) -> Path:
    """An offline evaluation of the pilot's reference conversations (one judge run), made in
    another thread: the session's Playwright loop runs in this one."""
    from concurrent.futures import ThreadPoolExecutor

    from humanllm_dsl.compiler.loader import check_paths
    from humanllm_dsl.runtime.compile import CompileOptions, compile_dataset

    tmp = tmp_path_factory.mktemp("annotate")
    out = tmp / "ev"

    def make() -> int:
        result = check_paths([str(ROOT / "specs")])
        compile_dataset(result.library, CompileOptions(out=tmp / "pilot", progress=None))
        return main(["eval", str(tmp / "pilot"), "--model", "reference", "-o", str(out), "--no-progress",
                     "--runs", "1", "--no-report"])

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(make).result() == 0
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(*args: str):
    """`python -m humanllm_dsl.annotate ARGS` in a subprocess; yields (url, process)."""
    proc = subprocess.Popen([sys.executable, "-m", "humanllm_dsl.annotate", *args, "--no-browser"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert "serving http://127.0.0.1:" in line, line + proc.stderr.read()
        yield line.split("serving ")[1].split()[0], proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def judge_of(ev: Path) -> tuple[dict, dict]:
    verdicts = {json.loads(x)["sample"]: [v["score"] for v in json.loads(x)["verdicts"]]
                for x in (ev / "verdicts.jsonl").read_text().splitlines() if x.strip()}
    holistic = {json.loads(x)["sample"]: json.loads(x) for x in (ev / "holistic.jsonl").read_text().splitlines() if x.strip()}
    return verdicts, holistic


KEY = {1: "1", 0: "0", -1: "-"}


def login(page, url: str, name: str, shots: Path) -> None:
    page.goto(url + "login")
    page.screenshot(path=shots / "login.png")
    page.fill("#name", name)
    page.click("#start")
    page.wait_for_url("**/u/*")


def rate(page, answers: list[int], holistic: tuple[int, int] | None, upto: int | None = None) -> None:
    """Answer the unit's unsaved items in order with the keyboard (focus starts on the first
    unsaved row), then the holistic scales; wait until the server acknowledged every answer."""
    page.wait_for_selector(".row.current")
    for score in answers[:upto]:
        page.keyboard.press(KEY[score])
    if holistic is not None:
        for key, value in zip(("anthropomorphism", "fidelity"), holistic):
            field = page.locator(f"input[name={key}]")
            field.fill(str(value))
            field.press("Enter")
    wait_saved(page, len(answers[:upto]) + (2 if holistic else 0))


def wait_saved(page, want: int, seconds: float = 20) -> None:
    """Wait until `want` rows show the server's acknowledgement (polled from Python: the page's
    Content-Security-Policy forbids the evaluated predicates of `wait_for_function`)."""
    import time

    deadline = time.monotonic() + seconds
    while page.locator(".row.saved").count() < want:
        assert page.locator(".row.failed").count() == 0, page.locator("#error").inner_text()
        assert time.monotonic() < deadline, f"{page.locator('.row.saved').count()} of {want} rows saved"
        page.wait_for_timeout(50)


def unit_id(page) -> str:
    return page.locator("#unit").get_attribute("data-unit")


def test_two_raters_kill_restart_export_align(browser, evaluation, tmp_path):
    db, shots = tmp_path / "study.sqlite", tmp_path
    port = str(free_port())
    args = (str(evaluation), "--db", str(db), "-n", str(N), "--seed", str(SEED), "--port", port)
    verdicts, holistic = judge_of(evaluation)
    alice_ctx, bob_ctx = browser.new_context(viewport={"width": 1400, "height": 900}), browser.new_context()
    alice, bob = alice_ctx.new_page(), bob_ctx.new_page()
    flipped = None  # (sample, item number): Bob's one disagreement with the judge, on an mpd item
    shift = 0
    try:
        with server(*args) as (url, proc):
            login(alice, url, "alice", shots)
            login(bob, url, "bob", shots)
            first = unit_id(alice)
            assert unit_id(bob) == first
            assert alice.locator(".turn.own .seg.thought").count() > 0  # the target's thoughts are shown
            assert "clearly show the behaviour" in alice.locator(".scale").inner_text()  # the judge's wording
            assert alice.locator("#keys").is_visible()
            bob_answers = list(verdicts[first])
            mpd = [i for i, it in enumerate(alice.locator(".row[data-kind=checklist] .kind").all_inner_texts())
                   if it == "scenario-level"]
            k = mpd[0]
            bob_answers[k] = 0 if bob_answers[k] else 1
            flipped = (first, str(k + 1))
            shift = bob_answers[k] - verdicts[first][k]  # which way Bob's answer moves the human MPD
            hol = (holistic[first]["anthropomorphism"], holistic[first]["fidelity"])
            rate(alice, verdicts[first], hol)   # the two raters work at the same time,
            rate(bob, bob_answers, hol)         # each write acknowledged before the next
            alice.screenshot(path=shots / "sample.png", full_page=True)
            alice.keyboard.press("n")
            alice.wait_for_url("**/u/2")
            second = unit_id(alice)
            rate(alice, verdicts[second], None, upto=5)  # half done when the server dies
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        with server(*args) as (url, proc):
            alice.goto(url + "next")  # resume: the cookie survives the restart
            alice.wait_for_url("**/u/2")
            assert alice.locator(".row.saved").count() == 5  # nothing acknowledged was lost
            checked = [alice.locator(f"input[name=i{i}]:checked").get_attribute("value") for i in range(1, 6)]
            assert checked == [str(v) for v in verdicts[second][:5]]
            rest = verdicts[second][5:]
            rate(alice, rest, (holistic[second]["anthropomorphism"], holistic[second]["fidelity"]))
            bob.goto(url + "next")
            bob.wait_for_url("**/u/2")
            rate(bob, verdicts[second], (holistic[second]["anthropomorphism"], holistic[second]["fidelity"]))
            for page in (alice, bob):
                page.goto(url + "next")
                page.wait_for_url("**/u/3")
                third = unit_id(page)
                rate(page, verdicts[third], (holistic[third]["anthropomorphism"], holistic[third]["fidelity"]))
            alice.goto(url)
            assert "You have finished 3 of 3" in " ".join(alice.locator("#my-progress").inner_text().split())
            assert alice.locator("#raters").inner_text().count("3 / 3") == 2
            alice.screenshot(path=shots / "overview.png", full_page=True)
    finally:
        alice_ctx.close()
        bob_ctx.close()

    human = tmp_path / "human.csv"
    assert annotate(["export", "--db", str(db), "-o", str(human)]) == 0
    rows = list(csv.DictReader(human.open()))
    items = sum(len(verdicts[s]) for s in {r["sample_id"] for r in rows})
    assert sum(r["metric"] == "item" for r in rows) == 2 * items
    report = A.alignment_report(human, evaluation / "scores.csv", evaluation / "verdicts.jsonl", resamples=200)
    assert report["raters"] == ["alice", "bob"]
    # Alice copied the judge: full agreement; Bob differs on exactly one item
    assert report["items"]["raters"]["alice"] == {"n": items, "agreement": 1.0, "alpha": 1.0}
    assert report["items"]["raters"]["bob"]["agreement"] == pytest.approx((items - 1) / items)
    assert report["items"]["majority"] == {"n": items - 1, "agreement": 1.0, "alpha": 1.0, "ties": 1}
    assert 0 < report["inter_rater"]["items"]["alpha"] < 1
    # both copied the judge's IPE items and holistic ratings: r = rho = 1, raters agree perfectly
    for metric in ("IPE", "anthropomorphism", "fidelity"):
        m = report["metrics"][metric]
        assert m["n"] == N and m["pearson"] == pytest.approx(1.0) and m["spearman"] == pytest.approx(1.0)
        assert report["inter_rater"]["metrics"][metric]["alpha"] == pytest.approx(1.0)
    assert report["metrics"]["MPD"]["gap"] * shift > 0  # Bob's flipped mpd item moves the human MPD his way
    assert flipped is not None
    A.write_report(report, tmp_path / A.REPORT_NAME)
    assert json.loads((tmp_path / A.REPORT_NAME).read_text())["items"]["majority"]["ties"] == 1
    # the existing command reads the export as it is, and writes the same report with --verdicts --report
    assert main(["align", "--human", str(human), "--judge", str(evaluation / "scores.csv")]) == 0
    written = tmp_path / "cli-alignment.json"
    assert main(["align", "--human", str(human), "--judge", str(evaluation / "scores.csv"), "--verdicts",
                 str(evaluation / "verdicts.jsonl"), "--resamples", "200", "--report", str(written)]) == 0
    assert json.loads(written.read_text()) == json.loads((tmp_path / A.REPORT_NAME).read_text())


def test_pattern_review_round_trip(browser, tmp_path):
    draft = tmp_path / "drafted.hpat"
    draft.write_text(pattern_text("hostile_attribution", items=3).replace(
        "What hostile_attribution is", "<script>window.pwned=1</script> What hostile_attribution is")
        + pattern_text("gaze_aversion", items=2), encoding="utf-8")
    db = tmp_path / "review.sqlite"
    ratings = {"ann": [4, 3, 3, 2], "ben": [4, 3, 2, 2]}
    with server("patterns", str(draft), "--db", str(db), "--port", str(free_port())) as (url, _):
        for rater, scores in ratings.items():
            ctx = browser.new_context()
            page = ctx.new_page()
            try:
                login(page, url, rater, tmp_path)
                assert "<script>window.pwned=1</script>" in page.locator(".aspect").first.inner_text()
                assert page.locator("script").count() == 1  # annotate.js only: the record's tag is text
                for n in (1, 2):
                    page.wait_for_selector(".row.current")
                    for i, s in enumerate(scores):
                        page.keyboard.press(str(s))
                        if i == 0:
                            page.keyboard.press("c")
                            page.keyboard.type(f"{rater}: clear <b>enough</b>")
                            page.keyboard.press("Escape")
                        page.keyboard.press("j")
                    wait_saved(page, 4)
                    page.screenshot(path=tmp_path / f"pattern-{rater}-{n}.png", full_page=True)
                    if n == 1:
                        page.keyboard.press("n")
                        page.wait_for_url("**/u/2")
            finally:
                ctx.close()
    out = tmp_path / "review.csv"
    assert annotate(["export", "--db", str(db), "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 * 2 * 4
    got = {(r["rater"], r["pattern"], r["aspect"]): int(r["score"]) for r in rows}
    assert got[("ben", "gaze_aversion", "manifestations")] == 2
    assert {r["comment"] for r in rows if r["aspect"] == "definition"} == {"ann: clear <b>enough</b>",
                                                                          "ben: clear <b>enough</b>"}
    from humanllm_dsl.annotate.db import StudyDb
    from humanllm_dsl.annotate.export import review_rows, review_summary

    summary = review_summary(review_rows(StudyDb(db)))
    assert summary["definition"] == {"n": 4, "mean": 4.0, "raters": 2, "alpha": None}  # one value: undefined
    assert summary["all"]["mean"] == pytest.approx(sum(sum(v) for v in ratings.values()) * 2 / 16)
    assert 0 < summary["all"]["alpha"] < 1
