"""Packaging beyond what pyproject.toml can say: the repository's `specs/` (the pattern library,
its one source) is installed as the package data folder `humanllm_dsl/stdlib`."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["humanllm_dsl*"]), "humanllm_dsl.stdlib"],
      package_dir={"humanllm_dsl.stdlib": "specs"})  # package data: pyproject.toml
