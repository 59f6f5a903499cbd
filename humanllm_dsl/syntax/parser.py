"""Text -> syntax tree. The Lark grammar is loaded once per process and its tables are cached
on disk by Lark, so a run never rebuilds the parser."""

from __future__ import annotations

import re
import threading
import unicodedata
from decimal import Decimal
from functools import cache
from importlib import resources

import attrs
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
TOP_LEVEL = ("use", "override", "pattern", "interaction", "exclude", "situation", "domain", "dataset")
ID_RULE = "an id holds only lower-case ASCII letters (a-z), digits and _, and starts with a letter"


@cache
def keyword_words() -> frozenset[str]:
    """The keywords as written (`pattern`, `all`, ...): words that cannot be ids."""
    return frozenset(k.lower() for k in keywords())


def suggest_id(word: str) -> str:
    """A valid id close to `word` (accents dropped, apostrophes removed, other marks as _)."""
    ascii_ = unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode().lower()
    ascii_ = re.sub(r"['‘’`]", "", ascii_)
    out = re.sub(r"[^a-z0-9]+", "_", ascii_).strip("_") or "my_id"
    if not out[0].isalpha():
        out = "p_" + out
    return out + "_1" if out in keyword_words() else out


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
# the escapes of a "..." string; a """...""" string takes its text as written
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
ESCAPES_TEXT = '\\" (a quote), \\\\ (a backslash), \\n (a new line), \\t (a tab) and \\r'


def unquote(token: Token) -> str:
    raw = str(token)
    if raw.startswith('"""'):
        return long_string_value(raw[3:-3])
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), raw[1:-1])


def bad_escapes(raw: str) -> list[tuple[int, str]]:
    """(offset, escape) of every unknown escape in a "..." string as written."""
    if raw.startswith('"""'):
        return []
    return [(m.start(), m.group(0)) for m in _ESCAPE.finditer(raw, 1, len(raw) - 1) if m.group(1) not in _ESCAPES]


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
    line_offset = 0  # lines before the text being parsed (error recovery parses a file in pieces)
    problems: list[Diagnostic] = []  # errors found while building nodes (bad escapes, keyword ids)

    # -- helpers
    def _span(self, first, last) -> Span:
        a = first if isinstance(first, Token) else first.span
        b = last if isinstance(last, Token) else last.span
        if isinstance(first, Token) or isinstance(last, Token):
            off = self.line_offset
            return Span(self.file, a.line + (off if isinstance(first, Token) else 0), a.column,
                        b.end_line + (off if isinstance(last, Token) else 0), b.end_column)
        return Span(self.file, a.line, a.column, b.end_line, b.end_column)

    def _tok_span(self, tok: Token) -> Span:
        off = self.line_offset
        return Span(self.file, tok.line + off, tok.column, tok.end_line + off, tok.end_column)

    def _name(self, tok: Token) -> ast.Name:
        return ast.Name(str(tok), span=self._tok_span(tok))

    def _id(self, tok: Token, label: str) -> ast.Name:
        """The id of a declaration; a keyword cannot be one (`include situations all` would be ambiguous)."""
        if str(tok) in keyword_words():
            self.problems.append(Diagnostic(
                self.file, tok.line + self.line_offset, tok.column,
                f"`{tok}` is a keyword of the language and cannot be the id of a {label}",
                hint=f"choose another id, such as `{tok}_{label}`"))
        return self._name(tok)

    def _str(self, tok: Token) -> ast.Str:
        raw = str(tok)
        for offset, escape in bad_escapes(raw):
            self.problems.append(Diagnostic(
                self.file, tok.line + self.line_offset, tok.column + offset,
                f"unknown escape `{escape}` in a string",
                hint=f"a string knows the escapes {ESCAPES_TEXT}; write \\\\ for a backslash"))
        return ast.Str(unquote(tok), span=self._tok_span(tok))

    @staticmethod
    def _override(c) -> tuple[bool, list]:
        """(whether the declaration starts with `override`, its children without that word)."""
        if isinstance(c[0], Token) and c[0].type == "OVERRIDE":
            return True, c[1:]
        return False, c

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
        return ast.Use(self._str(c[-1]), std=len(c) == 3, span=self._span(c[0], c[-1]))

    def pattern(self, children):
        override, c = self._override(children)
        fields = tuple(self._nodes(c[4:-1]))
        return ast.Pattern(self._id(c[1], "pattern"), self._str(c[2]), fields, override=override,
                           span=self._span(children[0], c[-1]))

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

    def situation(self, children):
        override, c = self._override(children)
        describe = next((x for x in c if isinstance(x, ast.Describe)), None)
        return ast.Situation(self._id(c[1], "situation"), self._str(c[2]), describe, override=override,
                             span=self._span(children[0], c[-1]))

    def domain(self, children):
        override, c = self._override(children)
        describe = next((x for x in c if isinstance(x, ast.Describe)), None)
        return ast.Domain(self._id(c[1], "domain"), self._str(c[2]), describe, override=override,
                          span=self._span(children[0], c[-1]))

    def describe(self, c):
        return ast.Describe(c[1], span=self._span(c[0], c[1]))

    def dataset(self, children):
        override, c = self._override(children)
        return ast.Dataset(self._id(c[1], "dataset"), tuple(self._nodes(c[3:-1])), override=override,
                           span=self._span(children[0], c[-1]))

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
    """Parse one file's text into a Module; raise HpatError with every syntax error found.

    Line endings are read as the files are (CRLF and CR as LF, a leading BOM dropped), so text
    given here parses exactly as the same text saved to a file."""
    text = normalise(text)
    diagnostics = _curly_quotes(text, filename)
    if diagnostics:  # report each one, then read them as straight quotes to find every other problem
        text = _CURLY.sub('"', text)
    items, comments, problems = _parse_recovering(text, filename)
    diagnostics += problems
    if diagnostics:
        lines = text.split("\n")
        raise HpatError([d if d.source_line is not None or d.line > len(lines)
                         else attrs.evolve(d, source_line=lines[d.line - 1]) for d in diagnostics])
    return ast.Module(filename, items, comments)


def normalise(text: str) -> str:
    """A leading BOM dropped; CRLF and lone CR as LF."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


_CURLY = re.compile("[\u201c\u201d\u201e\u201f]")
_SKIP = re.compile(r'#[^\n]*|"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*(?:"""|$)|"[^"\\\n]*(?:\\.[^"\\\n]*)*"?'
                   "|[\u201c\u201d\u201e\u201f]", re.S)


def _curly_quotes(text: str, filename: str) -> list[Diagnostic]:
    """An error at every curly double quote that stands where a straight one belongs (those inside
    strings and comments are text)."""
    if not _CURLY.search(text):
        return []
    found = []
    for m in _SKIP.finditer(text):
        if _CURLY.fullmatch(m.group(0)):
            start = text.rfind("\n", 0, m.start()) + 1
            end = text.find("\n", m.start())
            line = text.count("\n", 0, m.start()) + 1
            found.append(Diagnostic(filename, line, m.start() - start + 1,
                                    f"curly quote `{m.group(0)}`; use a straight \"",
                                    hint="word processors turn \" into \u201c \u201d; "
                                         "type the straight double quote \" instead",
                                    source_line=text[start:end if end != -1 else len(text)]))
    return found


def _parse_once(text: str, filename: str, line_offset: int = 0):
    lark, sink = _parser()
    with _lock:
        _transformer.file = filename
        _transformer.line_offset = line_offset
        _transformer.problems = problems = []
        sink.clear()
        try:
            items = lark.parse(text)
        finally:
            comments = tuple(ast.Comment(str(t).rstrip(), span=Span(filename, t.line + line_offset, t.column,
                                                                      t.end_line + line_offset, t.end_column))
                             for t in sink)
            sink.clear()
            _transformer.problems = []
            _transformer.line_offset = 0
    return items, comments, problems


_TOP = re.compile(r"^(?:%s)\b" % "|".join(TOP_LEVEL), re.M)


def _parse_recovering(text: str, filename: str):
    """Parse; on a syntax error, report it and go on from the next top-level declaration that
    starts a line, so one run reports every broken declaration of a file. Each piece is parsed
    on its own with its line offset, so recovery costs one more pass over the text (linear)."""
    try:
        return _parse_once(text, filename)
    except UnexpectedInput as exc:
        first = _diagnose(exc, text, filename)
    diagnostics = [first]
    seen = {(first.line, first.column)}
    starts = [m.start() for m in _TOP.finditer(text)] + [len(text)]
    chunks = list(zip(starts, starts[1:]))
    if starts[0] > 0:
        chunks.insert(0, (0, starts[0]))
    items, comments = [], []
    offset, counted = 0, 0
    for begin, end in chunks:
        offset += text.count("\n", counted, begin)
        counted = begin
        chunk = text[begin:end]
        try:
            part, part_comments, problems = _parse_once(chunk, filename, offset)
            items.extend(part)
            comments.extend(part_comments)
            diagnostics.extend(problems)
            continue
        except UnexpectedInput as exc:
            if end < len(text) and (isinstance(exc, UnexpectedEOF) or getattr(getattr(exc, "token", None), "type", None) == "$END"):
                # an unclosed block: report it where the next declaration begins, as the full parse did
                word = _TOP.match(text, end).group(0)
                try:
                    _parse_once(chunk + word, filename, offset)
                except UnexpectedInput as at_next:
                    exc, chunk = at_next, chunk + word
            diag = _diagnose(exc, chunk, filename, offset)
        if (diag.line, diag.column) not in seen:
            seen.add((diag.line, diag.column))
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


def _id_around(text: str, pos: int) -> tuple[int, str] | None:
    """(start, word) of an id-like word holding a non-ASCII letter or an apostrophe at `pos`."""
    def part(ch: str) -> bool:
        return ch.isalnum() or ch in "_'\u2019"

    ch = text[pos] if pos < len(text) else ""
    if not ch or ch.isascii() and ch != "'" or not (ch.isalnum() or ch == "\u2019" or ch == "'"):
        return None
    start, end = pos, pos
    while start > 0 and part(text[start - 1]):
        start -= 1
    while end < len(text) and part(text[end]):
        end += 1
    word = text[start:end]
    if ch in "'\u2019" and (start == pos or end == pos + 1):  # a quote, not an apostrophe inside a word
        return None
    return start, word


def _diagnose(exc: UnexpectedInput, text: str, filename: str, line_offset: int = 0) -> Diagnostic:
    """Turn a Lark error into a diagnostic in plain words (`line_offset`: lines before `text`)."""
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

    def diag(message: str, hint: str | None, at: int | None = None) -> Diagnostic:
        return Diagnostic(filename, line + line_offset, at or column, message, "error", hint, source_line)

    if isinstance(exc, UnexpectedCharacters):
        expected = _accepted(exc, exc.allowed)
        ch = text[pos] if pos < len(text) else ""
        bad_id = _id_around(text, pos)
        if bad_id is not None:
            start, word = bad_id
            return diag(f"`{word}` is not a valid id: {ID_RULE}", f"write `{suggest_id(word)}`",
                        at=column - (pos - start))
        if ch in "'\u2018\u2019":
            return diag(f"unexpected `{ch}`: strings are written in straight double quotes",
                        'write "..." (or """...""" for text over several lines)')
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
            return diag(f"missing `}}`: the `{block[2]}` block opened at line {block[0] + line_offset} is never closed",
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
            return diag(f"missing `}}`: the `{block[2]}` block opened at line {block[0] + line_offset} is not closed "
                        f"before this `{shown}`", "add `}` to close the block")
    if token.type == "NAME":
        words = sorted(n.lower() for n in expected if n in keywords())
        best = did_you_mean(shown, words)
        if best:
            return diag(f"unknown word `{shown}`; did you mean `{best}`?", describe_expected(expected))
    return diag(f"unexpected {what}", describe_expected(expected))
