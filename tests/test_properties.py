"""Property tests: random valid syntax trees survive format -> parse; formatting is idempotent;
mutated text either parses or fails with positioned diagnostics (never another exception); a file's
BOM and line ending survive fmt; escapes round-trip and an unknown one is an error at its backslash."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from humanllm_dsl import HpatError, ast, format_module, parse_text
from humanllm_dsl.cli import main
from humanllm_dsl.syntax.source import Style, decode, style
from humanllm_dsl.syntax.parser import grammar_text
from humanllm_dsl.syntax.span import Span

FILE = "gen.hpat"
# example counts come from the profile loaded in conftest.py (HYPOTHESIS_PROFILE=deep for a long run)
SETTINGS = settings(suppress_health_check=[HealthCheck.too_slow])

# every keyword of the grammar (a line `WORD: "word"`), read from the grammar itself
KEYWORDS = frozenset(re.findall(r'^[A-Z_]+: "([a-z_]+)"$', grammar_text(), re.M))
RAW_TERMINALS = re.compile(r"__ANON|\b(?:RBRACE|LBRACE|LPAR|RPAR|COMMA|COLON|ARROW|DOTDOT|NAME|INT|STRING|"
                           r"LONG_STRING|\$END|COMMENT|WS)\b")


def test_keywords_were_found():
    assert {"pattern", "interaction", "hold_out", "ood_eval", "in", "all"} <= KEYWORDS


# ---- strategies ---------------------------------------------------------------------------
ids = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(lambda s: s not in KEYWORDS)
names = ids.map(ast.Name)
SPECIAL = ['"', "\\", "\n", "\t", "\r", '"""', "\\n", '\\"', " ", "  ", "#", "{", "}", "é", "日本語", "😀",
           "\u2028", "\x0c", "\x00", "'", "->", ".."]
chars = st.one_of(st.sampled_from(SPECIAL), st.characters(exclude_categories=("Cs",)))
texts = st.lists(chars, max_size=12).map("".join)
# multi-line prose, the usual content of definitions (exercises the \"\"\" layout)
prose = st.lists(st.from_regex(r"[ ]{0,4}[A-Za-z][A-Za-z ,.'-]{0,30}", fullmatch=True), min_size=1, max_size=5) \
    .map("\n".join)
strs = st.one_of(texts, prose).map(ast.Str)
ints = st.integers(min_value=0, max_value=10**12)
small = st.integers(min_value=0, max_value=10**6)


def tup(strategy, min_size=0, max_size=4):
    return st.lists(strategy, min_size=min_size, max_size=max_size).map(tuple)


pattern_fields = st.one_of(
    st.builds(ast.Family, st.sampled_from(["social_cognitive", "trait"]).map(ast.Name) | names),
    st.builds(ast.Dimension, names),
    st.builds(ast.Pole, st.sampled_from(["positive", "negative"]).map(ast.Name) | names),
    st.builds(ast.Definition, strs),
    st.builds(ast.Mechanism, names, strs),
    st.builds(ast.Manifestation, strs),
    st.builds(ast.Checklist, tup(strs, max_size=5)),
    st.builds(ast.Source, strs, ints, strs, strs),
    st.builds(ast.Tags, tup(strs, min_size=1)),
)
patterns = st.builds(ast.Pattern, names, strs, tup(pattern_fields, max_size=8))
because = st.none() | st.builds(ast.Because, strs)
expect = st.none() | st.builds(ast.Expect, strs)
interaction_types = st.sampled_from(["reinforce", "conflict", "modulate"]).map(ast.Name) | names
interactions = st.builds(ast.Interaction, tup(names, 1), st.none() | tup(names, 1), interaction_types, because, expect)
directed = st.builds(ast.Interaction, tup(names, 1), tup(names, 1), st.just(ast.Name("modulate")), because, expect)
exclusions = st.builds(ast.Exclusion, tup(names, 1), because)
describe = st.none() | st.builds(ast.Describe, strs)
situations = st.builds(ast.Situation, names, strs, describe)
domains = st.builds(ast.Domain, names, strs, describe)
quotas = st.builds(ast.Quota, st.sampled_from(["social_cognitive", "trait"]).map(ast.Name) | names, small)
split_fields = st.one_of(
    st.builds(ast.HoldOut, small, st.none() | tup(quotas)),
    st.builds(ast.EvalSize, st.sampled_from(["id_eval", "ood_eval"]), small),
)
dataset_fields = st.one_of(
    st.builds(ast.Default),
    st.builds(ast.Describe, strs),
    st.builds(ast.Scenarios, small),
    st.builds(ast.Range, st.sampled_from(["patterns", "characters", "turns"]), small, small),
    st.builds(ast.Seed, ints),
    st.builds(ast.Include, st.sampled_from(["patterns", "situations", "domains"]), st.none() | tup(names, 1)),
    st.builds(ast.Split, tup(split_fields)),
)
percents = st.builds(ast.Percent, st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False,
                                             allow_infinity=False))
bundle_rules = st.builds(ast.BundleRule, st.sampled_from(["trait", "social_cognitive"]).map(ast.Name) | names,
                         small, small, st.none() | percents, st.none() | percents)
dataset_fields = dataset_fields | st.builds(ast.Bundle, tup(bundle_rules)) \
    | st.builds(ast.Cast, tup(st.builds(ast.CastWeight, small, percents), min_size=1))
datasets = st.builds(ast.Dataset, names, tup(dataset_fields, max_size=8))
uses = st.builds(ast.Use, strs)
items = st.one_of(uses, patterns, interactions, directed, exclusions, situations, domains, datasets)
modules = st.builds(ast.Module, st.just(FILE), tup(items, max_size=6))


def nodes(value):
    """Every attrs node below `value` (itself included)."""
    if attrs.has(type(value)):
        yield value
        for field in attrs.fields(type(value)):
            if field.name != "span":
                yield from nodes(getattr(value, field.name))
    elif isinstance(value, tuple):
        for v in value:
            yield from nodes(v)


# ---- round trip -----------------------------------------------------------------------------
@SETTINGS
@given(modules)
def test_format_then_parse_gives_the_same_tree(module):
    text = format_module(module)
    assert parse_text(text, FILE) == module


@SETTINGS
@given(modules)
def test_format_is_idempotent(module):
    once = format_module(module)
    assert format_module(parse_text(once, FILE)) == once


@SETTINGS
@given(modules)
def test_every_parsed_node_knows_where_it_is(module):
    text = format_module(module)
    lines = text.split("\n")
    parsed = parse_text(text, FILE)
    for node in nodes(parsed.items):
        span = node.span
        assert isinstance(span, Span), node
        assert span.file == FILE
        assert 1 <= span.line <= len(lines) and span.column >= 1
        assert (span.end_line, span.end_column) >= (span.line, span.column)


# ---- comments survive formatting ------------------------------------------------------------
@SETTINGS
@given(modules, st.data())
def test_comments_survive_format(module, data):
    lines = format_module(module).split("\n")
    out, in_long, n = [], False, 0
    for line in lines:
        outside = not in_long and '"""' not in line
        if outside and line.strip() and data.draw(st.booleans(), label="comment before"):
            out.append(f"{line[: len(line) - len(line.lstrip())]}# before {n}")
            n += 1
        if outside and line.strip() and data.draw(st.booleans(), label="comment after"):
            line += f"  # after {n}"
            n += 1
        out.append(line)
        if line.count('"""') == 1:
            in_long = not in_long
    text = "\n".join(out)
    parsed = parse_text(text, FILE)
    assert parsed == module
    assert len(parsed.comments) == n
    formatted = format_module(parsed)
    for k in range(n):
        assert re.search(rf"# (before|after) {k}$", formatted, re.M), (k, formatted)
    assert parse_text(formatted, FILE) == module
    assert format_module(parse_text(formatted, FILE)) == formatted


# ---- mutations ---------------------------------------------------------------------------------
TOKENS = ['{', '}', '"', '"""', '(', ')', ',', ':', '->', '..', '#', '\n', ' ', '\t', '\\', 'pattern', 'family',
          'interaction', 'checklist', 'hold_out', 'split', 'dataset', 'defintion', 'x', 'Abc', '42', '-1', '@',
          'é', '\x00', '\ufeff', '\r']


@st.composite
def mutated(draw):
    text = format_module(draw(modules))
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["delete", "insert", "replace", "delete_token", "insert_token"]))
        if op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 8)):]
        elif op == "insert":
            text = text[:pos] + draw(chars) + text[pos:]
        elif op == "replace":
            text = text[:pos] + draw(chars) + text[pos + 1:]
        elif op == "insert_token":
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos:]
        else:
            words = list(re.finditer(r"\S+", text))
            if words:
                w = draw(st.sampled_from(words))
                text = text[: w.start()] + text[w.end():]
    return text


def assert_clean_failure(text: str) -> None:
    try:
        parse_text(text, FILE)
    except HpatError as exc:
        assert exc.diagnostics, "an HpatError must carry diagnostics"
        lines = re.split(r"\r\n|\r|\n", text)  # the parser reads CR, LF and CRLF as line ends, as files do
        for d in exc.diagnostics:
            assert d.line >= 1 and d.column >= 1, d
            assert d.line <= len(lines) + 1, d
            assert d.file == FILE
            assert not RAW_TERMINALS.search(d.message + " " + (d.hint or "")), d
            rendered = d.render()
            assert rendered.startswith(f"{FILE}:{d.line}:{d.column}: error: ")
        positions = [(d.line, d.column) for d in exc.diagnostics]
        assert positions == sorted(positions)


@SETTINGS
@given(mutated())
def test_mutated_text_parses_or_fails_cleanly(text):
    assert_clean_failure(text)


@SETTINGS
@given(st.lists(st.one_of(st.sampled_from(TOKENS), chars), max_size=40).map("".join))
def test_arbitrary_text_parses_or_fails_cleanly(text):
    assert_clean_failure(text)


# ---- line endings, BOM and escapes ---------------------------------------------------------------
styles = st.builds(Style, st.booleans(), st.sampled_from(["\n", "\r\n", "\r"]))


@SETTINGS
@given(modules.filter(lambda m: m.items), styles)
def test_fmt_keeps_the_line_ending_and_bom_and_the_tree(module, saved):
    """A file saved with a BOM and CRLF (or CR) decodes and parses to the same tree, and `fmt`
    writes it back byte for byte: it keeps the BOM and the line ending."""
    data = saved.encode(format_module(module))
    assert style(data) == saved
    text, problems = decode(data, FILE)
    assert not problems and text is not None
    parsed = parse_text(text, FILE)
    assert parsed == module
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / FILE
        path.write_bytes(data)
        assert main(["fmt", "--check", str(path)]) == 0
        assert main(["fmt", str(path)]) == 0 and path.read_bytes() == data


ESCAPE_VALUES = {'\\"': '"', "\\\\": "\\", "\\n": "\n", "\\t": "\t", "\\r": "\r"}
# text a "..." string may hold as written: anything but a quote, a backslash or a line break
plain = st.characters(exclude_categories=("Cs",), exclude_characters='"\\\n\r')
pieces = st.lists(st.one_of(plain, st.sampled_from(sorted(ESCAPE_VALUES))), max_size=20)
unknown = st.characters(exclude_categories=("Cs",), exclude_characters='"\\\n\rntr')
prefix = st.integers(min_value=0, max_value=3).map(lambda n: "# a comment\n" * n)


def describe_line(raw: str) -> str:
    return f'situation s "S" {{ describe "{raw}" }}\n'


@SETTINGS
@given(pieces, prefix)
def test_valid_escapes_round_trip(parts, head):
    """Each known escape means its character, and formatting writes the value back the same."""
    module = parse_text(head + describe_line("".join(parts)), FILE)
    value = module.items[0].describe.text.value
    assert value == "".join(ESCAPE_VALUES.get(p, p) for p in parts)
    assert parse_text(format_module(module), FILE) == module


@SETTINGS
@given(pieces, unknown, pieces, prefix)
def test_an_unknown_escape_is_an_error_at_its_backslash(before, letter, after, head):
    raw_before = "".join(before)
    text = head + describe_line(raw_before + "\\" + letter + "".join(after))
    try:
        parse_text(text, FILE)
    except HpatError as exc:
        found = [d for d in exc.diagnostics if d.message.startswith("unknown escape")]
    else:
        raise AssertionError(f"`\\{letter}` was accepted")
    line = head.count("\n") + 1
    column = len('situation s "S" { describe "') + len(raw_before) + 1  # columns count characters
    assert found and (found[0].file, found[0].line, found[0].column) == (FILE, line, column)
    assert found[0].message == f"unknown escape `\\{letter}` in a string"
    assert found[0].render().startswith(f"{FILE}:{line}:{column}: error: unknown escape")
