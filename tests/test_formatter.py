"""The canonical formatter: layout, comments, blank lines, and how strings are written."""

from __future__ import annotations

import pytest

from humanllm_dsl import ast, format_module, parse_text
from humanllm_dsl.syntax.formatter import can_be_long, quote

MESSY = '''# header comment


use   "x.hpat"
use "y.hpat"   # trailing use
pattern   a "A"{family social_cognitive
   definition """
        Line one.
          Line two.
   """


   checklist{"q1?"
   # between items
   "q2?"}
   tags "t1","t2"
   source "Doe, J."(1999)"Title"in"Venue"
   # before end of pattern
}
exclude a,b
exclude c,d{because "x"}
situation s "S"
situation t "T"
interaction a->b:modulate{}
interaction a , b : reinforce { because "r" expect "e" }
dataset x { split { hold_out 2 { } id_eval 3 } scenarios 5 patterns 2..3 include domains all }
# final comment
'''

CANONICAL = '''# header comment

use "x.hpat"
use "y.hpat"  # trailing use

pattern a "A" {
  family social_cognitive
  definition """
    Line one.
      Line two.
  """

  checklist {
    "q1?"
    # between items
    "q2?"
  }
  tags "t1", "t2"
  source "Doe, J." (1999) "Title" in "Venue"
  # before end of pattern
}

exclude a, b

exclude c, d {
  because "x"
}

situation s "S"
situation t "T"

interaction a -> b: modulate {}

interaction a, b: reinforce {
  because "r"
  expect "e"
}

dataset x {
  split {
    hold_out 2 {}
    id_eval 3
  }
  scenarios 5
  patterns 2..3
  include domains all
}
# final comment
'''


def fmt(text: str) -> str:
    return format_module(parse_text(text, "f.hpat"))


def test_canonical_layout():
    assert fmt(MESSY) == CANONICAL


def test_canonical_text_is_a_fixed_point_and_keeps_the_tree():
    assert fmt(CANONICAL) == CANONICAL
    assert parse_text(CANONICAL, "f.hpat") == parse_text(MESSY, "f.hpat")


def test_comment_in_an_otherwise_empty_block_is_kept():
    text = 'domain d "D" {\n  # about d\n}\nsituation s "S" { # about s\n}\n'
    out = fmt(text)
    assert "# about d" in out and "# about s" in out
    assert parse_text(out, "f.hpat") == parse_text(text, "f.hpat")
    assert fmt(out) == out


def test_comments_inside_every_kind_of_block_are_kept():
    text = ('dataset d {  # c1\n  split {  # c2\n    hold_out 2 {  # c3\n      trait 2  # c4\n    }  # c5\n'
            '    # c6\n  }  # c7\n}  # c8\n')
    out = fmt(text)
    assert out == text
    assert [c.text for c in parse_text(out, "f").comments] == [f"# c{k}" for k in range(1, 9)]


def test_blank_lines_collapse_to_one_and_are_not_invented():
    text = 'pattern a "A" {\n  family trait\n\n\n\n  pole positive\n  dimension openness\n}\n'
    assert fmt(text) == 'pattern a "A" {\n  family trait\n\n  pole positive\n  dimension openness\n}\n'


def test_fields_keep_their_order():
    text = 'pattern a "A" {\n  tags "z"\n  pole negative\n  family trait\n}\n'
    assert fmt(text) == text


def test_empty_module_formats_to_empty_text():
    assert format_module(ast.Module("f", ())) == ""
    assert fmt("\n\n  \n") == ""


@pytest.mark.parametrize("value, long", [
    ("one line", False),
    ("two\nlines", True),
    ("  indented\nfirst", True),           # relative indentation survives
    ("\nstarts with a newline", False),   # edge blank lines would be dropped
    ('has """ inside\nx', False),
    ('ends with a quote"\nx"', False),
    ("a\\backslash\nx", False),
    ("a\ttab\nx", False),
    ("trailing space \nx", False),
    ("blank\n\nline", True),
])
def test_which_strings_are_written_as_long_strings(value, long):
    assert ("\n" in value and can_be_long(value)) is long
    text = format_module(ast.Module("f", (ast.Situation(ast.Name("s"), ast.Str("S"),
                                                        ast.Describe(ast.Str(value))),)))
    assert ('"""' in text) is long
    assert parse_text(text, "f").items[0].describe.text.value == value


def test_quote_escapes():
    assert quote('a"b\\c\nd\te') == r'"a\"b\\c\nd\te"'
