"""The parser: what it builds from text, where nodes sit, and the words of its error messages."""

from __future__ import annotations

import re

import pytest

from humanllm_dsl import HpatError, ast, parse_text
from humanllm_dsl.compiler.loader import check_paths
from humanllm_dsl.syntax.diagnostics import Diagnostic, did_you_mean

from conftest import interaction_text, pattern_text, write

RAW_TERMINALS = re.compile(r"__ANON|\b(?:RBRACE|LBRACE|LPAR|RPAR|COMMA|COLON|ARROW|DOTDOT|NAME|INT|STRING|"
                           r"LONG_STRING|\$END)\b")

EVERYTHING = '''\
use "other.hpat"
# a pattern
pattern talkative "Talkative" {
  family trait
  dimension extraversion
  pole positive
  definition """
    Likes to talk.
      Indented line.
  """
  mechanism behavioral "Starts conversations."
  manifestation "Chats with strangers."
  checklist {
    "Does the character talk a lot?"
  }
  source "Doe, J." (2001) "On talk" in "Journal"
  tags "a", "b"
}
interaction talkative, quiet: conflict {
  because "Opposites."
  expect "Friction."
}
interaction anxious -> talkative, quiet: modulate {}
exclude calm, anxious { because "Contradiction." }
exclude a, b
situation adversity "Adversity" { describe "Threats." }
domain health "Health & Well-being"
dataset pilot {
  default
  describe "Small."
  scenarios 60
  patterns 2..5
  characters 2..6
  turns 12..20
  seed 42
  include patterns all
  include domains health, work
  split {
    hold_out 8 {
      social_cognitive 4
      trait 4
    }
    hold_out 3 {}
    id_eval 8
    ood_eval 6
  }
}
'''


def N(value: str) -> ast.Name:
    return ast.Name(value)


def S(value: str) -> ast.Str:
    return ast.Str(value)


def test_parses_every_construct():
    module = parse_text(EVERYTHING, "all.hpat")
    expected = (
        ast.Use(S("other.hpat")),
        ast.Pattern(N("talkative"), S("Talkative"), (
            ast.Family(N("trait")), ast.Dimension(N("extraversion")), ast.Pole(N("positive")),
            ast.Definition(S("Likes to talk.\n  Indented line.")),
            ast.Mechanism(N("behavioral"), S("Starts conversations.")),
            ast.Manifestation(S("Chats with strangers.")),
            ast.Checklist((S("Does the character talk a lot?"),)),
            ast.Source(S("Doe, J."), 2001, S("On talk"), S("Journal")),
            ast.Tags((S("a"), S("b"))),
        )),
        ast.Interaction((N("talkative"), N("quiet")), None, N("conflict"),
                        ast.Because(S("Opposites.")), ast.Expect(S("Friction."))),
        ast.Interaction((N("anxious"),), (N("talkative"), N("quiet")), N("modulate")),
        ast.Exclusion((N("calm"), N("anxious")), ast.Because(S("Contradiction."))),
        ast.Exclusion((N("a"), N("b"))),
        ast.Situation(N("adversity"), S("Adversity"), ast.Describe(S("Threats."))),
        ast.Domain(N("health"), S("Health & Well-being")),
        ast.Dataset(N("pilot"), (
            ast.Default(), ast.Describe(S("Small.")), ast.Scenarios(60), ast.Range("patterns", 2, 5),
            ast.Range("characters", 2, 6), ast.Range("turns", 12, 20), ast.Seed(42),
            ast.Include("patterns", None), ast.Include("domains", (N("health"), N("work"))),
            ast.Split((ast.HoldOut(8, (ast.Quota(N("social_cognitive"), 4), ast.Quota(N("trait"), 4))),
                       ast.HoldOut(3, ()), ast.EvalSize("id_eval", 8), ast.EvalSize("ood_eval", 6))),
        )),
    )
    assert module == ast.Module("all.hpat", expected)
    assert [c.text for c in module.comments] == ["# a pattern"]
    assert module.comments[0].span.line == 2


def test_spans_name_file_line_and_column():
    module = parse_text(EVERYTHING, "all.hpat")
    pattern = module.items[1]
    assert (pattern.span.file, pattern.span.line, pattern.span.column) == ("all.hpat", 3, 1)
    assert (pattern.id.span.line, pattern.id.span.column) == (3, 9)
    assert pattern.span.end_line == 18
    mechanism = pattern.fields[4]
    assert (mechanism.span.line, mechanism.span.column, mechanism.kind.span.column) == (11, 3, 13)
    directed = module.items[3]
    assert [n.span.column for n in directed.targets] == [24, 35]
    quota = module.items[-1].fields[-1].fields[0].quotas[1]
    assert (quota.span.line, quota.span.column) == (41, 7)


def test_empty_and_comment_only_files_parse():
    assert parse_text("", "e.hpat") == ast.Module("e.hpat", ())
    module = parse_text("# only a comment\n\n   \n", "e.hpat")
    assert module.items == () and [c.text for c in module.comments] == ["# only a comment"]


def test_string_escapes():
    module = parse_text(r'domain d "a \"q\" b\\c\nd\te \r"', "f")
    assert module.items[0].name.value == 'a "q" b\\c\nd\te \r'


def test_unknown_escape_is_an_error_at_the_backslash():
    with pytest.raises(HpatError) as exc:
        parse_text(r'domain d "a \x b \q"', "f.hpat")
    got = [(d.line, d.column, d.message) for d in exc.value.diagnostics]
    assert got == [(1, 13, "unknown escape `\\x` in a string"), (1, 18, "unknown escape `\\q` in a string")]


def test_long_string_drops_common_indent_and_blank_edges():
    text = 'situation s "S" {\n  describe """\n\n      first\n        second\n\n      third\n  """\n}\n'
    assert parse_text(text, "f").items[0].describe.text.value == "first\n  second\n\nthird"
    text = 'situation s "S" { describe """one "quoted" line""" }'
    assert parse_text(text, "f").items[0].describe.text.value == 'one "quoted" line'


def test_names_may_start_with_a_keyword():
    module = parse_text("exclude patterns_x, inx, all_of, pattern2", "f")
    assert [n.value for n in module.items[0].patterns] == ["patterns_x", "inx", "all_of", "pattern2"]


# ---- golden messages --------------------------------------------------------------------------
def first(text: str) -> Diagnostic:
    with pytest.raises(HpatError) as info:
        parse_text(text, "f.hpat")
    return info.value.diagnostics[0]


GOLDEN = [
    pytest.param(
        'pattern a "A" {\n  family trait\n\npattern b "B" {\n  family trait\n}\n',
        "f.hpat:4:1: error: missing `}`: the `pattern` block opened at line 1 is not closed before this `pattern`",
        "add `}` to close the block", id="missing-brace-before-next"),
    pytest.param(
        'pattern a "A" {\n  family trait\n',
        "f.hpat:2:10: error: missing `}`: the `pattern` block opened at line 1 is never closed",
        "add `}` at the end of the block", id="missing-brace-at-end"),
    pytest.param(
        'pattern a "A" {\n  checklist {\n    "x?"\n}\n',
        "f.hpat:4:1: error: missing `}`: the `pattern` block opened at line 1 is never closed",
        "add `}` at the end of the block", id="missing-brace-nested"),
    pytest.param(
        'pattern a "A" {\n  definition "never closed\n}\n',
        "f.hpat:2:14: error: unterminated string: this string is not closed on its line",
        'close it with " on the same line, or use """...""" for text over several lines', id="unterminated-string"),
    pytest.param(
        'pattern a "A" {\n  definition """\n    never closed\n}\n',
        'f.hpat:2:14: error: unterminated multi-line string: this """ is never closed',
        'end the text with """ (on a line of its own, or after the last word)', id="unterminated-long-string"),
    pytest.param(
        'pattern a "A" {\n  defintion "x"\n}\n',
        "f.hpat:2:3: error: unknown word `defintion`; did you mean `definition`?",
        "expected one of: `checklist`, `definition`, `dimension`, `family`, `manifestation`, `mechanism`, "
        "`pole`, `source`, `tags` or `}`", id="misspelt-keyword"),
    pytest.param(
        'patern a "A" {}\n',
        "f.hpat:1:1: error: unknown word `patern`; did you mean `pattern`?",
        "expected one of: `dataset`, `domain`, `exclude`, `interaction`, `override`, `pattern`, `situation`, `use` "
        "or the end of the file", id="misspelt-top-level-keyword"),
    pytest.param(
        "interaction a b: reinforce {}\n",
        "f.hpat:1:15: error: unexpected name `b`",
        "expected one of: `,`, `->` or `:`", id="missing-comma"),
    pytest.param(
        'pattern a "A" { checklist { "x?", "y?" } }\n',
        "f.hpat:1:33: error: unexpected `,`",
        "expected one of: `}` or a string in double quotes", id="comma-in-checklist"),
    pytest.param(
        "dataset d { patterns 2-5 }\n",
        "f.hpat:1:23: error: unexpected character `-`",
        "expected `..` (as in 2..5)", id="range-with-dash"),
    pytest.param(
        'pattern a "A" { source "Doe" 1990 "T" in "V" }\n',
        "f.hpat:1:30: error: unexpected number `1990`",
        "expected `(`", id="year-without-parentheses"),
    pytest.param(
        'pattern Talkative "T" {}\n',
        "f.hpat:1:9: error: `Talkative` is not a valid name: names are lower-case",
        "write `talkative`", id="upper-case-name"),
    pytest.param(
        "exclude a,\n",
        "f.hpat:1:10: error: the file ends too early",
        "expected a name (lower-case letters, digits and _, starting with a letter)", id="ends-early"),
]


@pytest.mark.parametrize("text, line, hint", GOLDEN)
def test_golden_syntax_messages(text, line, hint):
    d = first(text)
    rendered = d.render().split("\n")
    assert rendered[0] == line
    assert rendered[-1] == "  " + hint
    # the source line and a caret under the column
    assert rendered[1] == "    " + text.split("\n")[d.line - 1]
    assert rendered[2] == "    " + " " * (d.column - 1) + "^"


def test_render_of_a_long_line_keeps_the_caret_under_the_column():
    d = first('domain d "' + "x" * 300 + '" @\n')
    _, shown, caret, _ = d.render().split("\n")
    assert shown[caret.index("^")] == "@"


def library_message(tmp_path, monkeypatch, text: str, word: str) -> list[str]:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "spec.hpat", text)
    result = check_paths(["spec.hpat"])
    found = [d for d in result.errors if word in d.message]
    assert found, [d.message for d in result.diagnostics]
    return found[0].render().split("\n")


def test_golden_unknown_pattern_in_interaction(tmp_path, monkeypatch):
    text = pattern_text("alpha") + pattern_text("beta") + interaction_text("alpha", "betta")
    line = text.split("\n").index("interaction alpha, betta: reinforce {") + 1
    rendered = library_message(tmp_path, monkeypatch, text, "unknown pattern")
    assert rendered[0] == f"spec.hpat:{line}:20: error: unknown pattern `betta`; did you mean `beta`?"
    assert rendered[1] == "    interaction alpha, betta: reinforce {"
    assert rendered[2] == "    " + " " * 19 + "^"
    assert rendered[3] == "  interactions and exclusions name patterns by id (the word after `pattern`)"


def test_golden_duplicate_pattern(tmp_path, monkeypatch):
    text = "# first\n" + pattern_text("alpha") + "\n" + pattern_text("alpha", name="Another")
    line = text.split("\n").index('pattern alpha "Another" {') + 1
    rendered = library_message(tmp_path, monkeypatch, text, "duplicate pattern")
    assert rendered[0] == f"spec.hpat:{line}:9: error: duplicate pattern `alpha`"
    assert rendered[-1] == "  it is already defined at spec.hpat:2:1; give one of them another id"


def test_every_error_of_a_file_is_reported_in_order():
    text = ('pattern a "A" {\n  defintion "x"\n}\n'
            'domain d\n'
            'pattern b "B" {\n  famly trait\n}\n'
            'pattern c "C" { family 3 }\n'
            'situation s "S" { describe "fine" }\n')
    with pytest.raises(HpatError) as info:
        parse_text(text, "f.hpat")
    got = [(d.line, d.column, d.message) for d in info.value.diagnostics]
    assert got == [
        (2, 3, "unknown word `defintion`; did you mean `definition`?"),
        (5, 1, "unexpected keyword `pattern`"),
        (6, 3, "unknown word `famly`; did you mean `family`?"),
        (8, 24, "unexpected number `3`"),
    ]
    assert str(info.value) == "f.hpat:2:3: unknown word `defintion`; did you mean `definition`? (and 3 more errors)"


BROKEN = [
    "pattern", "pattern a", 'pattern a "A"', 'pattern a "A" {', "pattern a {}", 'pattern a "A" { family }',
    'pattern a "A" { mechanism "x" }', 'pattern a "A" { source "a" (x) "t" in "v" }', 'pattern a "A" { tags }',
    "interaction", "interaction a", "interaction a,", "interaction a: ", "interaction a -> : modulate {}",
    "interaction a, b: reinforce", "interaction a, b: reinforce { because }", "exclude", "exclude a b",
    'exclude a { expect "x" }', "situation s", "domain d {}", 'domain d "D" { describe }', "dataset {}",
    "dataset d { scenarios }", "dataset d { patterns 2.. }", "dataset d { patterns ..5 }",
    "dataset d { include patterns }", "dataset d { include people all }", "dataset d { split { hold_out } }",
    "dataset d { split { hold_out 2 { trait } } }", "dataset d { split { id_eval x } }", "use", "use x",
    "}", "{", "{" * 50, "}" * 50, '"x"', '"""x"""', "42", "->", "..", ",", ":", "(", ")", "@", "$", "é",
    "pattern a \"A\" { family trait } }", "dataset d { seed -1 }", "interaction a, b: reinforce { because \"x\" because \"y\" }",
]


@pytest.mark.parametrize("text", BROKEN)
def test_messages_never_show_internal_names(text):
    with pytest.raises(HpatError) as info:
        parse_text(text, "f.hpat")
    assert info.value.diagnostics
    for d in info.value.diagnostics:
        assert d.line >= 1 and d.column >= 1
        shown = d.render()
        assert not RAW_TERMINALS.search(shown.split("\n")[0] + "\n" + (d.hint or "")), shown
        assert d.hint, f"no hint for {text!r}: {shown}"


def test_did_you_mean():
    assert did_you_mean("defintion", ["definition", "dimension"]) == "definition"
    assert did_you_mean("zzz", ["definition", "dimension"]) is None
