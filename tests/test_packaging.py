"""The installed package carries the standard library: a wheel built from this tree holds
specs/ as humanllm_dsl/stdlib, and `humanllm list` run from an unrelated folder sees all of it."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_wheel_ships_the_library_and_list_works_from_anywhere(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("humanllm-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    specs = sorted(p.relative_to(ROOT / "specs").as_posix() for p in (ROOT / "specs").rglob("*.hpat"))
    assert sorted(n.removeprefix("humanllm_dsl/stdlib/") for n in names if n.startswith("humanllm_dsl/stdlib/")) == specs
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "HUMANLLM_NO_STDLIB"} | {"PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "from humanllm_dsl.compiler.loader import stdlib_path; "
                            "print(stdlib_path())"], capture_output=True, text=True, env=env, cwd=elsewhere)
    assert Path(where.stdout.strip()) == site / "humanllm_dsl" / "stdlib", where.stderr
    listed = subprocess.run([sys.executable, "-m", "humanllm_dsl", "list", "--plain"], capture_output=True,
                            text=True, env=env, cwd=elsewhere)
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 244
