"""The language server: pygls over stdio, with the features of the modules beside this one."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from lsprotocol import types as t
from pygls.exceptions import JsonRpcInvalidRequest
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from . import completion, formatting, hover, navigation
from .index import Ref
from .positions import Positions
from .workspace import FileState, Workspace

log = logging.getLogger(__name__)
_COMPLETION_KINDS = {"keyword": t.CompletionItemKind.Keyword, "pattern": t.CompletionItemKind.Reference,
                     "situation": t.CompletionItemKind.Reference, "domain": t.CompletionItemKind.Reference,
                     "family": t.CompletionItemKind.EnumMember, "value": t.CompletionItemKind.EnumMember}


class HpatServer(LanguageServer):
    def __init__(self, stdlib: Iterable[Path], version: str) -> None:
        super().__init__("humanllm", version)
        self.specs = Workspace(stdlib)
        self.published: dict[Path, list[t.Diagnostic]] = {}

    @property
    def positions(self) -> Positions:
        return Positions(self.workspace.position_codec)

    def state(self, uri: str) -> FileState:
        path = Path(to_fs_path(uri))
        found = self.specs.get(path)
        if found is None:  # a request before didOpen: read the buffer pygls has, or the file
            found = self.specs.open(path, self.workspace.get_text_document(uri).source)
        return found

    def ref_at(self, uri: str, position: t.Position) -> tuple[FileState, Ref | None]:
        state = self.state(uri)
        line, column = self.positions.from_client(state, position)
        return state, state.index.at(line, column)

    def publish(self) -> None:
        """Check, and send the diagnostics of every file whose diagnostics changed."""
        by_file = self.specs.check()
        shown = {path: diags for path, diags in by_file.items()
                 if (s := self.specs.get(path)) is None or not s.stdlib or s.open or diags}
        for path in set(self.published) - set(shown):
            shown[path] = []
        for path, diags in shown.items():
            state = self.specs.get(path) or FileState(path, path.parent, "")
            converted = [self.positions.diagnostic(state, d) for d in diags]
            if self.published.get(path, []) != converted or path not in self.published:
                self.published[path] = converted
                self.text_document_publish_diagnostics(
                    t.PublishDiagnosticsParams(uri=path.as_uri(), diagnostics=converted))
        for path in [p for p, d in self.published.items() if not d and p not in by_file]:
            del self.published[path]


def create_server(stdlib: Iterable[Path], version: str = "dev") -> HpatServer:
    server = HpatServer(stdlib, version)

    @server.feature(t.INITIALIZED)
    def initialized(ls: HpatServer, _params: t.InitializedParams) -> None:
        folders = [f.uri for f in (ls.workspace.folders or {}).values()]
        if not folders and ls.workspace.root_uri:
            folders = [ls.workspace.root_uri]
        for uri in folders:
            ls.specs.add_folder(Path(to_fs_path(uri)))
        ls.publish()

    @server.feature(t.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: HpatServer, params: t.DidOpenTextDocumentParams) -> None:
        ls.specs.open(Path(to_fs_path(params.text_document.uri)), params.text_document.text)
        ls.publish()

    @server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: HpatServer, params: t.DidChangeTextDocumentParams) -> None:
        document = ls.workspace.get_text_document(params.text_document.uri)
        ls.specs.open(Path(to_fs_path(document.uri)), document.source)
        ls.publish()

    @server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: HpatServer, params: t.DidCloseTextDocumentParams) -> None:
        ls.specs.close(Path(to_fs_path(params.text_document.uri)))
        ls.publish()

    @server.feature(t.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched(ls: HpatServer, params: t.DidChangeWatchedFilesParams) -> None:
        for change in params.changes:
            path = Path(to_fs_path(change.uri))
            state = ls.specs.get(path)
            if state is not None and state.open:
                continue
            if change.type == t.FileChangeType.Deleted or not path.is_file():
                ls.specs.close(path)
            else:
                ls.specs.open(path, path.read_bytes().decode("utf-8", "replace"))
                ls.specs.close(path)  # read back from disk, as a file not open in the editor
        ls.publish()

    @server.feature(t.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: HpatServer, params: t.HoverParams) -> t.Hover | None:
        state, ref = ls.ref_at(params.text_document.uri, params.position)
        text = hover.hover_text(ls.specs, ref) if ref else None
        if text is None:
            return None
        return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, text), ls.positions.range(state, ref.span))

    @server.feature(t.TEXT_DOCUMENT_DEFINITION)
    def on_definition(ls: HpatServer, params: t.DefinitionParams) -> list[t.Location] | None:
        state, ref = ls.ref_at(params.text_document.uri, params.position)
        return navigation.definition(ls.specs, ls.positions, state, ref) if ref else None

    @server.feature(t.TEXT_DOCUMENT_REFERENCES)
    def on_references(ls: HpatServer, params: t.ReferenceParams) -> list[t.Location] | None:
        _, ref = ls.ref_at(params.text_document.uri, params.position)
        if ref is None or ref.kind == "file":
            return None
        return navigation.references(ls.specs, ls.positions, ref, params.context.include_declaration)

    @server.feature(t.TEXT_DOCUMENT_COMPLETION, t.CompletionOptions(trigger_characters=[" ", ","]))
    def on_completion(ls: HpatServer, params: t.CompletionParams) -> t.CompletionList:
        state = ls.state(params.text_document.uri)
        line, column = ls.positions.from_client(state, params.position)
        lines = state.text.split("\n")
        offset = sum(len(x) + 1 for x in lines[: line - 1]) + column - 1
        items = [t.CompletionItem(c.label, kind=_COMPLETION_KINDS[c.kind], detail=c.detail or c.kind)
                 for c in completion.completions(ls.specs, state.text, offset)]
        return t.CompletionList(is_incomplete=False, items=items)

    @server.feature(t.TEXT_DOCUMENT_FORMATTING)
    def on_formatting(ls: HpatServer, params: t.DocumentFormattingParams) -> list[t.TextEdit] | None:
        document = ls.workspace.get_text_document(params.text_document.uri)
        out = formatting.formatted(document.source)
        if out is None or out == document.source:
            return None if out is None else []
        end = t.Position(len(document.lines), 0)
        return [t.TextEdit(t.Range(t.Position(0, 0), end), out)]

    @server.feature(t.TEXT_DOCUMENT_PREPARE_RENAME)
    def on_prepare_rename(ls: HpatServer, params: t.PrepareRenameParams) -> t.Range | None:
        state, ref = ls.ref_at(params.text_document.uri, params.position)
        if ref is None:
            return None
        try:
            navigation.check_renamable(ls.specs, ref)
        except navigation.RenameError as exc:
            raise JsonRpcInvalidRequest(str(exc)) from None
        return ls.positions.range(state, ref.span)

    @server.feature(t.TEXT_DOCUMENT_RENAME)
    def on_rename(ls: HpatServer, params: t.RenameParams) -> t.WorkspaceEdit | None:
        _, ref = ls.ref_at(params.text_document.uri, params.position)
        if ref is None:
            return None
        try:
            return navigation.rename(ls.specs, ls.positions, ref, params.new_name)
        except navigation.RenameError as exc:
            raise JsonRpcInvalidRequest(str(exc)) from None

    return server


def serve(stdlib: Iterable[Path], version: str = "dev") -> None:
    """Serve on stdin and stdout until the client exits."""
    create_server(stdlib, version).start_io()
