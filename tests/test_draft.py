"""`humanllm draft` end to end: the offline engine, resume, bad inputs, `draft checklist`, and a
replayed set of realistic answers from a local OpenAI-compatible server."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from draft_papers import hot_hand_papers, write_pdf
from humanllm_dsl.compiler.loader import UsageError, check_paths
from humanllm_dsl.draft.checks import sentences
from humanllm_dsl.draft.cli import add_commands
from humanllm_dsl.runtime.offline import OfflineEngine
from humanllm_dsl.syntax.formatter import format_module
from humanllm_dsl.syntax.parser import parse_text

SPECS = Path(__file__).resolve().parents[1] / "specs"


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["draft", *argv, "--specs", str(SPECS), "--no-progress"])
    return args.func(args)


@pytest.fixture(scope="module")
def drafted(tmp_path_factory):
    """One offline draft of the hot-hand fallacy from three papers on it and one unrelated."""
    root = tmp_path_factory.mktemp("draft")
    papers = hot_hand_papers(root / "papers")
    before = OfflineEngine.calls_total
    code = run("hot-hand fallacy", str(papers), "-o", str(root / "hot_hand_fallacy.hpat"))
    return root, papers, code, OfflineEngine.calls_total - before


def test_offline_draft_is_formatted_and_checks_clean_with_the_library(drafted):
    root, _, code, calls = drafted
    assert code == 0 and calls > 0
    text = (root / "hot_hand_fallacy.hpat").read_text("utf-8")
    assert format_module(parse_text(text)) == text
    result = check_paths([SPECS, root / "hot_hand_fallacy.hpat"])
    assert result.diagnostics == [], [d.render() for d in result.diagnostics]
    pattern = result.library.by_id["hot_hand_fallacy"]
    assert pattern.name == "hot-hand fallacy" and pattern.family == "social_cognitive"
    assert 12 <= len(pattern.checklist) <= 15 and len(pattern.manifestations) >= 3
    assert {m.kind for m in pattern.mechanisms} >= {"cognitive", "emotional"}


def test_sources_are_the_papers_the_draft_rests_on(drafted):
    root, *_ = drafted
    pattern = check_paths([root / "hot_hand_fallacy.hpat"]).library.by_id["hot_hand_fallacy"]
    trace = json.loads((root / "hot_hand_fallacy.trace.json").read_text("utf-8"))
    cited = {p for s in trace["sentences"] for p in (r["paper"] for r in s["rests_on"])}
    assert cited == {pid for pid, p in trace["papers"].items() if p["cited"]}
    assert "soil2019" not in cited and not trace["papers"]["soil2019"]["cited"]
    assert sorted(s.year for s in pattern.sources) == sorted(trace["papers"][p]["year"] for p in cited)
    assert "Gilovich, T., Vallone, R., & Tversky, A." in {s.authors for s in pattern.sources}


def test_trace_maps_every_sentence_to_notes_with_pointers(drafted):
    root, papers, *_ = drafted
    text = (root / "hot_hand_fallacy.hpat").read_text("utf-8")
    pattern = check_paths([root / "hot_hand_fallacy.hpat"]).library.by_id["hot_hand_fallacy"]
    trace = json.loads((root / "hot_hand_fallacy.trace.json").read_text("utf-8"))
    expected = ([("definition", s) for s in sentences(pattern.definition)]
                + [(f"mechanism {m.kind}", s) for m in pattern.mechanisms for s in sentences(m.text)]
                + [("manifestation", s) for s in pattern.manifestations])
    assert [(s["field"], s["text"]) for s in trace["sentences"]] == expected
    lines = text.split("\n")
    for s in trace["sentences"]:
        assert s["rests_on"], s
        assert lines[s["line"] - 1].strip().startswith(s["field"].split()[0])
        for r in s["rests_on"]:
            note = trace["notes"][r["note"]]
            assert (note["paper"], note["pointer"]) == (r["paper"], r["pointer"])
            assert re.fullmatch(r"p\. \d+|¶ \d+|§ .+", r["pointer"])


def test_a_second_run_makes_no_lm_call(drafted):
    root, papers, _, _ = drafted
    before = OfflineEngine.calls_total
    text = (root / "hot_hand_fallacy.hpat").read_text("utf-8")
    assert run("hot-hand fallacy", str(papers), "-o", str(root / "hot_hand_fallacy.hpat")) == 0
    assert OfflineEngine.calls_total == before
    assert (root / "hot_hand_fallacy.hpat").read_text("utf-8") == text
    usage = json.loads((root / "hot_hand_fallacy.work" / "usage.json").read_text("utf-8"))
    assert usage["calls"] > 0 and usage["prompt_tokens"] > 0


def test_only_a_new_paper_is_read_on_resume(drafted, tmp_path):
    root, papers, *_ = drafted
    import shutil

    folder = tmp_path / "papers"
    shutil.copytree(papers, folder)
    shutil.copytree(root / "hot_hand_fallacy.work", tmp_path / "hh.work")
    shutil.copy(root / "hot_hand_fallacy.hpat", tmp_path / "hh.hpat")
    (folder / "extra.md").write_text("# Streaks\n\nThe hot hand is the belief that success breeds success. "
                                     "For example, a player keeps shooting after two hits.\n", "utf-8")
    chunks = (tmp_path / "hh.work" / "chunks.jsonl").read_text("utf-8").count("\n")
    before = OfflineEngine.calls_total
    assert run("hot-hand fallacy", str(folder), "-o", str(tmp_path / "hh.hpat")) == 0
    assert OfflineEngine.calls_total - before == 3  # the new paper's one chunk, the synthesis, the checklist
    assert (tmp_path / "hh.work" / "chunks.jsonl").read_text("utf-8").count("\n") == chunks + 1


def test_bad_papers_are_named_and_finished_notes_kept(tmp_path, capsys):
    folder = hot_hand_papers(tmp_path / "papers")
    write_pdf(folder / "scan.pdf", [None, None])
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    out = tmp_path / "hot_hand_fallacy.hpat"
    assert run("hot-hand fallacy", str(folder), "-o", str(out)) == 1
    err = capsys.readouterr().err
    assert "scan.pdf: no text layer on any of its 2 pages" in err and "broken.pdf: not a readable PDF" in err
    assert "no draft written" in err and not out.exists()
    kept = [json.loads(line)["id"] for line in (tmp_path / "hot_hand_fallacy.work" / "notes.jsonl").open()]
    assert sorted(kept) == ["ayton2004", "burns2004", "gilovich1985", "soil2019"]
    before = OfflineEngine.calls_total
    assert run("hot-hand fallacy", str(folder), "-o", str(out), "--keep-going") == 1  # drafted, still not clean
    assert out.exists() and OfflineEngine.calls_total - before == 2  # the notes were not taken again


def test_bib_entry_without_file_is_named(tmp_path, capsys):
    folder = hot_hand_papers(tmp_path / "papers")
    bib = (folder / "refs.bib").read_text("utf-8")
    (folder / "refs.bib").write_text(bib + "\n@book{kahneman2011, author = {Kahneman, Daniel}, title = {Thinking, "
                                     "fast and slow}, publisher = {Farrar}, year = {2011}}\n", "utf-8")
    assert run("hot-hand fallacy", str(folder), "-o", str(tmp_path / "x.hpat")) == 1
    err = capsys.readouterr().err
    assert re.search(r"refs\.bib:17: entry `kahneman2011` \(\"Thinking, fast and slow\"\) has no file in", err)


def test_empty_folder_existing_id_and_foreign_output_are_usage_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no papers in this folder"):
        run("hot-hand fallacy", str(tmp_path / "empty"), "-o", str(tmp_path / "x.hpat"))
    papers = hot_hand_papers(tmp_path / "papers")
    with pytest.raises(UsageError, match=r"the pattern id `anchoring` already exists in the library \(.*anchoring\.hpat"):
        run("Anchoring", str(papers), "-o", str(tmp_path / "x.hpat"))
    (tmp_path / "mine.hpat").write_text("# my own work\n", "utf-8")
    with pytest.raises(UsageError, match="exists and is not a draft"):
        run("hot-hand fallacy", str(papers), "-o", str(tmp_path / "mine.hpat"))
    assert (tmp_path / "mine.hpat").read_text("utf-8") == "# my own work\n"


def test_trait_draft_uses_trait_kinds(tmp_path):
    folder = tmp_path / "papers"
    folder.mkdir()
    (folder / "talk.md").write_text(
        "---\ntitle: Talkativeness\nauthors: Ann Lee\nyear: 2001\njournal: J. Pers.\n---\n# Talk\n"
        "Chattiness is the tendency to talk at length in company. It is a habit of speaking first. "
        "Talkers feel energised by attention, and that emotion makes them go on. "
        "Talk flows because silence is read as a problem to fix. "
        "They act on impulse and their behaviour fills every pause. "
        "For example, a guest tells three stories before dinner. For instance, a colleague phones instead of writing. "
        "For example, a passenger chats with the driver for the whole ride.\n", "utf-8")
    (folder / "talk2.txt").write_text("Chattiness in groups\n\nAuthors: Bo Park\n\nChattiness is the tendency to "
                                      "fill silence with speech, 2003.\n", "utf-8")
    out = tmp_path / "chatty.hpat"
    run("chatty", str(folder), "-o", str(out), "--trait", "extraversion", "positive")
    pattern = check_paths([out]).library.by_id["chatty"]
    assert (pattern.family, pattern.dimension, pattern.pole) == ("trait", "extraversion", "positive")
    assert {m.kind for m in pattern.mechanisms} <= {"cognitive", "emotional", "behavioral"}


def test_fresh_checklist_for_a_library_pattern_as_diff_and_file(tmp_path, capsys):
    assert run("checklist", "anchoring") == 0
    diff = capsys.readouterr().out
    assert diff.startswith("--- a/") and "+++ b/" in diff
    changed = [ln for ln in diff.splitlines() if ln[:1] in "+-" and not ln.startswith(("---", "+++"))]
    assert changed and all(re.fullmatch(r"[+-]\s+(\"Does the character.*\"|checklist \{|\})", ln) for ln in changed)
    out = tmp_path / "anchoring.hpat"
    assert run("checklist", "anchoring", "-o", str(out)) == 0
    text = out.read_text("utf-8")
    assert format_module(parse_text(text)) == text
    new = check_paths([out]).library.by_id["anchoring"]
    old = check_paths([SPECS]).library
    assert 12 <= len(new.checklist) <= 15
    others = {i for p in old.patterns if p.id != "anchoring" for i in p.checklist}
    assert not others & set(new.checklist)
    assert not any("anchoring" in i.lower() for i in new.checklist)
    with pytest.raises(UsageError, match="no pattern `anchorin`"):
        run("checklist", "anchorin")


def test_replayed_realistic_answers_through_a_local_server(tmp_path, monkeypatch):
    """Answers as real models write them (JSON objects, fences, preambles, <think> blocks, a cut-off
    answer), a synthesis that first cites a note that does not exist, and a checklist that first
    names the pattern: each bad first answer costs exactly one retry, and the draft is the same
    shape as offline."""
    from humanllm_dsl.testing import FakeOpenAIServer
    from humanllm_dsl.testing.deviations import Deviations

    deviations = Deviations(pattern_names=["hot hand"], seed=3, rate=0.6, harm=0.0)
    bad_first = {"synthesis": 0, "checklist": 0}

    def transform(request: dict, answer: str):
        body = json.dumps(request.get("messages", []))
        first = "This is attempt" not in body
        if first and "[[ ## definition ## ]]" in answer:
            bad_first["synthesis"] += 1
            answer = re.sub(r'"notes": \["', '"notes": ["nobody1999:9", "', answer, count=1)
        elif first and "[[ ## checklist_items ## ]]" in answer:
            bad_first["checklist"] += 1
            answer = answer.replace('["Does the character', '["Does the character mention the hot hand?", '
                                                             '"Does the character', 1)
        return deviations(request, answer)

    monkeypatch.setenv("OPENAI_API_KEY", "test")
    papers = hot_hand_papers(tmp_path / "papers")
    out = tmp_path / "hot_hand_fallacy.hpat"
    with FakeOpenAIServer(transform=transform) as server:
        code = run("hot-hand fallacy", str(papers), "-o", str(out), "--lm", "openai/replay",
                   "--api-base", server.base_url, "--no-cache")
        requests = server.requests
    assert code == 0
    assert bad_first == {"synthesis": 1, "checklist": 1}
    assert sum(deviations.applied.values()) > 0
    assert requests == 4 + 2 + 2  # a chunk per paper; synthesis and checklist each retried once
    result = check_paths([SPECS, out])
    assert result.diagnostics == [], [d.render() for d in result.diagnostics]
    assert not any("hot hand" in i.lower() for i in result.library.by_id["hot_hand_fallacy"].checklist)
