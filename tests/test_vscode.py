"""The VS Code extension: its highlighting knows every keyword of the grammar, and it packages to
a .vsix holding the grammar, the language configuration and the client."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from humanllm_dsl.syntax.parser import keywords

EXTENSION = Path(__file__).resolve().parents[1] / "editors" / "vscode"


def _json(name: str) -> dict:
    return json.loads((EXTENSION / name).read_text())


def test_the_highlighted_keywords_are_the_grammars_terminals():
    rule = _json("syntaxes/hpat.tmLanguage.json")["repository"]["keyword"]["match"]
    words = re.fullmatch(r"\\b\(\?:([a-z_|]+)\)\\b", rule).group(1).split("|")
    assert sorted(words) == sorted(k.lower() for k in keywords())


def test_the_manifest_names_files_that_exist():
    manifest = _json("package.json")
    [language] = manifest["contributes"]["languages"]
    [grammar] = manifest["contributes"]["grammars"]
    assert language["extensions"] == [".hpat"] and grammar["language"] == language["id"]
    for path in (manifest["main"], language["configuration"], grammar["path"]):
        assert (EXTENSION / path).is_file(), path
    config = _json(language["configuration"])
    assert config["comments"]["lineComment"] == "#"
    assert {pair["open"] for pair in config["autoClosingPairs"]} >= {"{", "(", '"', '"""'}


@pytest.mark.skipif(shutil.which("npm") is None, reason="packaging needs Node and npm")
def test_it_packages_to_a_vsix(tmp_path):
    if not (EXTENSION / "node_modules" / "@vscode" / "vsce").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=EXTENSION, check=True,
                       capture_output=True, timeout=600)
    out = tmp_path / "humanllm-hpat.vsix"
    done = subprocess.run(["npx", "--no-install", "vsce", "package", "--skip-license", "--out", str(out)],
                          cwd=EXTENSION, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    names = set(zipfile.ZipFile(out).namelist())
    assert {"extension/package.json", "extension/extension.js", "extension/language-configuration.json",
            "extension/syntaxes/hpat.tmLanguage.json", "extension/readme.md",
            "extension/node_modules/vscode-languageclient/package.json"} <= names
