"""`humanllm lsp` driven as an editor drives it: pygls' client over stdio against the real
command, a workspace folder outside the repository whose files use the standard library."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls", reason="the lsp extra")  # installed by scripts/test.sh
from lsprotocol import types as t  # noqa: E402
from pygls.exceptions import JsonRpcException  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

from humanllm_dsl.syntax.formatter import format_module  # noqa: E402
from humanllm_dsl.syntax.parser import parse_text  # noqa: E402

MINE = '''pattern night_worry "Night worry" {
  family social_cognitive
  definition "Going over tomorrow's problems in bed."
  mechanism cognitive "Unfinished tasks stay active in memory."
  manifestation "Lies awake listing what could go wrong."
  manifestation "Checks the alarm twice."
  manifestation "Writes notes at 3 a.m."
  checklist {
    "Does the character go over problems instead of sleeping?"
  }
  source "Harvey, A." (2002) "A cognitive model of insomnia" in "Behaviour Research and Therapy"
  source "Borkovec, T." (1983) "Preliminary exploration of worry" in "Behaviour Research and Therapy"
}
'''
LINKS = '''interaction night_worry, anchoring: reinforce {
  because "A first worry anchors the rest."
}

exclude night_worry, organized

dataset mine {
  scenarios 10
  patterns 2..2
  include patterns night_worry, anchoring, organized
}
'''
TIMEOUT = 20


class Editor:
    """A pygls client on its own event loop, with the diagnostics the server has published."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.loop = asyncio.new_event_loop()
        self.client = LanguageClient("test-editor", "1")
        self.diagnostics: dict[str, list[t.Diagnostic]] = {}
        self.versions: dict[str, int] = {}

        @self.client.feature(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def published(ls, params: t.PublishDiagnosticsParams) -> None:
            self.diagnostics[params.uri] = params.diagnostics

    def run(self, coro):
        return self.loop.run_until_complete(asyncio.wait_for(coro, TIMEOUT))

    def uri(self, name: str) -> str:
        return (self.folder / name).as_uri()

    async def start(self) -> None:
        await self.client.start_io(sys.executable, "-m", "humanllm_dsl", "lsp")
        await self.client.initialize_async(t.InitializeParams(
            capabilities=t.ClientCapabilities(), root_uri=self.folder.as_uri(),
            workspace_folders=[t.WorkspaceFolder(self.folder.as_uri(), "mine")]))
        self.client.initialized(t.InitializedParams())

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()

    async def until(self, name: str, test) -> list[t.Diagnostic]:
        while not (name in [Path(u).name for u in self.diagnostics] and test(self.diagnostics[self.uri(name)])):
            await asyncio.sleep(0.02)
        return self.diagnostics[self.uri(name)]

    def open(self, name: str) -> None:
        self.versions[name] = 1
        self.client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(
            self.uri(name), "hpat", 1, (self.folder / name).read_text())))

    def replace(self, name: str, line: int, start: int, end: int, text: str, end_line: int | None = None) -> None:
        self.versions[name] += 1
        where = t.Range(t.Position(line, start), t.Position(line if end_line is None else end_line, end))
        self.client.text_document_did_change(t.DidChangeTextDocumentParams(
            t.VersionedTextDocumentIdentifier(version=self.versions[name], uri=self.uri(name)),
            [t.TextDocumentContentChangePartial(where, text)]))

    def at(self, name: str, line: int, character: int) -> dict:
        return {"text_document": t.TextDocumentIdentifier(self.uri(name)), "position": t.Position(line, character)}


@pytest.fixture(scope="module")
def editor(tmp_path_factory):
    folder = tmp_path_factory.mktemp("psychologist")
    (folder / "mine.hpat").write_text(MINE)
    (folder / "links.hpat").write_text(LINKS)
    ed = Editor(folder.resolve())
    ed.run(ed.start())
    yield ed
    ed.run(ed.stop())
    ed.loop.close()


def errors(diags: list[t.Diagnostic]) -> list[t.Diagnostic]:
    return [d for d in diags if d.severity == t.DiagnosticSeverity.Error]


def test_the_workspace_is_checked_with_the_standard_library(editor):
    mine = editor.run(editor.until("mine.hpat", lambda d: d))
    links = editor.run(editor.until("links.hpat", lambda d: d))
    assert not errors(mine) and not errors(links)  # anchoring and organized come from the library
    [few] = [d for d in mine if "checklist item" in d.message]
    assert few.severity == t.DiagnosticSeverity.Warning
    assert few.range == t.Range(t.Position(0, 8), t.Position(0, 19))  # the id `night_worry`
    assert "12-15 items" in few.message


def test_an_error_appears_while_typing_and_goes_when_fixed(editor):
    editor.open("links.hpat")
    editor.replace("links.hpat", 9, 43, 52, "organised")
    [error] = errors(editor.run(editor.until("links.hpat", lambda d: errors(d))))
    assert error.message.startswith("unknown pattern `organised`; did you mean `organized`?")
    assert error.range == t.Range(t.Position(9, 43), t.Position(9, 52))
    editor.replace("links.hpat", 9, 43, 52, "organized")
    editor.run(editor.until("links.hpat", lambda d: not errors(d)))
    editor.replace("links.hpat", 6, 0, 7, "datasat")  # a syntax error, then fixed
    [error] = errors(editor.run(editor.until("links.hpat", lambda d: errors(d))))
    assert error.range.start == t.Position(6, 0) and "datasat" in error.message
    editor.replace("links.hpat", 6, 0, 7, "dataset")
    editor.run(editor.until("links.hpat", lambda d: not errors(d)))


def test_hover_shows_a_library_pattern(editor):
    hover = editor.run(editor.client.text_document_hover_async(t.HoverParams(**editor.at("links.hpat", 0, 28))))
    text = hover.contents.value
    assert "`anchoring`" in text and "family `social_cognitive`" in text and "standard library" in text
    assert hover.range == t.Range(t.Position(0, 25), t.Position(0, 34))
    trait = editor.run(editor.client.text_document_hover_async(t.HoverParams(**editor.at("links.hpat", 4, 24))))
    assert "family `trait`" in trait.contents.value and "dimension `conscientiousness`" in trait.contents.value
    assert "pole `positive`" in trait.contents.value


def test_definition_and_references(editor):
    [mine] = editor.run(editor.client.text_document_definition_async(
        t.DefinitionParams(**editor.at("links.hpat", 9, 20))))
    assert mine.uri == editor.uri("mine.hpat")
    assert mine.range == t.Range(t.Position(0, 8), t.Position(0, 19))
    [shipped] = editor.run(editor.client.text_document_definition_async(
        t.DefinitionParams(**editor.at("links.hpat", 4, 25))))
    assert Path(shipped.uri).name == "conscientiousness.hpat"
    refs = editor.run(editor.client.text_document_references_async(t.ReferenceParams(
        context=t.ReferenceContext(include_declaration=True), **editor.at("mine.hpat", 0, 10))))
    assert sorted((Path(r.uri).name, r.range.start.line, r.range.start.character) for r in refs) == [
        ("links.hpat", 0, 12), ("links.hpat", 4, 8), ("links.hpat", 9, 19), ("mine.hpat", 0, 8)]


def labels(result) -> set[str]:
    return {i.label for i in result.items}


def test_completion_fits_the_place(editor):
    complete = editor.client.text_document_completion_async
    editor.replace("links.hpat", 9, 0, 0, "  include situations all\n")
    situations = labels(editor.run(complete(t.CompletionParams(**editor.at("links.hpat", 9, 21)))))
    assert {"all", "adversity", "deception"} <= situations and "anchoring" not in situations
    patterns = labels(editor.run(complete(t.CompletionParams(**editor.at("links.hpat", 10, 19)))))
    assert {"night_worry", "anchoring", "organized", "all"} <= patterns and "adversity" not in patterns
    editor.replace("links.hpat", 9, 0, 24, "  ")
    fields = labels(editor.run(complete(t.CompletionParams(**editor.at("links.hpat", 9, 2)))))
    assert {"include", "scenarios", "split", "bundle", "cast"} <= fields and "pattern" not in fields
    editor.replace("links.hpat", 9, 0, 0, "", end_line=10)
    families = labels(editor.run(complete(t.CompletionParams(**editor.at("mine.hpat", 1, 9)))))
    assert families == {"social_cognitive", "trait"}


def test_formatting_gives_what_fmt_writes(editor):
    messy = 'situation  quiet_night "Quiet night"{describe   "Late."}\n'
    (editor.folder / "messy.hpat").write_text(messy)
    editor.open("messy.hpat")
    edits = editor.run(editor.client.text_document_formatting_async(t.DocumentFormattingParams(
        t.TextDocumentIdentifier(editor.uri("messy.hpat")), t.FormattingOptions(2, True))))
    [edit] = edits
    assert edit.new_text == format_module(parse_text(messy)) != messy
    assert edit.range.start == t.Position(0, 0)


def test_rename_edits_every_file(editor):
    edit = editor.run(editor.client.text_document_rename_async(t.RenameParams(
        new_name="sleepless_worry", **editor.at("links.hpat", 4, 10))))
    changes = {Path(uri).name: sorted((e.range.start.line, e.range.start.character) for e in edits)
               for uri, edits in edit.changes.items()}
    assert changes == {"mine.hpat": [(0, 8)], "links.hpat": [(0, 12), (4, 8), (9, 19)]}
    assert {e.new_text for edits in edit.changes.values() for e in edits} == {"sleepless_worry"}
    with pytest.raises(JsonRpcException, match="standard library"):
        editor.run(editor.client.text_document_rename_async(t.RenameParams(
            new_name="first_number", **editor.at("links.hpat", 0, 28))))
    with pytest.raises(JsonRpcException, match="cannot be an id"):
        editor.run(editor.client.text_document_rename_async(t.RenameParams(
            new_name="Sleepless", **editor.at("links.hpat", 4, 10))))
