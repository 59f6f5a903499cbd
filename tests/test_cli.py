"""The `humanllm` command: help, check, fmt, dump, list, show, and what `check` imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from humanllm_dsl.cli import build_parser, main

from conftest import clean_library, pattern_text, write

WHAT_IT_DOES = {
    "check": "Parse and check .hpat files",
    "fmt": "canonical layout",
    "dump": "as JSON",
    "list": "List patterns",
    "show": "Show a pattern",
}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def commands() -> dict:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices


def help_of(capsys, argv) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out, err = capsys.readouterr()
    assert err == ""
    return " ".join(out.split())


def test_every_front_end_command_is_registered():
    assert set(WHAT_IT_DOES) <= set(commands())


@pytest.mark.parametrize("name", sorted(commands()))
def test_help_of_every_command(capsys, name):
    out = help_of(capsys, [name, "--help"])
    assert out.startswith(f"usage: humanllm {name}")
    parser = commands()[name]
    assert parser.description, f"`{name}` has no description"
    assert " ".join(parser.description.split()) in out
    if name in WHAT_IT_DOES:
        assert WHAT_IT_DOES[name] in out


def test_top_level_help_lists_the_commands(capsys):
    out = help_of(capsys, ["--help"])
    for name in WHAT_IT_DOES:
        assert name in out
    assert "exit codes: 0 ok 1 problems in the specs or in the data a command reads 2 usage error" in out
    assert "3 compile finished, but some planned scenarios failed" in out and "4 a file could not be read" in out


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


# ---- check ---------------------------------------------------------------------------------------
def test_check_summary_and_exit_codes(tmp_path, capsys):
    write(tmp_path, "specs/lib.hpat", clean_library())
    assert main(["check", "specs"]) == 0
    out, err = capsys.readouterr()
    assert out == ("ok: 1 file, 9 patterns (4 social-cognitive, 5 traits), 3 interactions, 0 exclusions, "
                   "1 situation, 1 domain, 0 datasets\n")
    assert err == ""
    write(tmp_path, "specs/more.hpat", "exclude alpha, nobody\n")
    assert main(["check", "specs"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("specs/more.hpat:1:16: error: unknown pattern `nobody`\n")
    assert err.endswith("1 error, 0 warnings\n")


# ---- fmt -----------------------------------------------------------------------------------------
UNFORMATTED = '''# the header
pattern   a "A"{
family social_cognitive   # family
definition "d"
  checklist{"q?"}}
# between
domain d "D"
'''
FORMATTED = '''# the header
pattern a "A" {
  family social_cognitive  # family
  definition "d"
  checklist {
    "q?"
  }
}

# between
domain d "D"
'''


def test_fmt_rewrites_then_check_passes(tmp_path, capsys):
    path = write(tmp_path, "a.hpat", UNFORMATTED)
    assert main(["fmt", "a.hpat"]) == 0
    assert capsys.readouterr().out == "reformatted a.hpat\n"
    assert path.read_text("utf-8") == FORMATTED
    assert main(["fmt", "--check", "a.hpat"]) == 0
    assert capsys.readouterr().out == "all files already formatted\n"
    assert main(["fmt", "a.hpat"]) == 0
    assert capsys.readouterr().out == "all files already formatted\n"
    assert not list(tmp_path.glob("*.fmt-tmp"))


def test_fmt_check_reports_and_changes_nothing(tmp_path, capsys):
    path = write(tmp_path, "specs/a.hpat", UNFORMATTED)
    write(tmp_path, "specs/b.hpat", FORMATTED.replace('domain d "D"', 'domain e "E"'))
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    assert main(["fmt", "--check", "specs"]) == 1
    assert capsys.readouterr().out == "would reformat specs/a.hpat\n"
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


def test_fmt_keeps_every_comment(tmp_path, capsys):
    text = ("# top\n" + pattern_text("alpha").replace("  checklist {", "  # before checklist\n  checklist {  # open")
            .replace("  }\n", "    # last inside\n  }  # close\n") + "# end\n")
    path = write(tmp_path, "c.hpat", text)
    assert main(["fmt", "c.hpat"]) == 0
    out = path.read_text("utf-8")
    for comment in ("# top", "# before checklist", "# open", "# last inside", "# close", "# end"):
        assert comment in out
    assert main(["fmt", "--check", "c.hpat"]) == 0


def test_fmt_refuses_broken_files_and_leaves_them_alone(tmp_path, capsys):
    path = write(tmp_path, "bad.hpat", 'pattern a "A" {\n  defintion "x"\n}\n')
    assert main(["fmt", "bad.hpat"]) == 1
    err = capsys.readouterr().err
    assert err.split("\n")[0] == "bad.hpat:2:3: error: unknown word `defintion`; did you mean `definition`?"
    assert err.split("\n")[1] == '      defintion "x"'
    assert path.read_text("utf-8") == 'pattern a "A" {\n  defintion "x"\n}\n'


# ---- dump ----------------------------------------------------------------------------------------
def test_dump_json_shape(tmp_path, capsys):
    text = clean_library() + 'exclude alpha, delta { because "never" }\ndataset d { scenarios 5 }\n'
    write(tmp_path, "lib.hpat", text)
    assert main(["dump", "--json", "lib.hpat"]) == 0
    raw = capsys.readouterr().out
    assert raw.startswith("{\n  ")  # indented
    data = json.loads(raw)
    assert {"patterns", "interactions", "exclusions", "situations", "domains", "datasets"} <= set(data)
    assert len(data["patterns"]) == 9
    for p in data["patterns"]:
        assert {"id", "name", "family", "dimension", "pole", "definition", "mechanisms", "manifestations",
                "checklist", "sources"} <= set(p)
        assert isinstance(p["checklist"], list) and all(isinstance(i, str) for i in p["checklist"])
        assert len(p["checklist"]) == 13
        assert all({"authors", "year", "title", "venue"} <= set(s) for s in p["sources"])
        assert all({"kind", "text"} <= set(m) for m in p["mechanisms"])
        if p["family"] == "social_cognitive":
            assert p["dimension"] is None and p["pole"] is None
        else:
            assert p["dimension"] and p["pole"] == "positive"
    by_type = {i["type"]: i for i in data["interactions"]}
    assert set(by_type) == {"reinforce", "conflict", "modulate"}
    for i in data["interactions"]:
        assert {"patterns", "type", "direction"} <= set(i)
        assert isinstance(i["patterns"], list) and all(isinstance(x, str) for x in i["patterns"])
    assert by_type["reinforce"]["patterns"] == ["alpha", "beta"] and by_type["reinforce"]["direction"] is None
    assert by_type["conflict"]["direction"] is None
    assert by_type["modulate"]["direction"] == {"from": ["trait_openness"], "to": ["delta"]}
    assert data["exclusions"] == [{"patterns": ["alpha", "delta"], "because": "never"}]
    assert data["situations"][0]["id"] == "adversity" and data["domains"][0]["id"] == "health"
    assert data["datasets"][0]["id"] == "d" and data["datasets"][0]["scenarios"] == 5
    assert len(data["spec_hash"]) == 64


def test_dump_without_json_flag_is_one_line_and_hash_ignores_layout(tmp_path, capsys):
    write(tmp_path, "a/lib.hpat", clean_library())
    write(tmp_path, "b/lib.hpat", "# reformatted\n" + clean_library().replace("\n  ", "\n      "))
    assert main(["dump", "a"]) == 0
    first = capsys.readouterr().out
    assert first.count("\n") == 1
    assert main(["dump", "b"]) == 0
    assert json.loads(capsys.readouterr().out)["spec_hash"] == json.loads(first)["spec_hash"]


def test_dump_of_broken_specs_fails(tmp_path, capsys):
    write(tmp_path, "lib.hpat", "exclude a, b\n")
    assert main(["dump", "--json", "lib.hpat"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "unknown pattern `a`" in err


# ---- list and show -------------------------------------------------------------------------------
def test_list_and_show(tmp_path, capsys):
    write(tmp_path, "lib.hpat", clean_library())
    assert main(["list", "lib.hpat", "--family", "trait"]) == 0
    out = capsys.readouterr().out
    assert "5 patterns" in out and "trait_openness" in out and "alpha" not in out
    assert main(["show", "alpha", "lib.hpat"]) == 0
    out = capsys.readouterr().out
    assert "What alpha is" in out and "Checklist (13 items)" in out and "reinforce" in out
    assert main(["show", "alpah", "lib.hpat"]) == 1
    assert "did you mean `alpha`?" in capsys.readouterr().out


# ---- what `check` pulls in -----------------------------------------------------------------------
HEAVY = ("torch", "transformers", "trl", "peft", "scipy", "matplotlib", "optuna", "dspy", "ray")
# records every attempt to import a heavy library, installed or not
PROBE = """
import sys
tried = []
class Probe:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in %r:
            tried.append(name)
        return None
sys.meta_path.insert(0, Probe())
from humanllm_dsl.cli import main
rc = main(["check", %r])
print(rc, any(m in sys.modules for m in %r), sorted(set(tried)))
"""


def test_check_does_not_import_heavy_libraries(tmp_path):
    path = write(tmp_path, "lib.hpat", clean_library())
    done = subprocess.run([sys.executable, "-c", PROBE % (HEAVY, str(path), HEAVY)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().split("\n")[-1] == "0 False []"


# ---- the package: no import cycle, one table of errors ---------------------------------------------
CLI_MODULES = ("humanllm_dsl.cli", "humanllm_dsl.cli.common", "humanllm_dsl.cli.spec", "humanllm_dsl.cli.compile",
               "humanllm_dsl.cli.eval", "humanllm_dsl.cli.train", "humanllm_dsl.annotate.cli",
               "humanllm_dsl.draft.cli", "humanllm_dsl.view.cli", "humanllm_dsl.cli.publish", "humanllm_dsl.lsp.cli")


@pytest.mark.parametrize("first", CLI_MODULES)
def test_cli_modules_import_in_any_order(first):
    """Each module imported first in a fresh interpreter, then the rest; then the parser is built."""
    order = [first, *(m for m in CLI_MODULES if m != first)]
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in order) + (
        "from humanllm_dsl.cli import build_parser\nbuild_parser()\nprint('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_command_modules_never_import_the_root():
    import ast
    from pathlib import Path

    import humanllm_dsl.cli as root

    folder = Path(root.__file__).parent
    modules = {p.stem for p in folder.glob("*.py")}
    for path in folder.glob("*.py"):
        if path.stem in ("__init__", "__main__"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                from_root = (node.level == 1 and node.module is None
                             and not {a.name for a in node.names} <= modules) or node.module == "humanllm_dsl.cli"
                assert not from_root, f"{path.name}:{node.lineno} imports from the cli root"


def test_every_command_module_registers_its_commands():
    import argparse
    import importlib

    from humanllm_dsl import cli

    registered = {}
    for name in cli.COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(name).add_commands(sub)
        registered[name.removeprefix("humanllm_dsl.")] = set(sub.choices)
    assert {"cli.spec": {"check", "fmt", "dump", "list", "show"}, "cli.compile": {"compile", "merge"},
            "cli.train": {"train"}, "cli.eval": {"eval", "align", "optimize"}, "cli.publish": {"push", "completion"},
            "annotate.cli": {"annotate"}, "draft.cli": {"draft"}, "view.cli": {"view"},
            "lsp.cli": {"lsp"}}.items() <= registered.items()
    parser = build_parser()
    assert set(next(a for a in parser._actions if a.dest == "command").choices) == set().union(*registered.values())


def test_every_class_in_the_error_table_exists():
    import importlib

    from humanllm_dsl.cli import ERRORS

    for name in ERRORS:
        module, _, qualname = name.rpartition(".")
        cls = getattr(importlib.import_module(module), qualname)
        assert isinstance(cls, type) and issubclass(cls, BaseException), name


def test_errors_are_looked_up_along_the_class_hierarchy():
    import errno

    from humanllm_dsl.cli import EXIT_IO, EXIT_OK, EXIT_SPEC, EXIT_USAGE, handling
    from humanllm_dsl.runtime.outdir import OutputBusy
    from humanllm_dsl.runtime.store import StoreError

    assert handling(OutputBusy("busy")).exit_code(OutputBusy("busy")) == EXIT_USAGE  # via UsageError
    assert handling(StoreError("bad")).exit_code(StoreError("bad")) == EXIT_SPEC  # via JsonFileError
    assert handling(BrokenPipeError()).exit_code(BrokenPipeError()) == EXIT_OK  # before OSError
    full = OSError(errno.ENOSPC, "No space left on device")
    assert handling(full).exit_code(full) == EXIT_IO
    assert handling(ValueError("x")) is None and handling(SystemExit(0)) is None


def test_an_error_not_in_the_table_is_not_swallowed(monkeypatch, tmp_path):
    from humanllm_dsl.cli import spec

    def boom(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(spec, "cmd_check", boom)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["check", str(tmp_path)])


def test_python_dash_m_runs_the_command(tmp_path):
    path = write(tmp_path, "lib.hpat", clean_library())
    for module in ("humanllm_dsl", "humanllm_dsl.cli"):
        done = subprocess.run([sys.executable, "-m", module, "check", str(path)], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0 and done.stdout.startswith("ok: 1 file,"), done.stderr


def test_shared_names_have_one_source():
    from humanllm_dsl.compiler.model import EVAL_SPLITS, SPLITS, TRAIN_SPLIT
    from humanllm_dsl.compiler.saved_programs import PROGRAM_CLASSES
    from humanllm_dsl.evaluate import data as eval_data
    from humanllm_dsl.evaluate.optimize import TARGETS
    from humanllm_dsl.runtime import lmconfig, stages
    from humanllm_dsl.train import data as train_data

    assert tuple(PROGRAM_CLASSES) == stages.PROGRAMS == lmconfig.PROGRAMS
    assert set(TARGETS) <= set(stages.PROGRAMS)
    assert (TRAIN_SPLIT, *EVAL_SPLITS) == SPLITS
    assert eval_data.EVAL_SPLITS is EVAL_SPLITS and train_data.EVAL_SPLITS is EVAL_SPLITS
    assert build_parser().parse_args(["eval", "b", "--model", "m", "-o", "o"]).judge == stages.OFFLINE
