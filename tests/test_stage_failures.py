"""A stage that fails keeps the finished ones: failures.jsonl names the stage, and a resume
retries only what failed (no LM call for the finished scenarios and conversations)."""

import json
from collections import Counter
from pathlib import Path

import pytest

from humanllm_dsl.cli import main
from humanllm_dsl.testing import FakeOpenAIServer
from libgen import library_text


def _stage(request: dict) -> str:
    text = "\n".join(str(m.get("content", "")) for m in request.get("messages", []))
    for field, stage in (("design_analysis", "scenarios"), ("turns", "conversations"),
                         ("varied_checklist", "variations"), ("checklist", "checklists")):
        if f"[[ ## {field} ## ]]" in text:
            return stage
    return "other"


class StageServer(FakeOpenAIServer):
    """Counts requests per stage; answers of the stages in `broken` are an empty checklist."""

    def __init__(self, broken=(), **kwargs):
        super().__init__(transform=self._break, **kwargs)
        self.broken, self.per_stage = set(broken), Counter()

    def _break(self, request: dict, text: str):
        stage = _stage(request)
        self.per_stage[stage] += 1
        if stage in self.broken:
            field = "varied_checklist" if stage == "variations" else "checklist"
            head = text.split(f"[[ ## {field} ## ]]")[0]
            return head + f"[[ ## {field} ## ]]\n{{}}\n\n[[ ## completed ## ]]", "stop"
        return text, "stop"


@pytest.mark.parametrize("stage", ["checklists", "variations"])
def test_a_failed_stage_keeps_earlier_stages_and_resume_retries_only_it(tmp_path, monkeypatch, stage):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-stages")
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "lib.hpat").write_text(library_text(scenarios=4, id_eval=1, ood_eval=1), encoding="utf-8")
    out = tmp_path / "out"
    args = ["compile", str(spec), "-o", str(out), "--no-progress", "--no-cache", "--lm", "openai/x"]
    with StageServer(broken={stage}) as server:
        assert main([*args, "--api-base", server.base_url]) == 3  # finished, with failures
        first = Counter(server.per_stage)
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text("utf-8").splitlines()]
    assert len(failures) == 4 and {f["stage"] for f in failures} == {stage}
    assert first[stage] == 4 * 3  # three attempts each
    for kept in ("scenarios", "conversations", "checklists", "variations"):
        rows = (out / "work" / f"{kept}.jsonl").read_text("utf-8").splitlines() if kept != stage else []
        assert len(rows) == (0 if kept == stage else 4), kept
    with StageServer() as server:
        assert main([*args, "--api-base", server.base_url]) == 0
        again = Counter(server.per_stage)
    assert again == Counter({stage: 4})  # only the failed stage is asked again
    assert not (out / "failures.jsonl").read_text("utf-8").strip()
    assert len((out / "records.jsonl").read_text("utf-8").splitlines()) == 4
