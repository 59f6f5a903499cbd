"""Rollouts: a generated turn loses a leading `Name:` and any <think> block before anyone sees it,
and a thinking model gets room to think on top of the visible turn's cap."""

from types import SimpleNamespace

import pytest

from humanllm_dsl.evaluate.data import Sample
from humanllm_dsl.evaluate.lms import chat
from humanllm_dsl.evaluate.rollout import clean_turn, rollout, transcript


@pytest.mark.parametrize("raw, clean", [
    ("Priya Petrov: Priya Petrov: [Not again.] (sighs) Fine.", "[Not again.] (sighs) Fine."),
    ("**Priya Petrov:** [hm] ok", "[hm] ok"),
    ("**Priya Petrov**: ok", "ok"),
    ("Priya: [hm] ok", "[hm] ok"),
    ("<think>What would Priya do?</think>\n\nPriya Petrov: [hm] (nods) Yes.", "[hm] (nods) Yes."),
    ("I kept thinking.\n</think>\n[hm] Yes.", "[hm] Yes."),
    ("<think>never closed, cut off here", ""),
    ("[Priya Petrov: that is my name.] Yes.", "[Priya Petrov: that is my name.] Yes."),
    ("Ravi: Priya, listen.", "Ravi: Priya, listen."),
])
def test_clean_turn(raw, clean):
    assert clean_turn(raw, "Priya Petrov") == clean


class ThinkingLM:
    """Answers like a thinking model: 400 tokens of thought, then the turn."""

    model = "fake/thinker"

    def __init__(self):
        self.caps = []

    def __call__(self, request, **kwargs):
        cap = request.config.max_tokens
        self.caps.append(cap)
        text = "<think>" + "hmm " * 50 + "</think>\nPriya Petrov: [I doubt it.] (shrugs) Fine."
        cut = cap is not None and cap < 400
        return SimpleNamespace(text=text[:60] if cut else text, finish_reason="length" if cut else "stop",
                               message=SimpleNamespace(parts=()))


def test_a_thinking_model_gets_room_to_think():
    lm = ThinkingLM()
    reply = chat(lm, "You are Priya Petrov. ", [{"role": "user", "content": "Ravi: hi"}], max_tokens=300,
                 think_tokens=1000)
    assert lm.caps == [300, 1300]
    assert reply.thinking and not reply.truncated and reply.text.endswith("Fine.")


def test_rollout_turns_are_clean_and_later_turns_start_with_room():
    record = {"id": "r1", "split": "train", "background": "A kitchen.", "char2pattern": {"Priya Petrov": ["x"]},
              "characters": [{"name": "Priya Petrov", "about_self": "a", "about_others": {}},
                             {"name": "Ravi Rao", "about_self": "b", "about_others": {}}],
              "conversation": [{"char": "Ravi Rao", "content": "[hm] (waves) Hi."},
                               {"char": "Priya Petrov", "content": "[x] Hello."},
                               {"char": "Ravi Rao", "content": "[hm] Tea?"},
                               {"char": "Priya Petrov", "content": "[x] No."}]}
    lm = ThinkingLM()
    row = rollout(Sample("r1/Priya Petrov", record, "Priya Petrov", ("x",), ()), lm, max_tokens=300,
                  think_tokens=1000)
    own = [t for t in row["turns"] if t["generated"]]
    assert [t["content"] for t in own] == ["[I doubt it.] (shrugs) Fine."] * 2
    assert all(t["raw"].startswith("<think>") for t in own)
    assert lm.caps == [300, 1300, 1300]  # once seen thinking, the room is there from the start
    text = transcript(row["turns"], "Ravi Rao")
    assert "Priya Petrov: (shrugs) Fine." in text and "think" not in text and "Priya Petrov: Priya" not in text
