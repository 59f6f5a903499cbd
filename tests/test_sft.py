"""The SFT export on hand-made records: thought stripping, role order, speaker exactness, windows."""

from humanllm_dsl.runtime import sft

RECORD = {
    "id": "d-00001", "split": "train", "background": "A kitchen at night.",
    "characters": [
        {"name": "Ann Lee", "about_self": "Ann is a nurse.", "about_others": {"Ann Leeson": "Her cousin."}},
        {"name": "Ann Leeson", "about_self": "The cousin.", "about_others": {"Ann Lee": "Bossy."}},
        {"name": "Bo Chen", "about_self": "A neighbour.", "about_others": {}},
    ],
    "protagonist": "Ann Lee", "char2pattern": {"Ann Lee": ["loss_aversion"]},
    "conversation": [
        {"char": "Ann Leeson", "content": "[She will say no] (sits) Can we talk?"},
        {"char": "Bo Chen", "content": "[awkward] Should I leave?"},
        {"char": "Ann Lee", "content": "[I cannot lose this] (grips the cup) Stay, Bo."},
        {"char": "Ann Leeson", "content": "[here we go] Fine."},
        {"char": "Ann Lee", "content": "[careful] Let's decide now."},
    ],
}


def test_messages_for_protagonist():
    msgs = sft.messages_for(RECORD, "Ann Lee")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant"]
    assert "Ann Lee" in msgs[0]["content"] and "loss" not in msgs[0]["content"].lower()
    assert msgs[1]["content"] == "Ann Leeson: (sits) Can we talk?\nBo Chen: Should I leave?"
    assert "She will say no" not in msgs[1]["content"] and "awkward" not in msgs[1]["content"]
    assert msgs[2]["content"] == "[I cannot lose this] (grips the cup) Stay, Bo."
    assert msgs[3]["content"] == "Ann Leeson: Fine."


def test_speaker_exactness_no_name_prefix_confusion():
    leeson = sft.messages_for(RECORD, "Ann Leeson")
    own = [m["content"] for m in leeson if m["role"] == "assistant"]
    assert own == ["[She will say no] (sits) Can we talk?", "[here we go] Fine."]
    assert leeson[1]["content"] == sft.SCENE_START  # she opens the scene


def test_one_sample_per_speaking_character_and_sharegpt():
    samples = sft.samples(RECORD)
    assert sorted(s["character"] for s in samples) == ["Ann Lee", "Ann Leeson", "Bo Chen"]
    share = sft.to_sharegpt(samples[0])
    assert [t["from"] for t in share["conversations"]][:2] == ["human", "gpt"]
    assert share["conversations"][-1]["from"] == "gpt"


def test_windows_keep_system_and_pairs():
    msgs = sft.messages_for(RECORD, "Ann Lee")
    parts = sft.windows(msgs, max_tokens=sft.approx_tokens(msgs[0]["content"]) + 20)
    assert len(parts) == 2
    for part in parts:
        assert part[0]["role"] == "system" and part[-1]["role"] == "assistant"
    assert sft.windows(msgs, None) == [msgs]
