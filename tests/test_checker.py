"""Semantic checks, one by one, on small libraries written to tmp_path."""

from __future__ import annotations

import zlib

import pytest

from humanllm_dsl import HpatError, check_text, load
from humanllm_dsl.cli import main
from humanllm_dsl.compiler.loader import check_paths
from humanllm_dsl.compiler.model import Direction

from conftest import clean_library, interaction_text, messages, pattern_text, world_text, write

DATASET_OK = '''
dataset main {
  default
  scenarios 100
  patterns 2..4
  characters 2..5
  turns 12..16
  seed 7
  split {
    hold_out 4 {
      social_cognitive 2
      trait 2
    }
    id_eval 10
    ood_eval 10
  }
}
'''


def only_error(result) -> str:
    errors = messages(result)
    assert len(errors) == 1, errors
    return errors[0]


# ---- the clean case -----------------------------------------------------------------------------
def test_clean_library_has_no_diagnostics(check):
    result = check(clean_library() + DATASET_OK)
    assert result.diagnostics == []
    lib = result.library
    assert len(lib.patterns) == 9 and len(lib.interactions) == 3
    modulate = [i for i in lib.interactions if i.type == "modulate"][0]
    assert modulate.direction == Direction(("trait_openness",), ("delta",))
    assert modulate.patterns == ("trait_openness", "delta")
    dataset = lib.dataset()
    assert (dataset.id, dataset.scenarios, dataset.patterns, dataset.characters, dataset.turns, dataset.seed) == \
        ("main", 100, (2, 4), (2, 5), (12, 16), 7)
    assert dataset.hold_out.count == 4 and dataset.hold_out.quotas == {"social_cognitive": 2, "trait": 2}
    assert lib.pattern("trait_openness").dimension == "openness"


def test_check_text_and_load_raise_with_every_error(tmp_path):
    text = clean_library() + interaction_text("alpha", "nobody") + interaction_text("alpha", "ghost")
    with pytest.raises(HpatError) as info:
        check_text(text, "lib.hpat")
    assert [d.message for d in info.value.errors] == ["unknown pattern `nobody`", "unknown pattern `ghost`"]
    assert info.value.errors[0].source_line == "interaction alpha, nobody: reinforce {"
    path = write(tmp_path, "lib.hpat", text)
    with pytest.raises(HpatError) as info:
        load(path)
    assert len(info.value.errors) == 2
    assert check_paths([path]).library is None


# ---- names --------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra, message", [
    (pattern_text("alpha"), "duplicate pattern `alpha`"),
    ('situation adversity "Again"\n', "duplicate situation `adversity`"),
    ('domain health "Again"\n', "duplicate domain `health`"),
    ("dataset d { scenarios 5 }\ndataset d { scenarios 6 }\n", "duplicate dataset `d`"),
])
def test_duplicate_ids(check, extra, message):
    result = check(clean_library() + extra)
    assert only_error(result) == message
    (d,) = result.errors
    assert "it is already defined at " in d.hint and "spec.hpat:" in d.hint


def test_duplicate_across_files_names_the_first_file(tmp_path):
    write(tmp_path, "a.hpat", clean_library())
    write(tmp_path, "b.hpat", pattern_text("beta"))
    result = check_paths([tmp_path])
    (d,) = result.errors
    assert d.message == "duplicate pattern `beta`" and d.file.endswith("b.hpat")
    assert "a.hpat:" in d.hint


@pytest.mark.parametrize("extra, message", [
    (interaction_text("alpha", "betta"), "unknown pattern `betta`; did you mean `beta`?"),
    (interaction_text("gama", "beta"), "unknown pattern `gama`; did you mean `gamma`?"),
    (interaction_text("alpha", "zzzzzz"), "unknown pattern `zzzzzz`"),
    (interaction_text("alphaa", "delta", "modulate", arrow=True), "unknown pattern `alphaa`; did you mean `alpha`?"),
    ("exclude alpha, deltaa\n", "unknown pattern `deltaa`; did you mean `delta`?"),
    ("dataset d { scenarios 5 include patterns alpha, bta }\n", "unknown pattern `bta`; did you mean `beta`?"),
    ("dataset d { scenarios 5 include situations adversty }\n",
     "unknown situation `adversty`; did you mean `adversity`?"),
    ("dataset d { scenarios 5 include domains heath }\n", "unknown domain `heath`; did you mean `health`?"),
])
def test_unknown_references_suggest_a_name(check, extra, message):
    assert only_error(check(clean_library() + extra)) == message


# ---- patterns -----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ('pattern p "P" { definition "d" checklist { "Q?" } }', "pattern `p` has no `family`"),
    ('pattern p "P" { family traits definition "d" checklist { "Q?" } }',
     "unknown family `traits`; did you mean `trait`?"),
    ('pattern p "P" { family social_cognitive checklist { "Q?" } }', "pattern `p` has no `definition`"),
    ('pattern p "P" { family social_cognitive definition "d" }', "pattern `p` has no checklist items"),
    ('pattern p "P" { family trait pole positive definition "d" checklist { "Q?" } }',
     "trait `p` has no `dimension`"),
    ('pattern p "P" { family trait dimension extraverson pole positive definition "d" checklist { "Q?" } }',
     "unknown Big Five dimension `extraverson`; did you mean `extraversion`?"),
    ('pattern p "P" { family trait dimension openness definition "d" checklist { "Q?" } }',
     "trait `p` has no `pole`"),
    ('pattern p "P" { family trait dimension openness pole postive definition "d" checklist { "Q?" } }',
     "unknown pole `postive`; did you mean `positive`?"),
    ('pattern p "P" { family social_cognitive dimension openness definition "d" checklist { "Q?" } }',
     "`dimension` is only for traits; `p` is social_cognitive"),
    ('pattern p "P" { family social_cognitive pole positive definition "d" checklist { "Q?" } }',
     "`pole` is only for traits; `p` is social_cognitive"),
    ('pattern p "P" { family social_cognitive family social_cognitive definition "d" checklist { "Q?" } }',
     "pattern `p` has more than one `family`"),
    ('pattern p "P" { family social_cognitive definition "d" definition "e" checklist { "Q?" } }',
     "pattern `p` has more than one `definition`"),
    ('pattern p "P" { family trait dimension openness pole positive mechanism motivational "m" '
     'definition "d" checklist { "Q?" } }',
     "unknown mechanism kind `motivational`; did you mean `emotional`?"),
    ('pattern p "P" { family social_cognitive mechanism cognitve "m" definition "d" checklist { "Q?" } }',
     "unknown mechanism kind `cognitve`; did you mean `cognitive`?"),
    ('pattern p "P" { family social_cognitive definition "d" checklist { "Q?" "" } }', "empty checklist item"),
    ('pattern p "P" { family social_cognitive definition "d" checklist { "Same q?" "same Q" } }',
     "checklist item repeated in `p`"),
])
def test_pattern_checks(check, text, message):
    assert only_error(check(text + "\n")) == message


def test_trait_check_points_at_the_bad_word(check):
    result = check('pattern p "P" {\n  family trait\n  dimension extraverson\n  pole positive\n'
                   '  definition "d"\n  checklist { "Q?" }\n}\n')
    (d,) = result.errors
    assert (d.line, d.column) == (3, 13)
    assert d.hint.startswith("a dimension is one of: extraversion, agreeableness")


def test_checklist_item_shared_by_two_patterns_is_an_error(check):
    text = pattern_text("alpha") + pattern_text("beta", extra='  checklist { "Does the character show behaviour 1 of kind %d?" }'
                                                % zlib.crc32(b"alpha"))
    result = check(text)
    assert "repeats one of `alpha`" in only_error(result)
    error = result.errors[0]
    first_item = next(d for d in range(1, 99) if "behaviour 1 of kind" in text.split("\n")[d - 1])
    assert error.line > first_item and f":{first_item}:5" in error.hint  # at the repeat, naming the other's file:line


# ---- interactions --------------------------------------------------------------------------------
@pytest.mark.parametrize("extra, message", [
    (interaction_text("alpha", "beta", "reinforse"), "unknown interaction type `reinforse`; did you mean `reinforce`?"),
    (interaction_text("alpha", "beta", "modulate"), "`modulate` is directed: say which pattern shapes which"),
    (interaction_text("alpha", "beta", "reinforce", arrow=True),
     "only `modulate` takes a direction (`->`); `reinforce` is mutual"),
    (interaction_text("alpha", "beta", "conflict", arrow=True),
     "only `modulate` takes a direction (`->`); `conflict` is mutual"),
    (interaction_text("alpha", "alpha"), "`alpha` appears twice in one interaction"),
    ('interaction alpha: reinforce { because "b" expect "e" }\n', "an interaction needs at least two patterns"),
    ("exclude alpha\n", "an exclusion needs at least two patterns"),
    ("exclude alpha, alpha\n", "`alpha` appears twice in one exclusion"),
    (interaction_text("alpha", "beta", "conflict"), "`alpha` and `beta` are declared both to reinforce and to conflict"),
    ("exclude gamma, delta\n" + interaction_text("gamma", "delta"),
     "`gamma` and `delta` interact here but are excluded from sharing a scenario"),
    ("exclude gamma, delta, alpha\n" + interaction_text("delta", "alpha", "modulate", arrow=True),
     "`delta` and `alpha` interact here but are excluded from sharing a scenario"),
])
def test_interaction_checks(check, extra, message):
    assert only_error(check(clean_library() + extra)) == message


def test_contradiction_names_the_other_declaration(check):
    result = check(clean_library() + interaction_text("beta", "alpha", "conflict"))
    (d,) = result.errors
    first = [i for i in check_paths([d.file]).modules[0].items if getattr(i, "type", None) is not None][0]
    assert d.hint == f"the other declaration is at {first.span}; keep one"


def test_interaction_warnings(check):
    text = clean_library() + "interaction gamma, delta: reinforce {}\n" + interaction_text("alpha", "beta") \
        + pattern_text("trait_extra", family="trait", dimension="openness", pole="negative") \
        + interaction_text("trait_extra", "trait_openness", "conflict")
    result = check(text)
    assert result.errors == [] and result.library is not None
    assert messages(result, "warning") == [
        "interaction has no `because`", "interaction has no `expect`",
        "`alpha` and `beta` already have a `reinforce` interaction",
        "this interaction joins two `openness` traits, which never share a scenario",
    ]


# ---- datasets ------------------------------------------------------------------------------------
def dataset(body: str) -> str:
    return clean_library() + f"dataset d {{\n{body}\n}}\n"


@pytest.mark.parametrize("body, message", [
    ("patterns 2..3", "dataset `d` has no `scenarios` count"),
    ("scenarios 0", "a dataset needs at least one scenario"),
    ("scenarios 5 patterns 5..2", "`patterns 5..2`: the low end is above the high end"),
    ("scenarios 5 characters 6..2", "`characters 6..2`: the low end is above the high end"),
    ("scenarios 5 turns 20..12", "`turns 20..12`: the low end is above the high end"),
    ("scenarios 5 characters 1..4", "`characters` must start at 2 or more"),
    ("scenarios 5 patterns 0..4", "`patterns` must start at 1 or more"),
    ("scenarios 5 turns 1..4", "`turns` must start at 2 or more"),
    ("scenarios 5 seed 1 seed 2", "dataset `d` sets `seed` twice"),
    ("scenarios 5 patterns 2..3 patterns 2..4", "dataset `d` sets `patterns` twice"),
    ("scenarios 5 split { hold_out 2 hold_out 3 }", "`hold_out` is set twice"),
    ("scenarios 5 split { hold_out 2 id_eval 1 id_eval 1 }", "`id_eval` is set twice"),
    ("scenarios 5 split { hold_out 2 { trate 2 } }", "unknown family `trate`; did you mean `trait`?"),
    ("scenarios 5 split { hold_out 2 { trait 1 trait 1 } }", "quota for `trait` is set twice"),
    ("scenarios 5 split { hold_out 3 { trait 1 social_cognitive 1 } }",
     "`hold_out 3` but the quotas add up to 2"),
])
def test_dataset_checks(check, body, message):
    assert only_error(check(dataset(body))) == message


def test_bad_range_hint_offers_the_swap(check):
    (d,) = check(dataset("scenarios 5 patterns 5..2")).errors
    assert d.hint == "write `patterns 2..5`"
    (d,) = check(dataset("scenarios 5 characters 1..4")).errors
    assert d.hint == "a conversation needs at least two characters"


def test_only_one_default_dataset(check):
    text = clean_library() + "dataset a { default scenarios 5 }\ndataset b { default scenarios 5 }\n"
    assert only_error(check(text)) == "more than one dataset is marked `default` (`a` and `b`)"


UNSAT = "dataset `d` cannot be satisfied: "


@pytest.mark.parametrize("body, message", [
    ("scenarios 50 split { hold_out 7 { social_cognitive 1 trait 6 } }",
     "held-out traits come from different Big Five dimensions, but only 5 dimensions are available for 6 traits"),
    ("scenarios 50 split { hold_out 5 { social_cognitive 5 } }",
     "it holds out 5 social-cognitive patterns but only 4 are available"),
    ("scenarios 50 split { hold_out 9 { social_cognitive 4 trait 5 } }",
     "holding out 9 of 9 patterns leaves nothing to train on"),
    ("scenarios 50 split { hold_out 12 }", "holding out 12 of 9 patterns leaves nothing to train on"),
    ("scenarios 10 split { hold_out 4 { social_cognitive 2 trait 2 } id_eval 6 ood_eval 5 }",
     "6 + 5 + 0 evaluation scenarios do not fit in 10"),
    ("scenarios 10 split { id_eval 11 }", "11 + 0 + 0 evaluation scenarios do not fit in 10"),
    ("scenarios 10 split { ood_eval 2 }", "`ood_eval` needs held-out patterns"),
    ("scenarios 10 split { mixed_eval 2 }", "`mixed_eval` needs held-out patterns"),
    ("scenarios 10 split { hold_out 2 id_eval 4 ood_eval 2 mixed_eval 5 }",
     "4 + 2 + 5 evaluation scenarios do not fit in 10"),
    ("scenarios 10 patterns 3..5 split { hold_out 2 ood_eval 2 }",
     "out-of-domain scenarios use only held-out patterns, but 2 held out cannot fill a scenario of 3"),
    ("scenarios 10 patterns 10..12", "a scenario needs at least 10 patterns but at most 9 can be combined from the 9 available"),
    ("scenarios 10 include patterns alpha, beta patterns 3..3",
     "a scenario needs at least 3 patterns but at most 2 can be combined from the 2 available"),
    ("scenarios 10 include patterns trait_openness, trait_extraversion, alpha patterns 3..3 "
     "split { hold_out 1 { social_cognitive 1 } }",
     "the patterns left after the hold-out cannot fill a scenario of 3 patterns"),
])
def test_unsatisfiable_datasets(check, body, message):
    assert only_error(check(dataset(body))) == UNSAT + message


def test_dataset_needs_situations_and_domains(check):
    text = clean_library().replace(world_text(), "") + "dataset d { scenarios 5 }\n"
    assert sorted(messages(check(text))) == [UNSAT + "the specs declare no `domain`",
                                             UNSAT + "the specs declare no `situation`"]


def test_unsatisfiable_hold_out_points_at_hold_out(check):
    text = dataset("scenarios 50\nsplit {\n  hold_out 9 { social_cognitive 4 trait 5 }\n}")
    (d,) = check(text).errors
    lines = text.split("\n")
    assert lines[d.line - 1][d.column - 1:].startswith("hold_out 9")


# ---- warnings never fail a check -----------------------------------------------------------------
@pytest.mark.parametrize("pattern, warning", [
    (pattern_text("solo", items=11), "pattern `solo` has 11 checklist items"),
    (pattern_text("solo", items=16), "pattern `solo` has 16 checklist items"),
    (pattern_text("solo", manifestations=2), "pattern `solo` has 2 manifestations"),
    (pattern_text("solo", sources=1), "pattern `solo` has 1 source"),
    (pattern_text("solo", name="Sunk cost fallacy",
                  extra='  checklist { "Does the character fall for the sunk cost fallacy?" }'),
     "checklist item names its own pattern (`Sunk cost fallacy`)"),
])
def test_warnings_do_not_fail_check(tmp_path, capsys, pattern, warning):
    path = write(tmp_path, "w.hpat", pattern)
    result = check_paths([path])
    assert result.errors == [] and messages(result, "warning") == [warning]
    assert main(["check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert f"warning: {warning}" in err and "0 errors, 1 warning" in err
    assert out.startswith("ok: 1 file, 1 pattern")


def test_item_not_naming_its_pattern_gets_no_warning(check):
    text = pattern_text("solo", name="Sunk cost fallacy",
                        extra='  checklist { "Does the character keep paying for a plan that already failed?" }')
    result = check(text)
    assert result.diagnostics == []


# ---- files: use, cycles, the spec root -----------------------------------------------------------
def test_use_pulls_in_files_below_the_root(tmp_path):
    write(tmp_path, "root/main.hpat", 'use "parts/a.hpat"\n' + world_text())
    write(tmp_path, "root/parts/a.hpat", pattern_text("alpha") + pattern_text("beta"))
    result = check_paths([tmp_path / "root" / "main.hpat"])
    assert result.errors == [] and [p.id for p in result.library.patterns] == ["alpha", "beta"]
    assert len(result.files) == 2


def test_import_cycle(tmp_path):
    write(tmp_path, "a.hpat", 'use "b.hpat"\n' + pattern_text("alpha"))
    write(tmp_path, "b.hpat", 'use "c.hpat"\n')
    write(tmp_path, "c.hpat", 'use "a.hpat"\n')
    result = check_paths([tmp_path / "a.hpat"])
    (d,) = result.errors
    assert d.message.startswith("import cycle: ") and d.message.count("->") == 3
    assert [p.rsplit("/", 1)[-1] for p in d.message[len("import cycle: "):].split(" -> ")] == \
        ["a.hpat", "b.hpat", "c.hpat", "a.hpat"]
    assert d.file.endswith("c.hpat") and (d.line, d.column) == (1, 1)
    assert result.library is None


def test_self_import_is_a_cycle(tmp_path):
    write(tmp_path, "a.hpat", 'use "a.hpat"\n')
    assert messages(check_paths([tmp_path / "a.hpat"]))[0].startswith("import cycle: ")


def test_use_outside_the_root(tmp_path):
    write(tmp_path, "outside.hpat", pattern_text("alpha"))
    write(tmp_path, "root/main.hpat", 'use "../outside.hpat"\n')
    result = check_paths([tmp_path / "root"])
    (d,) = result.errors
    assert d.message == '`use "../outside.hpat"` points outside the spec root'
    assert (d.line, d.column) == (1, 5) and "spec files may only use files inside" in d.hint


def test_use_of_an_absolute_path(tmp_path):
    target = write(tmp_path, "root/x.hpat", "")
    write(tmp_path, "root/main.hpat", f'use "{target}"\n')
    (d,) = check_paths([tmp_path / "root"]).errors
    assert d.message.endswith("points outside the spec root")


def test_use_of_a_missing_file(tmp_path):
    write(tmp_path, "main.hpat", 'use "nope.hpat"\n')
    (d,) = check_paths([tmp_path / "main.hpat"]).errors
    assert d.message == '`use "nope.hpat"`: no such file'


def test_syntax_errors_of_several_files_are_all_reported(tmp_path):
    write(tmp_path, "a.hpat", "pattern a {}\n")
    write(tmp_path, "b.hpat", "exclude\n")
    result = check_paths([tmp_path])
    assert [d.file.rsplit("/", 1)[-1] for d in result.errors] == ["a.hpat", "b.hpat"]
    assert all(d.source_line is not None for d in result.errors)
