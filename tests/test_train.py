"""`humanllm train` on CPU with a tiny Qwen3 model built on the spot (tests/tiny_model.py).

One pilot dataset and one tiny model are made per session; each training run is a few dozen
steps at most with short sequences.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from humanllm_dsl.cli import main
from humanllm_dsl.train import config as c
from humanllm_dsl.train import data as d

pytest.importorskip("trl")  # the `train` extra; the test script installs it

from tests.tiny_model import IM_END, build_tiny_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--max-length", "768", "--batch-size", "4", "--grad-accum", "1", "--no-progress"]


@pytest.fixture(scope="session", autouse=True)
def _offline(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    yield
    mp.undo()


@pytest.fixture(scope="session")
def pilot(tmp_path_factory, _offline) -> Path:
    out = tmp_path_factory.mktemp("pilot") / "build"
    assert main(["compile", str(ROOT / "specs"), "-o", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, _offline) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def log_rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def generate(path: Path, messages: list[dict]) -> tuple[int, int]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**enc, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    return enc["input_ids"].shape[1], out.shape[1]


# ---- training end to end --------------------------------------------------------------------
def test_loss_goes_down_and_the_model_reloads_and_generates(pilot, tiny, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", str(pilot), "--model", str(tiny), "-o", str(out), "--max-steps", "30", "--lr", "3e-3",
               "--logging-steps", "5", "--eval-steps", "15", "--save-steps", "15", *FAST])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "step 30/30" in printed and "eval loss: id_eval" in printed
    rows = log_rows(out)
    train = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 5, 10, 15, 20, 25, 30]
    assert train[-1]["loss"] < train[0]["loss"] - 1.0
    evals = [r for r in rows if r["kind"] == "eval"]
    assert {r["step"] for r in evals} == {15, 30}
    keys = {k for r in evals for k in r}
    assert {"id_eval_loss", "ood_eval_loss", "mixed_eval_loss"} <= keys
    first = {k: v for r in evals if r["step"] == 15 for k, v in r.items()}
    last = {k: v for r in evals if r["step"] == 30 for k, v in r.items()}
    assert last["id_eval_loss"] < first["id_eval_loss"]
    assert rows[-1]["kind"] == "summary" and rows[-1]["step"] == 30
    # the saved model: its tokenizer keeps the training template, it reloads and generates
    assert (out / "model.safetensors").is_file() and (out / "checkpoint-30").is_dir()
    sample = json.loads((pilot / "sft" / "messages_id_eval.jsonl").read_text().splitlines()[0])
    prompt_len, total = generate(out, sample["messages"][:2])
    assert total == prompt_len + 8
    saved = c.read_file(out / c.CONFIG_NAME)
    assert saved["max_steps"] == 30 and saved["lr"] == 3e-3 and saved["model"] == str(tiny.resolve())


def test_config_file_replays_a_run(pilot, tiny, tmp_path):
    first = tmp_path / "a"
    assert main(["train", str(pilot), "--model", str(tiny), "-o", str(first), "--max-steps", "2",
                 "--eval-steps", "0", "--lr", "1e-3", *FAST]) == 0
    second = tmp_path / "b"
    assert main(["train", "--config", str(first / c.CONFIG_NAME), "-o", str(second)]) == 0
    a, b = c.read_file(first / c.CONFIG_NAME), c.read_file(second / c.CONFIG_NAME)
    assert {k: v for k, v in a.items() if k != "out"} == {k: v for k, v in b.items() if k != "out"}
    loss = lambda out: [r["loss"] for r in log_rows(out) if r["kind"] == "train"]  # noqa: E731
    assert loss(first) == pytest.approx(loss(second))  # same seed, same data, same steps
    # eval_steps 0: evaluation only at the end
    assert [r["step"] for r in log_rows(first) if r["kind"] == "eval"] == [2, 2, 2]  # id, ood, mixed


def test_lora_with_merge_saves_adapter_and_a_plain_merged_model(pilot, tiny, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "lora"
    assert main(["train", str(pilot), "--model", str(tiny), "-o", str(out), "--max-steps", "4", "--lora",
                 "--lora-r", "4", "--lora-alpha", "8", "--lora-targets", "q_proj,v_proj", "--merge",
                 "--lr", "5e-2", "--eval-steps", "0", *FAST]) == 0
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and set(adapter["target_modules"]) == {"q_proj", "v_proj"}
    merged, base = load_file(out / "model.safetensors"), load_file(tiny / "model.safetensors")
    assert not any("lora" in k for k in merged)
    assert set(merged) == set(base)
    changed = {k for k in base if not (merged[k] == base[k]).all()}
    assert changed and all(k.endswith(("q_proj.weight", "v_proj.weight")) for k in changed)
    assert c.read_file(out / c.CONFIG_NAME)["lora"]["merge"] is True
    prompt_len, total = generate(out, [{"role": "user", "content": "Hello there."}])
    assert total == prompt_len + 8


def test_resume_continues_the_step_count(pilot, tiny, tmp_path, capsys):
    out = tmp_path / "r"
    common = ["train", str(pilot), "--model", str(tiny), "-o", str(out), "--save-steps", "3",
              "--logging-steps", "1", "--eval-steps", "0", *FAST]
    assert main([*common, "--max-steps", "6"]) == 0
    assert (out / "checkpoint-6").is_dir()
    before = len(log_rows(out))
    assert main([*common, "--max-steps", "9", "--resume"]) == 0
    new = [r for r in log_rows(out)[before:] if r["kind"] == "train"]
    assert [r["step"] for r in new] == [7, 8, 9]
    state = json.loads((out / "checkpoint-9" / "trainer_state.json").read_text())
    assert state["global_step"] == 9
    capsys.readouterr()
    assert main(["train", str(pilot), "--model", str(tiny), "-o", str(tmp_path / "none"), "--resume", *FAST]) == 2
    assert "no checkpoint-* folder" in capsys.readouterr().err


def test_packing_with_a_mixed_in_sharegpt_source(pilot, tiny, tmp_path, capsys):
    extra = tmp_path / "roleplay.jsonl"
    rows = [{"system": "You are a pirate.", "conversations": [
        {"from": "human", "value": f"Question {k}?"}, {"from": "gpt", "value": f"Arr, answer {k}."}]} for k in range(10)]
    extra.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "p"
    assert main(["train", str(pilot), "--model", str(tiny), "-o", str(out), "--max-steps", "3", "--packing",
                 "--mix", f"{extra}:0.5", "--eval-steps", "0", "--logging-steps", "1", *FAST]) == 0
    assert [r["step"] for r in log_rows(out) if r["kind"] == "train"] == [1, 2, 3]
    setup = re.search(r"train: (\d+) sequences after tokenising \(humanllm (\d+) of \d+ \(weight 1\), "
                      rf"{re.escape(str(extra))} (\d+) of 10 \(weight 0.5\)\)", capsys.readouterr().out)
    assert setup, "the setup line names the mix"
    sequences, humanllm, roleplay = map(int, setup.groups())
    assert roleplay == round(humanllm * 0.5)
    assert sequences < humanllm + roleplay // 2  # packed: the short ShareGPT samples share sequences


# ---- loss only on the trained character's turns, token by token -----------------------------
def _assistant_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of what each assistant turn writes: its text and its <|im_end|>."""
    pattern = re.compile(r"<\|im_start\|>assistant\n(.*?(?:<\|im_end\|>|\Z))", re.S)
    return [m.span(1) for m in pattern.finditer(text)]


def test_only_assistant_tokens_are_trained(pilot, tiny, tmp_path):
    from humanllm_dsl.train.trainer import build

    cfg = c.TrainConfig(build_dir=str(pilot), model=str(tiny), out=str(tmp_path / "m"), max_length=768,
                        eval_steps=0)
    setup = build(cfg, console=False)
    tok = setup.tokenizer
    for example in setup.trainer.train_dataset.select(range(12)):
        ids, labels = example["input_ids"], example["labels"]
        text = tok.decode(ids)
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        assert enc["input_ids"] == ids  # the decoded text tokenises back to the same tokens
        spans = _assistant_spans(text)
        assert spans
        trained_somewhere = False
        for tid, label, (start, end) in zip(ids, labels, enc["offset_mapping"], strict=True):
            inside = any(s <= start and end <= e for s, e in spans)
            assert (label != -100) == inside, f"token {tok.decode([tid])!r} at {start}: label {label}"
            if inside:
                assert label == tid
                trained_somewhere = True
        assert trained_somewhere
        # no system or user text is trained; the other characters' names only appear as context
        trained_text = tok.decode([t for t, lab in zip(ids, labels) if lab != -100])
        assert "<|im_start|>" not in trained_text and "# Who you are" not in trained_text


def test_template_masks_exactly_the_assistant_messages(tiny):
    from transformers import AutoTokenizer

    from humanllm_dsl.train.template import assistant_mask, training_template, verify

    tok = AutoTokenizer.from_pretrained(tiny)
    sample = [{"role": "system", "content": "You are Ann."}, {"role": "user", "content": "Bo: (sits) Hi."},
              {"role": "assistant", "content": "[tired] (nods) Hello, Bo."}, {"role": "user", "content": "Bo: Well?"},
              {"role": "assistant", "content": "[careful] Not now."}]
    template, source = training_template(tok)
    assert "own" in source
    verify(tok, template)
    ids, mask = assistant_mask(tok, sample, template)
    runs, current = [], []
    for t, k in zip(ids, mask):
        if k:
            current.append(t)
        elif current:
            runs.append(tok.decode(current))
            current = []
    assert runs == [f"[tired] (nods) Hello, Bo.{IM_END}", f"[careful] Not now.{IM_END}"]


def test_markers_are_added_where_the_template_lacks_them(tiny, tmp_path):
    from transformers import AutoTokenizer

    from humanllm_dsl.train.template import CHATML_TRAINING_TEMPLATE, TemplateError, training_template, verify

    tok = AutoTokenizer.from_pretrained(tiny)
    tok.chat_template = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + "
                         "'<|im_end|>\\n' }}{% endfor %}")
    template, source = training_template(tok)
    assert template == CHATML_TRAINING_TEMPLATE and "ChatML" in source
    verify(tok, template)
    # markers around the wrong text are caught
    wrong = CHATML_TRAINING_TEMPLATE.replace("{%- generation -%}", "").replace("{%- endgeneration -%}", "")
    wrong = wrong.replace("{{- '<|im_start|>' + message['role']",
                          "{%- generation -%}{{- '<|im_start|>' + message['role']", 1)
    wrong = wrong.replace("'<|im_end|>\\n' -}}{%- endif", "'<|im_end|>\\n' -}}{%- endgeneration -%}{%- endif", 1)
    with pytest.raises(TemplateError, match="system text"):
        verify(tok, wrong)
    # a tokenizer with neither markers nor ChatML tokens: a clear error
    tok2 = AutoTokenizer.from_pretrained(tiny)
    tok2.chat_template = None
    vocab = tok2.get_vocab()
    tok2.get_vocab = lambda: {k: v for k, v in vocab.items() if k != "<|im_start|>"}
    with pytest.raises(TemplateError, match="--chat-template"):
        training_template(tok2)
    # a --chat-template file that is missing, unreadable or without markers: errors naming it
    (tmp_path / "latin1.jinja").write_bytes(b"\xff{{ x }}")
    (tmp_path / "plain.jinja").write_text("{{ messages }}")
    for name, error in [("none.jinja", "no such file"), ("latin1.jinja", "cannot read"),
                        ("plain.jinja", "the template has no {% generation")]:
        with pytest.raises(TemplateError, match=f"--chat-template {tmp_path / name}: {re.escape(error)}"):
            training_template(tok, tmp_path / name)


# ---- configuration -------------------------------------------------------------------------
def test_config_round_trip_yaml_and_toml(tmp_path):
    cfg = c.TrainConfig(build_dir="b", model="m", out="o", lora=c.LoraSettings(r=8, merge=True),
                        mix=(c.MixSource("x.jsonl", 4.0),), packing=True, epochs=2)
    c.save(cfg, tmp_path / "t.yaml")
    back = c.structure(c.read_file(tmp_path / "t.yaml"))
    assert back.lora == cfg.lora and back.packing and back.epochs == 2 and back.lr == c.LORA_LR
    assert back.mix[0].weight == 4.0 and Path(back.mix[0].source).is_absolute()
    (tmp_path / "t.toml").write_text('build_dir = "b"\nmodel = "m"\nout = "o"\nmix = ["r.jsonl:4", "p:2"]\n'
                                     '[lora]\nr = 8\n')
    t = c.structure(c.read_file(tmp_path / "t.toml"))
    assert t.mix == (c.MixSource("r.jsonl", 4.0), c.MixSource("p", 2.0)) and t.lora.r == 8 and t.lora.alpha == 32
    assert t.learning_rate == c.LORA_LR and c.TrainConfig("b", "m", "o").learning_rate == c.FULL_LR


@pytest.mark.parametrize("text, message", [
    ("lerning_rate: 1\n", "unknown key `lerning_rate`"),
    ("epochs: -1\n", "`epochs` must be positive"),
    ("precision: fp8\n", "`precision` must be one of"),
    ("lora: {rank: 4}\n", "unknown key `rank` (did you mean `r`?)"),
    ("mix: [x.jsonl]\n", "expected SOURCE:WEIGHT"),
    ("batch_size: many\n", "batch_size"),
    ("epochs: [1\n", "not valid YAML"),
    ("model: \udcff\n", "cannot read"),  # a byte that is not UTF-8
])
def test_config_file_errors_name_the_key(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text("build_dir: b\nmodel: m\nout: o\n" + text, errors="surrogateescape")
    with pytest.raises(c.ConfigError) as err:
        c.structure(c.read_file(path), str(path))
    assert message in str(err.value) and str(path) in str(err.value)


def test_flags_override_the_config_file(tmp_path):
    from humanllm_dsl.cli import build_parser
    from humanllm_dsl.cli.train import resolve

    path = tmp_path / "c.yaml"
    path.write_text("build_dir: b\nmodel: m\nout: o\nepochs: 5\nlr: 0.1\nlora: {r: 8}\n")
    args = build_parser().parse_args(["train", "--config", str(path), "--lr", "0.5", "--lora-alpha", "64"])
    cfg = resolve(args)
    assert (cfg.epochs, cfg.lr, cfg.lora.r, cfg.lora.alpha) == (5, 0.5, 8, 64)
    args = build_parser().parse_args(["train", "b", "--model", "m", "-o", "o", "--merge"])
    with pytest.raises(c.ConfigError, match="--merge needs --lora"):
        resolve(args)


# ---- the mix ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, error", [("x.jsonl", "expected SOURCE:WEIGHT"), ("x.jsonl:abc", "not a number"),
                                         ("x.jsonl:0", "must be positive"), (":3", "expected SOURCE:WEIGHT")])
def test_mix_parsing_errors(text, error):
    with pytest.raises(c.ConfigError, match=error):
        c.MixSource.parse(text)


def test_mix_parsing_keeps_colons_in_the_source():
    assert c.MixSource.parse("C:/data/r.jsonl:2.5") == c.MixSource("C:/data/r.jsonl", 2.5)


def test_mix_weights_are_relative_shares():
    main_samples = [[{"role": "assistant", "content": f"h{k}"}] for k in range(40)]
    reasoning = [[{"role": "assistant", "content": f"r{k}"}] for k in range(100)]
    roleplay = [[{"role": "assistant", "content": f"p{k}"}] for k in range(7)]
    out, parts = d.mix(main_samples, 4, [("r", reasoning, 4), ("p", roleplay, 2)], seed=1)
    assert [(p.name, p.used) for p in parts] == [("humanllm", 40), ("r", 40), ("p", 20)]
    texts = [s[0]["content"] for s in out]
    assert len(out) == 100 and sum(t.startswith("h") for t in texts) == 40
    assert len({t for t in texts if t.startswith("r")}) == 40  # drawn without repetition
    assert {t for t in texts if t.startswith("p")} == {f"p{k}" for k in range(7)}  # 20 from 7: repeated
    assert d.mix(main_samples, 4, [("r", reasoning, 4)], seed=1)[0] == d.mix(main_samples, 4, [("r", reasoning, 4)], seed=1)[0]


def test_mix_sources_jsonl_json_and_save_to_disk(tmp_path):
    import datasets

    msgs = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]
    (tmp_path / "a.jsonl").write_text(json.dumps({"messages": msgs}) + "\n\n" + json.dumps({"messages": msgs}) + "\n")
    (tmp_path / "b.json").write_text(json.dumps([{"conversations": [{"from": "human", "value": "Q"},
                                                                    {"from": "gpt", "value": "A"}]}]))
    datasets.DatasetDict({"train": datasets.Dataset.from_list([{"messages": msgs}] * 3)}).save_to_disk(str(tmp_path / "hf"))
    assert d.load_source(str(tmp_path / "a.jsonl")) == [msgs, msgs]
    assert d.load_source(str(tmp_path / "b.json")) == [msgs]
    assert d.load_source(str(tmp_path / "hf")) == [msgs] * 3


@pytest.mark.parametrize("line, error", [
    ("{not json", ":2: not valid JSON"),
    ('{"id": "s7", "text": "hi"}', ":2 (record s7): no `messages`"),
    ('{"messages": [{"role": "user", "content": "only a question"}]}', ":2: no assistant message"),
    ('{"messages": [{"role": "narrator", "content": "x"}]}', "message 0 needs a `role`"),
    ('{"messages": [{"role": "assistant", "content": 3}]}', "has no text `content`"),
])
def test_bad_source_records_name_file_and_line(tmp_path, line, error):
    path = tmp_path / "s.jsonl"
    good = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
    path.write_text(json.dumps(good) + "\n" + line + "\n")
    with pytest.raises(d.DataError) as err:
        d.load_source(str(path))
    assert f"{path}" in str(err.value) and error in str(err.value)


# ---- command-line errors ----------------------------------------------------------------------
def test_cli_errors(pilot, tiny, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["train", str(tmp_path / "nope"), "--model", str(tiny), "-o", "x"], 2, "does not exist"),
        (["train", str(empty), "--model", str(tiny), "-o", "x"], 1, "not a compiled dataset"),
        (["train", str(pilot), "-o", "x"], 2, "missing --model"),
        (["train", str(pilot), "--model", str(tiny), "-o", "x", "--mix", "r.jsonl"], 2, "SOURCE:WEIGHT"),
        (["train", str(pilot), "--model", str(tiny), "-o", str(tmp_path / "o"), "--mix", f"{tmp_path}/no.jsonl:1"],
         1, "no such file or folder"),
        (["train", str(pilot), "--model", "no-such-org/no-such-model", "-o", str(tmp_path / "o")], 2,
         "no local folder by that name"),
        (["train", str(pilot), "--model", str(tiny), "-o", str(tmp_path / "o"), "--config", str(tmp_path / "c.ini")],
         2, "does not exist"),
    ]
    for argv, code, message in cases:
        assert main(argv) == code, argv
        assert message in capsys.readouterr().err, argv
    empty_train = tmp_path / "b2" / "sft"
    empty_train.mkdir(parents=True)
    (empty_train / "messages_train.jsonl").write_text("")
    assert main(["train", str(empty_train.parent), "--model", str(tiny), "-o", str(tmp_path / "o")]) == 1
    assert "holds no samples" in capsys.readouterr().err


def test_help_explains_the_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--model", "--lora", "--merge", "--epochs", "--lr", "--max-length", "--packing", "--batch-size",
                 "--grad-accum", "--mix SOURCE:WEIGHT", "--resume", "--config", "accelerate launch", "exit codes"):
        assert flag in text, flag


def test_check_and_compile_do_not_import_torch(tmp_path):
    """Record every attempt to import torch & co., not just success (see test_compile.py)."""
    code = f"""
import sys, traceback
tried = []
class Probe:
    def find_spec(self, name, path=None, target=None):
        probing = any("importlib.util" in f.filename for f in traceback.extract_stack())
        if name.split(".")[0] in ("torch", "transformers", "trl", "peft", "accelerate") and not probing:
            tried.append(name)
        return None
sys.meta_path.insert(0, Probe())
import humanllm_dsl, humanllm_dsl.train, humanllm_dsl.cli.train
from humanllm_dsl.cli import main
rc1 = main(["check", {str(ROOT / "specs")!r}])
rc2 = main(["compile", {str(ROOT / "specs")!r}, "-o", {str(tmp_path / "q")!r}, "--scenarios", "3", "--no-progress"])
print(rc1, rc2, sorted(set(tried)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}).stdout
    assert out.strip().splitlines()[-1] == "0 0 []"
