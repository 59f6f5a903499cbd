"""Turn channels and record validators, on adversarial turns."""

import pytest

from humanllm_dsl.compiler.plan import Slot
from humanllm_dsl.runtime.channels import split_channels, visible
from humanllm_dsl.runtime.validate import checklist_problems, conversation_problems, scenario_problems


@pytest.mark.parametrize("content, thought, action, speech", [
    ("[I doubt it] (shrugs) Fine.", "I doubt it", "shrugs", "Fine."),
    ("Just words.", "", "", "Just words."),
    ("[only a thought]", "only a thought", "", ""),
    ("(sighs) [nested (inside) thought] Well", "nested (inside) thought", "sighs", "Well"),
    ("[thought with [inner] brackets] ok", "thought with [inner] brackets", "", "ok"),
    ("Stray ] and ) here", "", "", "Stray ] and ) here"),
    ("[never closed thought and more", "never closed thought and more", "", ""),
    ("[a] one [b] two (c)", "a b", "c", "one two"),
    ("", "", "", ""),
])
def test_split_channels(content, thought, action, speech):
    ch = split_channels(content)
    assert (ch.thought, ch.action, ch.speech) == (thought, action, speech)


def test_visible_drops_thoughts():
    assert visible("[secret plan] (smiles) Hello there.") == "(smiles) Hello there."
    assert "secret" not in visible("[secret] [more secret] hi")


SCENARIO = {"characters": [{"name": "Ann Lee", "about_self": "x"}, {"name": "Bo Chen", "about_self": "y"}],
            "protagonist": "Ann Lee", "char2pattern": {"Ann Lee": ["a"], "Bo Chen": ["b"]}}


def turns(*speakers):
    return [{"char": s, "content": "[hm] (nods) Yes."} for s in speakers]


def test_valid_conversation_passes():
    assert conversation_problems(turns("Bo Chen", "Ann Lee") * 6, SCENARIO, (12, 20), ["loss aversion"]) == []


def test_conversation_rules():
    problems = conversation_problems(turns("Ann Lee", "Bo Chen", "Bo Chen"), SCENARIO, (12, 20), [])
    text = " | ".join(problems)
    assert "3 turns" in text
    assert "speaks twice in a row" in text
    assert "supporting character must open" in text
    assert "must speak last" in text


def test_exact_speaker_names_only():
    bad = turns("Bo Chen", "Ann", "Bo Chen", "Ann Lee")  # a first name is not the character
    assert any("`Ann` is not a character" in p for p in conversation_problems(bad, SCENARIO, (4, 4), []))


def test_missing_thought_and_pattern_names_are_caught():
    ts = [{"char": "Bo Chen", "content": "(waves) hi"},
          {"char": "Ann Lee", "content": "[ok] That is just my loss aversion talking."}]
    problems = conversation_problems(ts, SCENARIO, (2, 2), ["loss aversion"])
    assert any("no [inner thought]" in p for p in problems)
    assert any("names the pattern" in p for p in problems)


def test_scenario_validator():
    slot = Slot("s1", "train", ("a", "b"), (), "duty", "home", 2)
    good = {**SCENARIO, "background": "bg"}
    assert scenario_problems(good, slot, ["Ann Lee", "Bo Chen", "Cy Dee"]) == []
    bad = {**good, "char2pattern": {"Ann Lee": ["a", "zzz"], "Nobody": ["b"]}, "protagonist": "Ann"}
    text = " | ".join(scenario_problems(bad, slot, ["Ann Lee", "Bo Chen"]))
    assert "zzz" in text and "Nobody" in text and "protagonist `Ann`" in text


def test_checklist_sizes():
    assert checklist_problems({"Ann Lee": ["q1", "q2"], "Bo Chen": ["q", "r", "s"]}, SCENARIO) == []
    problems = checklist_problems({"Ann Lee": ["q1"], "Zed": ["q", "r"]}, SCENARIO)
    text = " | ".join(problems)
    assert "1 checklist items" in text and "no checklist for Bo Chen" in text and "`Zed`" in text
