"""`humanllm draft` inputs: papers (PDF, text, Markdown), bibliographies, matching, chunking."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from draft_papers import BIBTEX, CSL, GILOVICH_PAGES, RIS, hot_hand_papers, write_pdf
from humanllm_dsl.draft.bibliography import BibliographyError, read_bibliography
from humanllm_dsl.draft.chunks import chunk_paper, pieces, pointed
from humanllm_dsl.draft.collect import DraftInputError, collect
from humanllm_dsl.draft.papers import Meta, Paper, PaperError, Unit, read_paper
from humanllm_dsl.draft.render import authors_text


def test_pdf_pages_become_pointed_units_with_metadata(tmp_path):
    path = write_pdf(tmp_path / "g.pdf", GILOVICH_PAGES, title="The hot hand in basketball",
                     author="Thomas Gilovich; Amos Tversky")
    paper = read_paper(path, "g")
    assert [u.pointer for u in paper.units] == ["p. 1", "p. 2", "p. 3"]
    assert "representative a short run" in " ".join(paper.units[1].text.split())
    assert paper.meta == Meta("The hot hand in basketball", ("Thomas Gilovich", "Amos Tversky"), 1985, "")


def test_pdf_without_metadata_takes_its_title_page(tmp_path):
    paper = read_paper(write_pdf(tmp_path / "g.pdf", GILOVICH_PAGES), "g")
    assert paper.meta.title.startswith("The hot hand in basketball")
    assert paper.meta.year == 1985


def test_scanned_pdf_is_refused_by_name(tmp_path):
    path = write_pdf(tmp_path / "scan.pdf", [None, None])
    with pytest.raises(PaperError, match=r"scan\.pdf: no text layer on any of its 2 pages"):
        read_paper(path, "scan")


def test_damaged_pdf_and_non_utf8_text_are_refused_by_name(tmp_path):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not a pdf at all")
    with pytest.raises(PaperError, match=r"broken\.pdf: not a readable PDF"):
        read_paper(tmp_path / "broken.pdf", "b")
    (tmp_path / "latin.txt").write_bytes("Caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(PaperError, match=r"latin\.txt: not UTF-8 text \(byte 3\)"):
        read_paper(tmp_path / "latin.txt", "l")
    (tmp_path / "empty.md").write_text("\n\n", "utf-8")
    with pytest.raises(PaperError, match=r"empty\.md: the file holds no text"):
        read_paper(tmp_path / "empty.md", "e")


def test_markdown_sections_and_front_matter(tmp_path):
    path = tmp_path / "m.md"
    path.write_text("---\ntitle: A study\nauthor: Ann Lee and Bo Park\ndate: 2011-04-02\njournal: J. Tests\n---\n"
                    "# Heading\nIntro text.\n## Method\nWe did it.\n## Method\nAgain.\n", "utf-8")
    paper = read_paper(path, "m")
    assert [u.pointer for u in paper.units] == ["§ Heading", "§ Method", "§ Method (2)"]
    assert paper.meta == Meta("A study", ("Ann Lee", "Bo Park"), 2011, "J. Tests")


def test_text_paragraphs_and_form_feed_pages(tmp_path):
    (tmp_path / "a.txt").write_text("Title of it\n\nFirst para.\n\nSecond para, 1999.\n", "utf-8")
    paper = read_paper(tmp_path / "a.txt", "a")
    assert [u.pointer for u in paper.units] == ["¶ 1", "¶ 2", "¶ 3"] and paper.meta.title == "Title of it"
    (tmp_path / "b.txt").write_text("Page one text\fPage two text\f", "utf-8")
    assert [u.pointer for u in read_paper(tmp_path / "b.txt", "b").units] == ["p. 1", "p. 2"]


def test_bibliographies_in_three_formats(tmp_path):
    (tmp_path / "r.bib").write_text(BIBTEX, "utf-8")
    (tmp_path / "r.ris").write_text(RIS, "utf-8")
    (tmp_path / "r.json").write_text(json.dumps(CSL), "utf-8")
    bib, problems = read_bibliography(tmp_path / "r.bib")
    assert problems == [] and [e.key for e in bib] == ["gilovich1985", "ayton2004"]
    assert bib[1].venue == "Memory & Cognition" and bib[0].files == ("gilovich.pdf",)
    assert bib[0].authors == ("Gilovich, Thomas", "Vallone, Robert", "Tversky, Amos") and bib[0].year == 1985
    assert bib[1].where.endswith("r.bib:9")
    ris, _ = read_bibliography(tmp_path / "r.ris")
    assert (ris[0].authors, ris[0].year, ris[0].venue, ris[0].files) == (("Burns, Bruce D.",), 2004,
                                                                         "Cognitive Psychology", ("burns.md",))
    csl, _ = read_bibliography(tmp_path / "r.json")
    assert (csl[0].key, csl[0].authors, csl[0].year) == ("soil2019", ("Moser, Anna",), 2019)


def test_bad_bibliographies_name_file_and_line(tmp_path):
    (tmp_path / "r.bib").write_text(BIBTEX + "\n@article{broken, title = {never closed\n", "utf-8")
    entries, problems = read_bibliography(tmp_path / "r.bib")
    assert len(entries) == 2 and len(problems) == 1 and "r.bib:17: this entry cannot be read (a syntax error" in problems[0]
    (tmp_path / "r.json").write_text('[{"id": "x"}, 3', "utf-8")
    with pytest.raises(BibliographyError, match=r"r\.json:1:\d+: not valid JSON"):
        read_bibliography(tmp_path / "r.json")
    (tmp_path / "s.json").write_text('{"not": "csl"}', "utf-8")
    with pytest.raises(BibliographyError, match=r"s\.json: expected a CSL-JSON list"):
        read_bibliography(tmp_path / "s.json")


def test_collect_matches_entries_and_names_what_is_missing(tmp_path):
    folder = hot_hand_papers(tmp_path / "papers")
    found = collect(folder)
    assert found.problems == ()
    by_id = {p.id: p for p in found.papers}
    assert set(by_id) == {"gilovich1985", "ayton2004", "burns2004", "soil2019"}
    assert by_id["gilovich1985"].meta.venue == "Cognitive Psychology"  # from the entry, not the PDF
    (folder / "refs.ris").write_text(RIS.replace("L1  - burns.md\n", "") + RIS.replace("burns.md", "gone.pdf")
                                     .replace("Burns", "Other"), "utf-8")
    found = collect(folder)
    assert any("refs.ris: record 2: entry `other2004` names the file gone.pdf, which is not in" in p
               for p in found.problems), found.problems
    # the first RIS record has no file field, but its title matches no file: it is reported
    assert any("refs.ris: record 1: entry `burns2004`" in p and "has no file" in p for p in found.problems)


def test_unreadable_papers_are_reported_and_the_rest_read(tmp_path):
    folder = hot_hand_papers(tmp_path / "papers", bib=False)
    write_pdf(folder / "scan.pdf", [None])
    (folder / "notes.docx").write_bytes(b"PK")
    found = collect(folder)
    assert len(found.papers) == 4 and found.skipped == (str(folder / "notes.docx"),)
    assert [p for p in found.problems if "scan.pdf: no text layer" in p]


def test_empty_or_missing_folder_is_a_usage_error(tmp_path):
    with pytest.raises(DraftInputError, match="no papers in this folder"):
        collect(tmp_path)
    with pytest.raises(DraftInputError, match="no such folder"):
        collect(tmp_path / "nope")


def test_a_thirty_page_paper_is_chunked_within_the_limit():
    pages = tuple(Unit(f"p. {n}", f"Sentence {n} about streaks. " * 120) for n in range(1, 31))
    paper = Paper("long", None, Meta(), pages)
    chunks = chunk_paper(paper, 12_000)
    assert 5 <= len(chunks) <= 10
    assert all(len(c.text) <= 12_000 + 20 for c in chunks)
    assert [p for c in chunks for p in c.pointers] == [u.pointer for u in pages]
    assert pointed(chunks[0].text)[0] == ("p. 1", pages[0].text.strip())


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="[]"),
                        min_size=1, max_size=400), min_size=1, max_size=12), st.integers(60, 500))
def test_chunking_keeps_every_character_and_pointer(texts, limit):
    units = tuple(Unit(f"p. {i}", t.strip()) for i, t in enumerate(texts, 1) if t.strip())
    if not units:
        return
    chunks = chunk_paper(Paper("x", None, Meta(), units), limit)
    got = [(p, t) for c in chunks for p, t in pointed(c.text)]
    assert "".join("".join(t.split()) for _, t in got) == "".join("".join(u.text.split()) for u in units)
    assert {p for p, _ in got} == {u.pointer for u in units}
    assert all(len(t) <= limit for u in units for t in (x.text for x in pieces(u, limit)))


def test_authors_are_written_as_a_reference_list_does():
    assert authors_text(("Gilovich, Thomas", "Vallone, Robert", "Amos Tversky")) == \
        "Gilovich, T., Vallone, R., & Tversky, A."
    assert authors_text(("Burns, Bruce D.",)) == "Burns, B. D."
    assert authors_text(()) == ""
