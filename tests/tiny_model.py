"""A tiny causal LM built on the spot, for tests: nothing is downloaded.

`build_tiny_model(path)` trains a byte-level BPE tokenizer on a fixed corpus (plus any texts
you pass), builds a 2-layer Qwen3-architecture model with random weights (seeded), gives the
tokenizer a ChatML chat template with `{% generation %}` markers, and saves both with
`save_pretrained`, so `AutoModelForCausalLM.from_pretrained(path)` and
`AutoTokenizer.from_pretrained(path)` load it offline. Deterministic and fast (about a second).

    from tests.tiny_model import build_tiny_model
    model_dir = build_tiny_model(tmp_path / "tiny")
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

# ChatML, as Qwen models use it, with generation markers around what the assistant writes
# (its text and the closing <|im_end|>), so `return_assistant_tokens_mask` works.
from humanllm_dsl.train.template import CHATML_TRAINING_TEMPLATE as CHAT_TEMPLATE

IM_START, IM_END, PAD = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
SPECIAL_TOKENS = (PAD, IM_START, IM_END)

_WORDS = ("the a an she he they we you I it is was are be not and but so because then now here there "
          "this that what who how why when if or of to in on at for with about from as by my your his her "
          "their our me him them said says ask asks look looks smile smiles sigh sighs frown frowns nod nods "
          "shrug shrugs wait waits turn turns lean leans laugh laughs pause pauses fold folds arms tap taps "
          "think know feel want need should could would will can never always maybe really just only still "
          "friend mother father brother sister doctor teacher neighbour manager partner kitchen office home "
          "room table door window cup phone letter money plan time night morning evening late again today "
          "worried calm angry happy sad afraid sure certain tired careful honest quiet hard read something "
          "matters settle have has had do does did going take make tell see seen hear heard let fine moment "
          "differently instead remember stake honest breath notes neck eyebrow down up out back over").split()
_LINES = ("You are Name Surname. Stay in character for the whole conversation.",
          "# Who you are", "# How you see the others", "# The scene", "# How to answer",
          "Reply as Name Surname only, one turn at a time. Mix three channels in every turn: your private "
          "thoughts in square brackets [like this], which the others cannot hear; visible actions or "
          "expressions in parentheses (like this); and what you say aloud as plain text.",
          "(The scene begins.)", "(says nothing)")


def corpus(extra: Iterable[str] = ()) -> list[str]:
    """A fixed, seeded corpus in the three-channel style, plus `extra` texts."""
    import random

    rng = random.Random(0)
    words = lambda n: " ".join(rng.choice(_WORDS) for _ in range(n))  # noqa: E731
    lines = list(_LINES) * 20
    for _ in range(600):
        lines.append(f"[{words(6).capitalize()}.] ({words(4)}) {words(10).capitalize()}? {words(8)}.")
        lines.append(f"Name Surname: {words(12).capitalize()}, {words(5)}!")
    lines.extend(extra)
    return lines


def build_tokenizer(texts: Iterable[str] = (), vocab_size: int = 1024):
    """A byte-level BPE `PreTrainedTokenizerFast` with Qwen-style special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(texts), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=IM_END, pad_token=PAD,
                                   additional_special_tokens=[IM_START], chat_template=CHAT_TEMPLATE,
                                   model_max_length=4096)


def build_tiny_model(path: Path, *, texts: Iterable[str] = (), hidden_size: int = 64,
                     layers: int = 2, seed: int = 0) -> Path:
    """Build and save a tiny Qwen3 model and tokenizer under `path`; return `path`."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen3Config

    path = Path(path)
    tokenizer = build_tokenizer(texts)
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2, head_dim=hidden_size // 4,
        max_position_embeddings=4096, tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id, do_sample=False)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
