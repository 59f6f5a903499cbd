"""Awkward input through the CLI: encodings, line endings, size, nesting, and bad paths."""

from __future__ import annotations

import pytest

from humanllm_dsl.cli import main

from conftest import interaction_text, pattern_text, world_text, write

NO_CRASH = ("Traceback", "RecursionError", "__ANON")


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    for word in NO_CRASH:
        assert word not in out + err
    return code, out, err


def test_non_utf8_bytes(tmp_path, capsys):
    write(tmp_path, "latin1.hpat", b'domain d "D"\nsituation s "caf\xe9"\n')
    code, out, err = run(capsys, "check", "latin1.hpat")
    assert code == 1
    assert err.startswith("latin1.hpat:2:17: error: the file is not valid UTF-8 (byte 0xe9 cannot be decoded)")
    assert "save the file as UTF-8" in err
    code, _, err = run(capsys, "fmt", "latin1.hpat")
    assert code == 1 and "latin1.hpat:2:17: error: the file is not valid UTF-8" in err
    assert (tmp_path / "latin1.hpat").read_bytes().endswith(b"caf\xe9\"\n")


def test_utf8_bom_is_accepted(tmp_path, capsys):
    write(tmp_path, "bom.hpat", "\ufeff" + world_text())
    code, out, _ = run(capsys, "check", "bom.hpat")
    assert code == 0 and "1 situation, 1 domain," in out
    write(tmp_path, "bad.hpat", "\ufeffdomain d\n")
    code, _, err = run(capsys, "check", "bad.hpat")
    assert code == 1 and err.startswith("bad.hpat:1:8: error: the file ends too early")  # the BOM takes no column
    # fmt keeps the file's BOM (and line ending); after fmt the file is stable
    assert run(capsys, "fmt", "bom.hpat")[0] == 0
    assert (tmp_path / "bom.hpat").read_bytes().startswith(b"\xef\xbb\xbf")
    assert run(capsys, "fmt", "--check", "bom.hpat")[0] == 0


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_crlf_and_cr_line_endings(tmp_path, capsys, newline):
    good = (pattern_text("alpha") + world_text()).replace("\n", newline)
    write(tmp_path, "good.hpat", good.encode())
    assert run(capsys, "check", "good.hpat")[0] == 0
    bad = 'domain d "D"\n\npattern a "A" {\n  family trait\n  defintion "x"\n}\n'.replace("\n", newline)
    write(tmp_path, "bad.hpat", bad.encode())
    code, _, err = run(capsys, "check", "bad.hpat")
    assert code == 1
    lines = err.split("\n")
    assert lines[0] == "bad.hpat:5:3: error: unknown word `defintion`; did you mean `definition`?"
    assert lines[1] == '      defintion "x"' and "\r" not in err
    code, _, err = run(capsys, "check", "good.hpat")
    assert code == 0


def test_tabs_are_whitespace(tmp_path, capsys):
    write(tmp_path, "tabs.hpat", (pattern_text("alpha") + world_text()).replace("  ", "\t"))
    assert run(capsys, "check", "tabs.hpat")[0] == 0
    write(tmp_path, "bad.hpat", 'pattern a "A" {\n\t\tdefintion "x"\n}\n')
    code, _, err = run(capsys, "check", "bad.hpat")
    first, shown, caret = err.split("\n")[:3]
    assert code == 1 and first.startswith("bad.hpat:2:3: error: unknown word `defintion`")
    assert shown[caret.index("^")] == "d"


def test_empty_file_is_accepted(tmp_path, capsys):
    write(tmp_path, "empty.hpat", "")
    code, out, err = run(capsys, "check", "empty.hpat")
    assert code == 0 and out.startswith("ok: 1 file, 0 patterns") and err == ""
    assert run(capsys, "fmt", "--check", "empty.hpat")[0] == 0


def test_ten_megabyte_file(tmp_path, capsys):
    body = "    " + "A long and careful definition that goes on. " * 40 + "\n"
    manifestation = '  manifestation """\n' + body * 3 + '  """'
    parts = [world_text()]
    size, k = 0, 0
    while size < 10_000_000:
        text = pattern_text(f"p{k}", extra=manifestation)
        parts.append(text)
        size += len(text)
        k += 1
    write(tmp_path, "big.hpat", "\n".join(parts))
    code, out, err = run(capsys, "check", "big.hpat")
    assert code == 0, err[:2000]
    assert out.startswith(f"ok: 1 file, {k} patterns") and k > 1400
    assert err == ""


def test_deep_nesting_is_a_clear_error(tmp_path, capsys):
    write(tmp_path, "deep.hpat", "{" * 10000)
    code, _, err = run(capsys, "check", "deep.hpat")
    assert code == 1
    assert err.split("\n")[0] == "deep.hpat:1:1: error: unexpected `{`"
    write(tmp_path, "deep2.hpat", 'pattern a "A" ' + "{" * 10000 + "}" * 10000)
    code, _, err = run(capsys, "check", "deep2.hpat")
    assert code == 1 and err.split("\n")[0] == "deep2.hpat:1:16: error: unexpected `{`"
    code, _, err = run(capsys, "fmt", "deep2.hpat")
    assert code == 1 and "deep2.hpat:1:16" in err


def test_folder_without_spec_files(tmp_path, capsys):
    write(tmp_path, "specs/readme.txt", "not a spec")
    write(tmp_path, "specs/.hidden/x.hpat", "pattern")
    for command in ("check", "fmt", "dump"):
        code, out, err = run(capsys, command, "specs")
        assert code == 2 and out == ""
        assert err == f"humanllm {command}: error: specs: no .hpat files in this folder\n"


def test_nonexistent_path(capsys):
    for command in ("check", "fmt", "dump", "list"):
        code, out, err = run(capsys, command, "missing.hpat")
        assert code == 2 and out == ""
        assert err == f"humanllm {command}: error: missing.hpat: no such file or folder\n"


def test_nul_and_control_characters(tmp_path, capsys):
    write(tmp_path, "nul.hpat", 'domain d "D"\n\x00\n')
    code, _, err = run(capsys, "check", "nul.hpat")
    assert code == 1 and err.startswith("nul.hpat:2:1: error: unexpected character `\\x00`")


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_checker_messages_show_the_right_line_whatever_the_line_endings(tmp_path, capsys, newline):
    text = world_text() + "\n" + interaction_text("alpha", "beta")
    write(tmp_path, "lib.hpat", text.replace("\n", newline).encode())
    code, _, err = run(capsys, "check", "lib.hpat")
    assert code == 1
    assert err.split("\n")[:3] == ["lib.hpat:4:13: error: unknown pattern `alpha`",
                                   "    interaction alpha, beta: reinforce {",
                                   "                ^"]
