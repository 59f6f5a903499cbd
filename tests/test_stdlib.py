"""The shipped library as a standard library, and the front-end defects of issue 14. CLI tests run
from a folder outside the repository (cwd = tmp_path)."""

from __future__ import annotations

import json
import time

import pytest

from humanllm_dsl import HpatError, parse_text
from humanllm_dsl.cli import main
from humanllm_dsl.compiler.loader import check_paths, stdlib_path
from humanllm_dsl.syntax.formatter import format_module

from conftest import pattern_text, write


@pytest.fixture
def outside(tmp_path, monkeypatch):
    monkeypatch.delenv("HUMANLLM_NO_STDLIB", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


MINE = '''use std "social_cognitive/anchoring"

interaction anchoring, confirmation_bias: reinforce {
  because "First numbers stick and are then confirmed."
  expect "The character quotes the first figure and looks for agreement."
}

dataset mine {
  scenarios 3
  patterns 2..3
  include patterns anchoring, confirmation_bias, loss_aversion, talkative
}
'''


def test_list_show_check_compile_work_from_any_folder(outside, capsys):
    write(outside / "mylib", "mine.hpat", MINE)
    code, out, _ = run(capsys, "list", "--plain")
    assert code == 0 and len(out.splitlines()) == 244 and "\nanchoring\t" in out
    code, out, _ = run(capsys, "show", "loss aversion")
    assert code == 0 and "Checklist" in out
    code, out, err = run(capsys, "check", "mylib/")
    assert code == 0, err
    assert out.startswith("ok: 1 file (+156 of the standard library), 244 patterns")
    code, out, err = run(capsys, "compile", "mylib/", "-o", "out", "--dataset", "mine")
    assert code == 0, err
    assert len((outside / "out" / "records.jsonl").read_text().splitlines()) == 3



def test_optimize_sees_the_standard_library_from_any_folder(outside, capsys):
    """`optimize conversation` reads pattern definitions from the standard library by default
    (no --specs, no specs/ in the cwd); --specs adds a folder; --no-stdlib alone is refused."""
    write(outside / "mylib", "mine.hpat", MINE)
    assert run(capsys, "compile", "mylib/", "-o", "out", "--dataset", "mine")[0] == 0
    code, out, err = run(capsys, "optimize", "conversation", "out", "-o", "opt", "--limit", "2", "--max-demos", "1")
    assert code == 0, err
    assert "validation metric" in out and (outside / "opt" / "meta.json").is_file()
    code, _, err = run(capsys, "optimize", "conversation", "out", "-o", "opt2", "--limit", "2", "--no-stdlib")
    assert code == 2 and "--no-stdlib" in err
    code, _, err = run(capsys, "optimize", "conversation", "out", "-o", "opt2", "--limit", "2", "--no-stdlib",
                       "--specs", "mylib")
    assert code == 1 and "have errors" in err  # mylib alone lacks the library's patterns


def test_list_json_and_80_columns(outside, capsys):
    code, out, _ = run(capsys, "list", "--json", "--family", "trait")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 100 and {"id", "name", "dimension", "pole"} <= set(rows[0])
    code, out, _ = run(capsys, "list")
    assert all(len(line) <= 80 for line in out.splitlines())
    assert "the_utility_principle_of_self_deception" in out  # ids never wrap


def test_a_colliding_id_names_both_places_unless_it_overrides(outside, capsys):
    write(outside / "mylib", "a.hpat", pattern_text("anchoring"))
    code, _, err = run(capsys, "check", "mylib")
    assert code == 1
    assert "mylib/a.hpat:1:9: error: pattern `anchoring` is already defined in the standard library, at " \
           "std:social_cognitive/anchoring.hpat" in err
    write(outside / "mylib", "a.hpat", "override " + pattern_text("anchoring"))
    code, out, err = run(capsys, "check", "mylib")
    assert code == 0, err
    lib = check_paths(["mylib"], stdlib=True).library
    assert lib.by_id["anchoring"].name == "Display anchoring" and len(lib.patterns) == 244


def test_no_stdlib_alone_and_with_a_folder(outside, capsys):
    code, _, err = run(capsys, "list", "--no-stdlib")
    assert code == 2 and "--no-stdlib" in err
    write(outside / "mylib", "a.hpat", pattern_text("solo"))
    code, out, _ = run(capsys, "list", "--no-stdlib", "--plain", "mylib")
    assert code == 0 and out.splitlines()[0].startswith("solo\t")


def test_the_repository_specs_are_not_loaded_twice():
    result = check_paths([stdlib_path()], stdlib=True)
    assert result.errors == [] and len(result.library.patterns) == 244 and result.std_files == ()


def test_use_std_unknown_file_suggests(outside, capsys):
    write(outside / "mylib", "a.hpat", 'use std "social_cognitive/anchorin"\n')
    code, _, err = run(capsys, "check", "mylib")
    assert code == 1 and "did you mean `social_cognitive/anchoring`?" in err


def test_override_and_use_std_round_trip_through_the_formatter():
    text = 'use std "traits/openness"\n\noverride situation duty "Duty" { describe "Work." }\n'
    module = parse_text(text, "f")
    assert module.items[0].std and module.items[1].override
    assert parse_text(format_module(module), "f") == module


# ---- defects ---------------------------------------------------------------------------------------
def test_recovery_is_linear():
    def cost(n):
        text = "".join(f'pattern p{i} "P" {{\n  family trait\n' for i in range(n))
        start = time.perf_counter()
        with pytest.raises(HpatError):
            parse_text(text, "f")
        return time.perf_counter() - start

    cost(200)
    small, big = cost(500), cost(4000)
    assert big / small < 8 * 3  # 8x the input; quadratic would be ~64x


def test_a_thousand_chained_uses(tmp_path):
    for i in range(1000):
        write(tmp_path, f"f{i}.hpat", f'use "f{i + 1}.hpat"\n' if i < 999 else 'use "f0.hpat"\n')
    result = check_paths([tmp_path / "f0.hpat"])
    assert [d.message.split(":")[0] for d in result.errors] == ["import cycle"]


@pytest.mark.parametrize("field, message", [
    ("characters 2..59", "compile can make at most 58 characters"),
    ("turns 12..1000000000000000000000000000000", "compile can make at most 100 turns"),
    ("scenarios 99999999999", "compile plans at most 1,000,000 scenarios"),
])
def test_ranges_compile_cannot_make_are_errors(tmp_path, field, message):
    from conftest import world_text
    text = world_text() + pattern_text("a1") + pattern_text("b1") + \
        f"dataset d {{\n  scenarios 2\n  patterns 2..2\n  {field}\n}}\n"
    write(tmp_path, "s.hpat", text)
    assert any(message in d.message for d in check_paths([tmp_path]).errors)


def test_unreachable_patterns_range_is_warned(tmp_path):
    from conftest import world_text
    text = world_text() + "".join(pattern_text(p) for p in ("a1", "b1", "c1", "d1")) + \
        "dataset d {\n  scenarios 2\n  patterns 2..6\n}\n"
    write(tmp_path, "s.hpat", text)
    result = check_paths([tmp_path])
    assert [d.message for d in result.warnings] == [
        "dataset `d`: `patterns 2..6` can never reach 6: at most 4 of the 4 included patterns can share a scenario"]


def test_ten_megabyte_string_is_cheap():
    import tracemalloc
    text = 'situation s "' + "x" * 10_000_000 + '"\n'
    tracemalloc.start()
    parse_text(text, "f")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200_000_000


def test_keywords_are_not_ids():
    with pytest.raises(HpatError) as exc:
        parse_text('pattern pattern "P" {}\nsituation all "All"\n', "f")
    assert [d.message for d in exc.value.diagnostics] == [
        "`pattern` is a keyword of the language and cannot be the id of a pattern",
        "`all` is a keyword of the language and cannot be the id of a situation"]


def test_mixd_eval_suggests_mixed_eval():
    with pytest.raises(HpatError) as exc:
        parse_text("dataset d {\n  split { mixd_eval 3 }\n}\n", "f")
    assert "did you mean `mixed_eval`?" in exc.value.diagnostics[0].message


def test_raw_cr_in_a_string_is_refused_as_in_a_file():
    with pytest.raises(HpatError) as exc:
        parse_text('domain d "a\rb"\n', "f")
    assert exc.value.diagnostics[0].message.startswith("unterminated string")


def test_fmt_keeps_crlf_and_bom(outside, capsys):
    data = '\ufeffdomain d "D"\r\ndomain e "E"\r\n'.encode()
    (outside / "w.hpat").write_bytes(data)
    assert run(capsys, "fmt", "--check", "w.hpat")[0] == 0
    (outside / "w.hpat").write_bytes(data.replace(b'domain e', b'domain   e'))
    assert run(capsys, "fmt", "w.hpat")[0] == 0
    assert (outside / "w.hpat").read_bytes() == data


def test_non_utf8_error_shows_the_line_and_counts_characters(tmp_path):
    (tmp_path / "x.hpat").write_bytes('domain é "'.encode() + b"\xff\"\n")
    d = check_paths([tmp_path]).errors[0]
    assert (d.line, d.column) == (1, 11) and d.source_line.startswith('domain é "')


# ---- messages --------------------------------------------------------------------------------------
def test_every_curly_quote_is_reported_and_the_rest_checked():
    text = 'pattern x “X” {\n  definition “A thing.”\n  famly trait\n}\n'
    with pytest.raises(HpatError) as exc:
        parse_text(text, "f")
    messages = [(d.line, d.message) for d in exc.value.diagnostics]
    assert messages[:4] == [(1, 'curly quote `“`; use a straight "'), (1, 'curly quote `”`; use a straight "'),
                            (2, 'curly quote `“`; use a straight "'), (2, 'curly quote `”`; use a straight "')]
    assert messages[4] == (3, "unknown word `famly`; did you mean `family`?")
    assert parse_text('domain d "He said “hi”"', "f").items[0].name.value == "He said “hi”"


@pytest.mark.parametrize("word, suggestion", [("café", "cafe"), ("gambler’s_fallacy", "gamblers_fallacy"),
                                              ("gambler's_fallacy", "gamblers_fallacy")])
def test_bad_ids_say_what_ids_may_contain(word, suggestion):
    with pytest.raises(HpatError) as exc:
        parse_text(f'pattern {word} "P" {{}}\n', "f")
    d = exc.value.diagnostics[0]
    assert d.column == 9 and "lower-case ASCII letters" in d.message and d.hint == f"write `{suggestion}`"


def test_checklist_items_naming_ids_terms_or_other_patterns_are_warned(tmp_path):
    a = pattern_text("sunk_cost", name="Sunk cost", extra='  checklist { "Does the character show sunk_cost here?" }')
    b = pattern_text("loss_aversion", name="Loss aversion",
                     extra='  checklist { "Does the character fall for the sunk cost again?"\n'
                           '  "Does the character show aversion to small losses?" }')
    write(tmp_path, "s.hpat", a + b)
    warnings = [d.message for d in check_paths([tmp_path]).warnings]
    assert "checklist item uses the pattern's id `sunk_cost`" in warnings
    assert "checklist item names another pattern (`Sunk cost`)" in warnings
    assert "checklist item uses `aversion`, a key term of its pattern's name (`Loss aversion`)" in warnings
