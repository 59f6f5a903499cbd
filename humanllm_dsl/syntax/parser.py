"""Text -> syntax tree. The Lark grammar is loaded once per process and its tables are cached
on disk by Lark, so a run never rebuilds the parser."""

from __future__ import annotations

import re
import threading
from decimal import Decimal
from functools import cache
from importlib import resources

from lark.lexer import PatternStr
from lark import Lark, Token, Transformer, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import ast
from .diagnostics import Diagnostic, HpatError, did_you_mean
from .span import Span

# What each terminal that is not a keyword means to a person, used in "expected ..." hints;
# keywords (terminals that are a literal word) are read from the grammar, see `keywords()`.
TERMINAL_WORDS = {
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "COMMA": "`,`",
    "COLON": "`:`",
    "ARROW": "`->`",
    "DOTDOT": "`..` (as in 2..5)",
    "NAME": "a name (lower-case letters, digits and _, starting with a letter)",
    "INT": "a whole number",
    "PERCENT": "a percentage (as in 60%)",
    "STRING": 'a string in double quotes',
    "LONG_STRING": 'a """multi-line string"""',
    "$END": "the end of the file",
}
TOP_LEVEL = ("use", "pattern", "interaction", "exclude", "situation", "domain", "dataset")


@cache
def keywords() -> frozenset[str]:
    """The names of the grammar's keyword terminals (`PATTERN: "pattern"`, ...), from the grammar."""
    lark, _ = _parser()
    return frozenset(t.name for t in lark.terminals
                     if isinstance(t.pattern, PatternStr) and re.fullmatch(r"[a-z_]+", t.pattern.value))


def describe_terminal(name: str) -> str:
    if name in keywords():
        return f"`{name.lower()}`"
    return TERMINAL_WORDS.get(name, name.lower())


def describe_expected(names) -> str:
    words = sorted({describe_terminal(n) for n in names if not n.startswith("__")})
    if "a string in double quotes" in words and 'a """multi-line string"""' in words:
        words.remove('a """multi-line string"""')
    if not words:
        return "nothing more here"
    if len(words) == 1:
        return f"expected {words[0]}"
    return "expected one of: " + ", ".join(words[:-1]) + f" or {words[-1]}"


_ESCAPE = re.compile(r"\\(.)", re.S)
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


def unquote(token: Token) -> str:
    raw = str(token)
    if raw.startswith('"""'):
        return long_string_value(raw[3:-3])
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), raw[1:-1])


def long_string_value(body: str) -> str:
    """The value of a \"\"\"...\"\"\" string: common indentation and surrounding blank space removed."""
    lines = [line.rstrip() for line in body.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    indents = [len(line) - len(line.lstrip()) for line in lines if line]
    cut = min(indents, default=0)
    return "\n".join(line[cut:] for line in lines)


class _ToAst(Transformer):
    """Builds AST nodes while the LALR parser runs (no intermediate tree)."""

    file = "<spec>"

    # -- helpers
    def _span(self, first, last) -> Span:
        a = first if isinstance(first, Token) else first.span
        b = last if isinstance(last, Token) else last.span
        return Span(self.file, a.line, a.column, b.end_line, b.end_column)

    def _tok_span(self, tok: Token) -> Span:
        return Span(self.file, tok.line, tok.column, tok.end_line, tok.end_column)

    def _name(self, tok: Token) -> ast.Name:
        return ast.Name(str(tok), span=self._tok_span(tok))

    def _str(self, tok: Token) -> ast.Str:
        return ast.Str(unquote(tok), span=self._tok_span(tok))

    @staticmethod
    def _nodes(children):
        return [c for c in children if not isinstance(c, Token)]

    # -- rules
    def start(self, children):
        return tuple(children)

    def text(self, children):
        return self._str(children[0])

    def name_list(self, children):
        return tuple(self._name(t) for t in children if t.type == "NAME")

    def use(self, c):
        return ast.Use(self._str(c[1]), span=self._span(c[0], c[1]))

    def pattern(self, c):
        fields = tuple(self._nodes(c[4:-1]))
        return ast.Pattern(self._name(c[1]), self._str(c[2]), fields, span=self._span(c[0], c[-1]))

    def family(self, c):
        return ast.Family(self._name(c[1]), span=self._span(c[0], c[1]))

    def dimension(self, c):
        return ast.Dimension(self._name(c[1]), span=self._span(c[0], c[1]))

    def pole(self, c):
        return ast.Pole(self._name(c[1]), span=self._span(c[0], c[1]))

    def definition(self, c):
        return ast.Definition(c[1], span=self._span(c[0], c[1]))

    def mechanism(self, c):
        return ast.Mechanism(self._name(c[1]), c[2], span=self._span(c[0], c[2]))

    def manifestation(self, c):
        return ast.Manifestation(c[1], span=self._span(c[0], c[1]))

    def checklist(self, c):
        return ast.Checklist(tuple(self._nodes(c)), span=self._span(c[0], c[-1]))

    def source(self, c):
        # SOURCE STRING ( INT ) STRING IN STRING
        return ast.Source(self._str(c[1]), int(c[3]), self._str(c[5]), self._str(c[7]),
                          span=self._span(c[0], c[7]))

    def tags(self, c):
        values = tuple(self._str(t) for t in c if isinstance(t, Token) and t.type == "STRING")
        return ast.Tags(values, span=self._span(c[0], c[-1]))

    def _interaction(self, c, sources, targets):
        type_tok = next(t for t in c if isinstance(t, Token) and t.type == "NAME")
        because = next((x for x in c if isinstance(x, ast.Because)), None)
        expect = next((x for x in c if isinstance(x, ast.Expect)), None)
        return ast.Interaction(sources, targets, self._name(type_tok), because, expect,
                               span=self._span(c[0], c[-1]))

    def undirected_interaction(self, c):
        return self._interaction(c, c[1], None)

    def directed_interaction(self, c):
        return self._interaction(c, c[1], c[3])

    def because(self, c):
        return ast.Because(c[1], span=self._span(c[0], c[1]))

    def expect(self, c):
        return ast.Expect(c[1], span=self._span(c[0], c[1]))

    def exclusion(self, c):
        because = next((x for x in c if isinstance(x, ast.Because)), None)
        has_body = any(isinstance(t, Token) and t.type == "LBRACE" for t in c)
        last = c[-1] if isinstance(c[-1], Token) else c[1][-1]
        return ast.Exclusion(c[1], because, has_body, span=self._span(c[0], last))

    def situation(self, c):
        describe = next((x for x in c if isinstance(x, ast.Describe)), None)
        return ast.Situation(self._name(c[1]), self._str(c[2]), describe, span=self._span(c[0], c[-1]))

    def domain(self, c):
        describe = next((x for x in c if isinstance(x, ast.Describe)), None)
        return ast.Domain(self._name(c[1]), self._str(c[2]), describe, span=self._span(c[0], c[-1]))

    def describe(self, c):
        return ast.Describe(c[1], span=self._span(c[0], c[1]))

    def dataset(self, c):
        return ast.Dataset(self._name(c[1]), tuple(self._nodes(c[3:-1])), span=self._span(c[0], c[-1]))

    def default(self, c):
        return ast.Default(span=self._tok_span(c[0]))

    def scenarios(self, c):
        return ast.Scenarios(int(c[1]), span=self._span(c[0], c[1]))

    def range_field(self, c):
        return ast.Range(str(c[0]), int(c[1]), int(c[3]), span=self._span(c[0], c[3]))

    def seed(self, c):
        return ast.Seed(int(c[1]), span=self._span(c[0], c[1]))

    def include(self, c):
        names = None if isinstance(c[2], Token) else c[2]
        last = c[2] if isinstance(c[2], Token) else c[2][-1]
        return ast.Include(str(c[1]), names, span=self._span(c[0], last))

    def split(self, c):
        return ast.Split(tuple(self._nodes(c)), span=self._span(c[0], c[-1]))

    def hold_out(self, c):
        quotas = tuple(self._nodes(c)) if len(c) > 2 else None
        return ast.HoldOut(int(c[1]), quotas, span=self._span(c[0], c[-1]))

    def quota(self, c):
        return ast.Quota(self._name(c[0]), int(c[1]), span=self._span(c[0], c[1]))

    def percent(self, c):
        return ast.Percent(Decimal(str(c[0])[:-1]), span=self._tok_span(c[0]))

    def bundle(self, c):
        return ast.Bundle(tuple(self._nodes(c)), span=self._span(c[0], c[-1]))

    def bundle_rule(self, c):
        ints = [int(t) for t in c if isinstance(t, Token) and t.type == "INT"]
        percents = [x for x in c if isinstance(x, ast.Percent)]
        has = {t.type for t in c if isinstance(t, Token)}
        positive = percents.pop(0) if "POSITIVE" in has else None
        share = percents.pop(0) if "IN" in has else None
        return ast.BundleRule(self._name(c[0]), ints[0], ints[-1], positive, share, span=self._span(c[0], c[-1]))

    def cast(self, c):
        weights = tuple(self._nodes(c))
        return ast.Cast(weights, span=self._span(c[0], weights[-1]))

    def cast_weight(self, c):
        return ast.CastWeight(int(c[0]), c[2], span=self._span(c[0], c[2]))

    def eval_size(self, c):
        return ast.EvalSize(str(c[0]), int(c[1]), span=self._span(c[0], c[1]))


_lock = threading.Lock()
_transformer = _ToAst()


def grammar_text() -> str:
    return resources.files("humanllm_dsl").joinpath("grammars/hpat.lark").read_text("utf-8")


@cache
def _parser() -> tuple[Lark, list]:
    comments: list = []
    lark = Lark(grammar_text(), parser="lalr", lexer="contextual", transformer=_transformer,
                lexer_callbacks={"COMMENT": comments.append}, cache=True,
                maybe_placeholders=False)
    return lark, comments


@cache
def raw_parser() -> Lark:
    """A plain Lark parser of the same grammar that builds a parse tree (for benchmarks)."""
    return Lark(grammar_text(), parser="lalr", lexer="contextual", cache=True)


def parse_text(text: str, filename: str = "<spec>") -> ast.Module:
    """Parse one file's text into a Module; raise HpatError with every syntax error found."""
    items, comments, diagnostics = _parse_recovering(text, filename)
    if diagnostics:
        raise HpatError(diagnostics)
    return ast.Module(filename, items, comments)


def _parse_once(text: str, filename: str):
    lark, sink = _parser()
    with _lock:
        _transformer.file = filename
        sink.clear()
        try:
            items = lark.parse(text)
        finally:
            comments = tuple(ast.Comment(str(t).rstrip(), span=Span(filename, t.line, t.column, t.end_line, t.end_column))
                             for t in sink)
            sink.clear()
    return items, comments


_TOP = re.compile(r"^(?:%s)\b" % "|".join(TOP_LEVEL), re.M)


def _parse_recovering(text: str, filename: str):
    """Parse; on a syntax error, report it and go on from the next top-level declaration that
    starts a line, so one run reports every broken declaration of a file."""
    try:
        items, comments = _parse_once(text, filename)
        return items, comments, []
    except UnexpectedInput as exc:
        first = _diagnose(exc, text, filename)
    diagnostics = [first]
    starts = [m.start() for m in _TOP.finditer(text)] + [len(text)]
    chunks = list(zip(starts, starts[1:]))
    if starts[0] > 0:
        chunks.insert(0, (0, starts[0]))
    items, comments = [], []
    for begin, end in chunks:
        # keep positions: blank out everything outside the chunk but its newlines
        padded = re.sub(r"[^\n]", " ", text[:begin]) + text[begin:end]
        try:
            part, part_comments = _parse_once(padded, filename)
            items.extend(part)
            comments.extend(part_comments)
        except UnexpectedInput as exc:
            if end < len(text) and (isinstance(exc, UnexpectedEOF) or getattr(getattr(exc, "token", None), "type", None) == "$END"):
                # an unclosed block: report it where the next declaration begins, as the full parse did
                word = _TOP.match(text, end).group(0)
                try:
                    _parse_once(padded + word, filename)
                except UnexpectedInput as at_next:
                    exc, padded = at_next, padded + word
            diag = _diagnose(exc, padded, filename)
            if all((d.line, d.column) != (diag.line, diag.column) for d in diagnostics):
                diagnostics.append(diag)
    return tuple(items), tuple(comments), diagnostics


def _open_block(text: str, pos: int) -> tuple[int, int, str] | None:
    """The innermost `{` still open at `pos` (line, column, keyword of its line)."""
    stack = []
    i, line, col = 0, 1, 1
    n = min(pos, len(text))
    while i < n:
        ch = text[i]
        if ch == "#":
            j = text.find("\n", i)
            j = n if j == -1 else j
            col += j - i
            i = j
            continue
        if text.startswith('"""', i):
            j = text.find('"""', i + 3)
            j = n if j == -1 else j + 3
            chunk = text[i:j]
            line += chunk.count("\n")
            col = len(chunk) - chunk.rfind("\n") if "\n" in chunk else col + len(chunk)
            i = j
            continue
        if ch == '"':
            m = re.compile(r'"(?:[^"\\\n]|\\.)*"?').match(text, i)
            col += m.end() - i
            i = m.end()
            continue
        if ch == "{":
            start = text.rfind("\n", 0, i) + 1
            stack.append((line, col, text[start:i].split()[0] if text[start:i].split() else "block"))
        elif ch == "}" and stack:
            stack.pop()
        if ch == "\n":
            line, col = line + 1, 1
        else:
            col += 1
        i += 1
    return stack[-1] if stack else None


def _word_at(text: str, pos: int) -> str:
    m = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*").match(text, pos)
    return m.group(0) if m else ""


def _accepted(exc: UnexpectedInput, fallback) -> set[str]:
    """The terminals the parser can really take at the error. Lark's own `expected` is the
    lookahead of a merged LALR state, which lists words that cannot follow here."""
    interactive = getattr(exc, "interactive_parser", None)
    if interactive is not None:
        accepted = interactive.accepts()
        if accepted:
            return accepted
    return set(fallback or ())


def _diagnose(exc: UnexpectedInput, text: str, filename: str) -> Diagnostic:
    """Turn a Lark error into a diagnostic in plain words."""
    lines = text.split("\n")
    line = getattr(exc, "line", None)
    column = getattr(exc, "column", None)
    if not isinstance(line, int) or line < 1:  # end of file
        line = max(len(lines), 1)
        column = len(lines[-1]) + 1 if lines else 1
        pos = len(text)
    else:
        pos = exc.pos_in_stream if exc.pos_in_stream is not None else 0
    source_line = lines[line - 1] if line - 1 < len(lines) else ""

    def diag(message: str, hint: str | None) -> Diagnostic:
        return Diagnostic(filename, line, column, message, "error", hint, source_line)

    if isinstance(exc, UnexpectedCharacters):
        expected = _accepted(exc, exc.allowed)
        ch = text[pos] if pos < len(text) else ""
        if ch == '"' and text[pos - 2:pos + 1] == '"""':  # the lexer took `""` as an empty string
            column -= 2
            return diag('unterminated multi-line string: this """ is never closed',
                        'end the text with """ (on a line of its own, or after the last word)')
        if ch == '"':
            return diag("unterminated string: this string is not closed on its line",
                        'close it with " on the same line, or use """...""" for text over several lines')
        word = _word_at(text, pos)
        if word:
            words = sorted(n.lower() for n in expected if n in keywords())
            best = did_you_mean(word.lower(), words)
            if best:
                return diag(f"unknown word `{word}`; did you mean `{best}`?", describe_expected(expected))
            if word != word.lower() and "NAME" in expected:
                return diag(f"`{word}` is not a valid name: names are lower-case",
                            f"write `{re.sub(r'[^a-z0-9_]', '_', word.lower())}`")
            return diag(f"unexpected word `{word}`", describe_expected(expected))
        shown = repr(ch)[1:-1] if ch else "end of file"
        return diag(f"unexpected character `{shown}`", describe_expected(expected))

    expected = _accepted(exc, getattr(exc, "expected", None))
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        block = _open_block(text, len(text))
        if block and "RBRACE" in expected:
            return diag(f"missing `}}`: the `{block[2]}` block opened at line {block[0]} is never closed",
                        "add `}` at the end of the block")
        return diag("the file ends too early", describe_expected(expected))

    token = exc.token
    shown = str(token)
    if token.type in keywords():
        what = f"keyword `{shown}`"
    elif token.type in ("STRING", "LONG_STRING"):
        what = "string"
    elif token.type == "NAME":
        what = f"name `{shown}`"
    elif token.type == "INT":
        what = f"number `{shown}`"
    else:
        what = f"`{shown}`"
    if "RBRACE" in expected and token.type in {k.upper() for k in TOP_LEVEL}:
        block = _open_block(text, pos)
        if block:
            return diag(f"missing `}}`: the `{block[2]}` block opened at line {block[0]} is not closed "
                        f"before this `{shown}`", "add `}` to close the block")
    if token.type == "NAME":
        words = sorted(n.lower() for n in expected if n in keywords())
        best = did_you_mean(shown, words)
        if best:
            return diag(f"unknown word `{shown}`; did you mean `{best}`?", describe_expected(expected))
    return diag(f"unexpected {what}", describe_expected(expected))
