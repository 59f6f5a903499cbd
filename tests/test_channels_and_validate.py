"""Turn channels and record validators, on adversarial turns."""

import re

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


def test_valid_conversation_passes(vocab):
    assert conversation_problems(turns("Bo Chen", "Ann Lee") * 6, SCENARIO, (12, 20), vocab) == []


def test_conversation_rules(vocab):
    problems = conversation_problems(turns("Ann Lee", "Bo Chen", "Bo Chen"), SCENARIO, (12, 20), vocab)
    text = " | ".join(problems)
    assert "3 turns" in text
    assert "speaks twice in a row" in text
    assert "supporting character must open" in text
    assert "must speak last" in text


def test_exact_speaker_names_only(vocab):
    bad = turns("Bo Chen", "Ann", "Bo Chen", "Ann Lee")  # a first name is not the character
    assert any("`Ann` is not a character" in p for p in conversation_problems(bad, SCENARIO, (4, 4), vocab))


def test_missing_thought_and_pattern_names_are_caught(vocab):
    ts = [{"char": "Bo Chen", "content": "(waves) hi"},
          {"char": "Ann Lee", "content": "[ok] That is just my loss aversion talking."}]
    problems = conversation_problems(ts, SCENARIO, (2, 2), vocab)
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


# ---- segments: order and separation survive ---------------------------------------------------
from hypothesis import given
from hypothesis import strategies as st

from humanllm_dsl.runtime.channels import segments
from humanllm_dsl.runtime.validate import Vocabulary, feedback_for, key_terms, variation_problems


def test_speech_around_an_action_keeps_its_order():
    assert visible("[She never listens.] Fine. (shrugs) Whatever you say.") == "Fine. (shrugs) Whatever you say."
    assert [(s.kind, s.text) for s in segments("Fine. (shrugs) Whatever you say.")] == [
        ("speech", "Fine."), ("action", "shrugs"), ("speech", "Whatever you say.")]


def test_two_actions_stay_two_actions():
    content = "[hm] (sets the cup down) (looks away) I said no."
    assert visible(content) == "(sets the cup down) (looks away) I said no."
    assert [s.kind for s in split_channels(content).segments] == ["thought", "action", "action", "speech"]


WORDS = st.text(alphabet="abc .,!?'-", min_size=0, max_size=12)


@st.composite
def flat_turns(draw):
    """Turns of bracketed pieces that never nest, the last possibly unclosed."""
    pieces = draw(st.lists(st.tuples(st.sampled_from("[(s"), WORDS), max_size=8))
    text = "".join(f"[{t}]" if k == "[" else f"({t})" if k == "(" else t for k, t in pieces)
    if draw(st.booleans()):
        text += draw(st.sampled_from("[(")) + draw(WORDS)
    return text


def _norm(text: str) -> str:
    return " ".join(text.split())


@given(flat_turns())
def test_removing_thoughts_changes_nothing_else(content):
    assert visible(content) == _norm(re.sub(r"\[[^\[\]()]*(?:\]|$)", " ", content))


def _merged(segs) -> list[tuple[str, str]]:
    """Segments with adjacent speech joined (removing a thought between two speeches joins them)."""
    out = []
    for s in segs:
        if out and s.kind == "speech" and out[-1][0] == "speech":
            out[-1] = ("speech", out[-1][1] + " " + s.text)
        else:
            out.append((s.kind, s.text))
    return out


@given(st.text(alphabet="ab [](). ", max_size=40))
def test_visible_is_the_turn_minus_its_thoughts_in_order(content):
    seen = visible(content)
    assert visible(seen) == seen  # nothing left to remove
    assert _merged(segments(seen)) == _merged([s for s in segments(content) if s.kind != "thought"])


@given(st.lists(st.tuples(st.sampled_from(["thought", "action", "speech"]),
                          st.text(alphabet="abc .!", min_size=1, max_size=10).filter(str.strip)), max_size=8))
def test_segments_round_trip(parts):
    merged = []  # adjacent speech is one segment
    for kind, text in parts:
        if merged and kind == "speech" and merged[-1][0] == "speech":
            merged[-1] = ("speech", merged[-1][1] + " " + text)
        else:
            merged.append((kind, text))
    content = " ".join(f"[{t}]" if k == "thought" else f"({t})" if k == "action" else t for k, t in merged)
    assert [(s.kind, s.text) for s in segments(content)] == [(k, _norm(t)) for k, t in merged]
    assert visible(content) == _norm(" ".join(f"({t})" if k == "action" else t for k, t in merged if k != "thought"))


# ---- pattern names and trait labels ----------------------------------------------------------
@pytest.fixture(scope="module")
def library():
    from humanllm_dsl.compiler.loader import load

    return load("specs")


@pytest.fixture(scope="module")
def vocab(library):
    return Vocabulary.of(library.patterns)


EVERYDAY = [  # ordinary sentences no validator may refuse
    "I stood there in awe of the view.", "A flash of jealousy, then nothing.", "It's not a zero-sum game, Priya.",
    "We keep the status quo until Monday.", "Let's drop anchor here.", "He jumped on the bandwagon early.",
    "That sounds self-serving.", "I'm so nervous!", "I'm cold, can we go in?", "She is nervous about the audit.",
    "He is critical of the plan.", "Bo is kind of tired.", "Ann's quiet house was empty.", "It is cold outside.",
    "I took a sadistic pleasure in beating him at chess.", "There's zero risk in asking.",
    "Less is better, my mother used to say.", "The halo on the streetlight.", "Her framing of the question was odd.",
]


@pytest.mark.parametrize("text", EVERYDAY)
def test_everyday_sentences_pass(vocab, text):
    assert vocab.problems("text", text, ["Ann Lee", "Bo Chen"], profile=False) == []


@pytest.mark.parametrize("text, term", [
    ("Automation bias is in the air.", "Automation bias"),
    ("[Classic sunk-cost thinking, but I can't stop now.]", "sunk-cost"),
    ("I keep anchoring on that first number.", "anchoring"),
    ("Confirmation biases everywhere!", "Confirmation biases"),
    ("That's the sunk_cost_fallacy talking.", "sunk_cost_fallacy"),
    ("pure cognitive dissonance", "cognitive dissonance"),
    ("kin selection and inclusive fitness at work", "kin selection and inclusive fitness"),
    ("the Halo-Effect again", "Halo-Effect"),
    ("a textbook case of groupthink", "groupthink"),
])
def test_pattern_names_ids_and_key_terms_are_refused(vocab, text, term):
    assert term in vocab.pattern_terms(text)


def test_every_social_cognitive_pattern_is_covered_or_an_everyday_word(library):
    """A pattern with no refused term must be a one-word everyday name (documented in
    docs/validation.md); every underscore id is refused as written."""
    uncovered = sorted(p.name for p in library.patterns if p.family != "trait" and not key_terms(p))
    assert uncovered == ["awe", "conformity", "conservatism", "jealousy", "stereotyping"]
    vocab = Vocabulary.of(library.patterns)
    for p in library.patterns:
        if p.family != "trait" and "_" in p.id:
            assert vocab.pattern_terms(f"a case of {p.id} here") == [p.id]


def test_no_key_term_is_a_single_common_word(vocab):
    singles = sorted(t for t in vocab.terms if len(re.split(r"[\s_-]+", t)) == 1)
    assert singles == ["anchoring", "anthropomorphism", "groupthink", "reactance", "territoriality"]


@pytest.mark.parametrize("text, profile", [
    ("I'm so talkative, everyone says so.", False), ("he's a very anxious person", False),
    ("I am always anxious.", False), ("She is rude.", True), ("Bo has always been shy.", True),
    ("Ann is warm and generous.", True), ("Ann is a quiet neighbour.", True), ("I'm such a shy person.", False),
])
def test_trait_words_that_label_a_character_are_refused(vocab, text, profile):
    assert vocab.trait_labels(text, ["Ann Lee", "Bo Chen"], profile=profile)


def test_scenario_refuses_pattern_names_and_labels_in_background_and_profiles(vocab):
    slot = Slot("s1", "train", ("a", "b"), (), "duty", "home", 2)
    good = {**SCENARIO, "background": "A rainy night in the office."}
    assert scenario_problems(good, slot, ["Ann Lee", "Bo Chen"], vocab) == []
    bad = {**good, "background": "Automation bias is in the air.",
           "characters": [{"name": "Ann Lee", "about_self": "Ann is rude.", "about_others": {"Bo Chen": "She is warm."}},
                          {"name": "Bo Chen", "about_self": "He watches for confirmation bias in others."}]}
    text = " | ".join(scenario_problems(bad, slot, ["Ann Lee", "Bo Chen"], vocab))
    assert "the background names the pattern `Automation bias`" in text
    assert "Ann Lee's about_self labels" in text and "Ann Lee's view of Bo Chen labels" in text
    assert "Bo Chen's about_self names the pattern `confirmation bias`" in text


def test_turns_refuse_pattern_names_in_every_channel(vocab):
    ts = [{"char": "Bo Chen", "content": "[That's the sunk cost talking.] (nods) Yes."},
          {"char": "Ann Lee", "content": "[ok] (mimes anchoring a boat) I'm so talkative, sorry."}]
    text = " | ".join(conversation_problems(ts, SCENARIO, (2, 2), vocab))
    assert "turn 1 (thought) names the pattern `sunk cost`" in text
    assert "turn 2 (action) names the pattern `anchoring`" in text
    assert "turn 2 (speech) labels a character" in text


def test_checklist_and_variation_refuse_pattern_names(vocab):
    checklist = {"Ann Lee": ["Does Ann show loss aversion?", "Does Ann hesitate?"], "Bo Chen": ["q", "r"]}
    assert any("names the pattern `loss aversion`" in p for p in checklist_problems(checklist, SCENARIO, vocab))
    out = {"changed_factors": ["a deadline"], "analysis": "Loss aversion shows more sharply.",
           "varied_background": "The halo effect of the new boss colours the room.",
           "varied_checklist": {"Ann Lee": ["Does Ann hesitate?", "Does Ann stall?"], "Bo Chen": ["q", "r"]}}
    problems = variation_problems(out, SCENARIO, vocab)
    assert problems == ["the varied background names the pattern `halo effect`: show it in what people think, "
                        "do and say, never by name"]  # the analysis is the designer's note


def test_feedback_names_the_attempt_and_speaks_the_models_terms():
    from humanllm_dsl.compiler.programs import WriteScenarioChecklist
    from humanllm_dsl.runtime.adapter import FastChatAdapter, AnswerProblem

    with pytest.raises(AnswerProblem) as info:
        FastChatAdapter().parse(WriteScenarioChecklist, "Sorry, I cannot.")
    first, second = feedback_for(info.value, 0), feedback_for(info.value, 1)
    assert first != second and "attempt 2" in first and "attempt 3" in second
    for text in (first, second):
        assert "[[ ## checklist ## ]]" in text and "[[ ## completed ## ]]" in text
        assert "Adapter" not in text and "LM Response" not in text and "pydantic" not in text.lower()
    cut = feedback_for(["the answer was cut off at the token limit (finish_reason=length); answer more briefly"], 0)
    assert "finish_reason" not in cut and "before [[ ## completed ## ]]" in cut


def test_a_pattern_name_with_an_apostrophe_or_digits_is_still_found():
    from types import SimpleNamespace

    from humanllm_dsl.runtime.validate import Vocabulary

    vocabulary = Vocabulary.of([
        SimpleNamespace(id="parkinsons_law", name="Parkinson's Law", family="social_cognitive"),
        SimpleNamespace(id="rule_of_72", name="Rule of 72 heuristic", family="social_cognitive")])
    assert vocabulary.pattern_terms("It is just Parkinson's law at work.") == ["Parkinson's law"]
    assert vocabulary.pattern_terms("the rule of 72 heuristics again") == ["rule of 72 heuristics"]
    assert vocabulary.pattern_terms("a law of the land") == []
