"""The build folder's layout: the one place that knows where each output of `compile` lives.

    build = Build(Path("build"))
    build.records, build.split("train"), build.work("scenarios"), build.sft_messages("id_eval")
"""

from __future__ import annotations

from pathlib import Path

import attrs


@attrs.frozen
class Build:
    """Paths of a build folder (written by `compile` or `merge`; read by eval, train, view)."""

    root: Path = attrs.field(converter=Path)

    @property
    def plan(self) -> Path:
        return self.root / "plan.jsonl"

    @property
    def records(self) -> Path:
        return self.root / "records.jsonl"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def card(self) -> Path:
        return self.root / "README.md"

    @property
    def patterns(self) -> Path:
        """The patterns the records use, with their pattern-level checklists (what eval needs)."""
        return self.root / "patterns.json"

    @property
    def failures(self) -> Path:
        return self.root / "failures.jsonl"

    @property
    def splits(self) -> Path:
        return self.root / "splits"

    def split(self, name: str) -> Path:
        return self.splits / f"{name}.jsonl"

    @property
    def sft(self) -> Path:
        return self.root / "sft"

    def sft_messages(self, split: str) -> Path:
        return self.sft / f"messages_{split}.jsonl"

    def sharegpt(self, split: str) -> Path:
        return self.sft / f"sharegpt_{split}.json"

    @property
    def dataset_info(self) -> Path:
        return self.sft / "dataset_info.json"

    @property
    def hf(self) -> Path:
        return self.root / "hf"

    @property
    def work_dir(self) -> Path:
        """The resume state: finished results per stage, and the totals of every run."""
        return self.root / "work"

    def work(self, stage: str) -> Path:
        return self.work_dir / f"{stage}.jsonl"

    @property
    def usage_totals(self) -> Path:
        return self.work_dir / "usage.json"

    @property
    def cache(self) -> Path:
        return self.root / "cache"
