"""`humanllm optimize`: optimisers raise their metric; saved programs round-trip; registries."""

from __future__ import annotations

import json
import re

import dspy
import pytest
from dspy.lm15 import Message, Response, TextPart, Usage

from humanllm_dsl.compiler import programs as P
from humanllm_dsl.compiler.saved_programs import SavedProgramError, load_program, save_program
from humanllm_dsl.evaluate import optimize as O

SECTION = re.compile(r"\[\[ ## (\w+) ## \]\]\n(.*?)(?=\n\n\[\[ ## |\Z)", re.S)


def _text(msg) -> str:
    return msg.text if isinstance(getattr(msg, "text", None), str) else "".join(p.text for p in msg.parts)


class DemoFollowingJudge:
    """A stand-in LM that judges well only when few-shot demonstrations are in its prompt:
    without them it answers 0 for every item; with them it reads the transcript's label
    (YES -> +1, NO -> -1, MEH -> 0). An optimiser that adds demos therefore raises agreement."""

    def __init__(self):
        self.calls = 0

    def complete(self, request) -> Response:
        self.calls += 1
        users = [m for m in request.messages if m.role == "user"]
        fields = dict(SECTION.findall(_text(users[-1])))
        n = len(json.loads(fields["items"]))
        label = re.search(r"\b(YES|NO|MEH)\b", fields["transcript"]).group(1)
        score = {"YES": 1, "NO": -1, "MEH": 0}[label] if len(users) > 1 else 0
        verdicts = [{"item": i, "score": score, "evidence": label if score else ""} for i in range(1, n + 1)]
        body = f"[[ ## verdicts ## ]]\n{json.dumps(verdicts)}\n\n[[ ## completed ## ]]"
        return Response(id=None, model="test/demo-judge", message=Message.assistant([TextPart(body)]),
                        finish_reason="stop", usage=Usage(input_tokens=1, output_tokens=1, total_tokens=2))


def example(label: str, human: float, k: int) -> dspy.Example:
    return dspy.Example(character="Ann", transcript=f"Ann: [case {k}] (nods) {label}.", items=["a?", "b?"],
                        feedback="", human=human).with_inputs("character", "transcript", "items", "feedback")


def test_bootstrap_raises_judge_agreement():
    train = [example("MEH", 0.0, k) for k in range(3)] + [example("YES", 100.0, k) for k in range(3, 5)]
    val = [example("YES", 100.0, 10), example("NO", -100.0, 11), example("YES", 100.0, 12)]
    lm = dspy.LM("test/demo-judge", engine=DemoFollowingJudge(), cache=False)
    o = O.OptimizeOptions(target="judge", build=None, out=None, max_demos=2)
    with dspy.context(lm=lm, adapter=dspy.ChatAdapter(use_json_adapter_fallback=False)):
        program = P.ChecklistJudge()
        before = O.score(program, val, O.judge_agreement)
        optimized = O.OPTIMIZER_REGISTRY["bootstrap"](O.judge_agreement, o, lm, None).compile(program, trainset=train)
        after = O.score(optimized, val, O.judge_agreement)
    assert before == pytest.approx(0.5)
    assert after == pytest.approx(1.0)
    assert 1 <= len(optimized.predict.demos) <= 2


def test_metrics():
    ex = example("YES", 50.0, 0)
    assert O.judge_agreement(ex, dspy.Prediction(verdicts=[{"item": 1, "score": 1}, {"item": 2, "score": 0}])) == 1.0
    assert O.judge_agreement(ex, dspy.Prediction(verdicts=[{"item": 1, "score": -1}, {"item": 2, "score": -1}])) == 0.25
    assert O.judge_agreement(ex, dspy.Prediction(verdicts="garbage")) == 0.0
    assert O.judge_agreement(ex, dspy.Prediction(verdicts=[{"item": 1, "score": 1}, {"item": 2, "score": 0}]), trace=[]) is True
    hol = dspy.Example(human={"anthropomorphism": 80.0, "fidelity": 60.0})
    assert O.holistic_agreement(hol, dspy.Prediction(anthropomorphism=70, fidelity="60")) == pytest.approx(0.95)
    assert O.holistic_agreement(hol, dspy.Prediction(anthropomorphism="n/a", fidelity=60)) == pytest.approx(0.5)
    feedback = O.with_feedback(O.judge_agreement)(ex, dspy.Prediction(verdicts=[{"item": 1, "score": 1}, {"item": 2, "score": 0}]))
    assert feedback.score == 1.0 and "agreement" in feedback.feedback


def test_the_conversation_metric_refuses_every_library_pattern_by_name():
    """As compile does: a turn naming any pattern of the library fails the format checks, one the
    example's scenario does not carry (the bandwagon effect here) as well as its own."""
    metric = O.conversation_metric_for(None, O.OptimizeOptions(target="conversation", build=None, out=None))
    record = {"characters": [{"name": "Ann Lee"}, {"name": "Bo Chen"}], "protagonist": "Ann Lee",
              "patterns": ["loss_aversion"], "pattern_names": ["loss aversion"]}
    ex = dspy.Example(record=record, checks={}, turn_range=(2, 2))  # no checklist: no judge call, judge half 0

    def said(words: str) -> dspy.Prediction:
        return dspy.Prediction(turns=[{"char": "Bo Chen", "content": "[hm] (waves) Hi."},
                                      {"char": "Ann Lee", "content": f"[fine] {words}"}])

    assert metric(ex, said("Let us wait and see.")) == 0.5
    assert metric(ex, said("Everyone bought one, so I will: the bandwagon effect.")) == 0.0
    assert metric(ex, said("That is just my loss aversion.")) == 0.0
    assert metric(ex, said("That is just my loss aversion."), trace=[]) is False


def test_registries_agree_with_the_cli_choices(capsys):
    from humanllm_dsl.cli import build_parser

    args = build_parser().parse_args(["optimize", "judge", "build", "-o", "out"])
    assert args.target in O.TARGET_REGISTRY and args.optimizer in O.OPTIMIZER_REGISTRY
    for name in O.TARGET_REGISTRY:
        assert build_parser().parse_args(["optimize", name, "build", "-o", "out"]).target == name
    for name in O.OPTIMIZER_REGISTRY:
        assert build_parser().parse_args(["optimize", "judge", "build", "-o", "out", "--optimizer", name]).optimizer == name
    with pytest.raises(SystemExit):
        build_parser().parse_args(["optimize", "oracle", "build", "-o", "out"])
    assert set(O.OPTIMIZER_REGISTRY) == set(O.COMPILE_ARGS)


@pytest.mark.parametrize("name, cls", [("mipro", dspy.MIPROv2), ("gepa", dspy.GEPA), ("bootstrap", dspy.BootstrapFewShot)])
def test_every_optimizer_builds(name, cls):
    o = O.OptimizeOptions(target="judge", build=None, out=None)
    reflection = dspy.LM("test/demo-judge", engine=DemoFollowingJudge(), cache=False)
    assert isinstance(O.OPTIMIZER_REGISTRY[name](O.judge_agreement, o, reflection, reflection), cls)


def test_split_examples_is_seeded_and_disjoint():
    xs = list(range(10))
    train, val = O.split_examples(xs, 0.3, seed=4)
    assert (train, val) == O.split_examples(xs, 0.3, seed=4)
    assert len(val) == 3 and sorted(train + val) == xs


# ---- saved programs ---------------------------------------------------------------------------
def test_save_and_load_keep_demos_and_instructions(tmp_path):
    judge = P.ChecklistJudge()
    judge.predict.demos = [dspy.Example(character="A", transcript="t", items=["x"], feedback="",
                                        verdicts=[P.Verdict(item=1, score=-1, evidence="e")])]
    judge.predict.signature = judge.predict.signature.with_instructions("Judge strictly.")
    save_program(judge, "judge", tmp_path / "j", extra={"note": 1})
    meta = json.loads((tmp_path / "j" / "meta.json").read_text())
    assert meta["program"] == "judge" and meta["class"] == "ChecklistJudge" and meta["note"] == 1
    name, loaded = load_program(tmp_path / "j")
    assert name == "judge" and isinstance(loaded, P.ChecklistJudge)
    assert loaded.predict.signature.instructions == "Judge strictly."
    assert loaded.predict.demos[0]["verdicts"][0]["score"] == -1


@pytest.mark.parametrize("name", ["scenario", "conversation", "checklist", "variation", "judge", "holistic"])
def test_every_program_round_trips(tmp_path, name):
    from humanllm_dsl.compiler.saved_programs import program_class

    save_program(program_class(name)(), name, tmp_path / name)
    got, module = load_program(tmp_path / name)
    assert got == name and isinstance(module, program_class(name))


def test_load_errors(tmp_path):
    with pytest.raises(SavedProgramError, match="no such folder"):
        load_program(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SavedProgramError, match="meta.json: missing"):
        load_program(tmp_path / "empty")
    save_program(P.HolisticJudge(), "holistic", tmp_path / "h")
    with pytest.raises(SavedProgramError, match="holds the `holistic` program; expected `judge`"):
        load_program(tmp_path / "h", expect="judge")
    (tmp_path / "h" / "meta.json").write_text('{"program": "oracle"}')
    with pytest.raises(SavedProgramError, match="unknown program `oracle`"):
        load_program(tmp_path / "h")
    (tmp_path / "h" / "meta.json").write_text("{not json")
    with pytest.raises(SavedProgramError, match="not valid JSON"):
        load_program(tmp_path / "h")
    (tmp_path / "h" / "meta.json").write_text('{"program": "holistic"}')
    (tmp_path / "h" / "program.json").unlink()
    with pytest.raises(SavedProgramError, match="program.json: missing"):
        load_program(tmp_path / "h")
    with pytest.raises(SavedProgramError, match="cannot save a HolisticJudge as program `judge`"):
        save_program(P.HolisticJudge(), "judge", tmp_path / "x")
