"""Benchmark: training throughput of `humanllm train`'s settings against TRL's defaults.

One run, one GPU, the same data and the same model shape for both sides: a Qwen3-8B-shaped
model (36 layers, hidden 4096, 32/8 heads, vocabulary 151,936) with random bf16 weights (nothing
downloaded), a tokenizer trained on the spot, and the chat samples of a compiled build
(`--build`; by default synthetic chats of HumanLLM length). Each side trains `--steps` optimiser
steps; the first `--warmup` are not timed. Reported per side: trained-on tokens per second
(padding excluded), model FLOPs utilisation (MFU), peak GPU memory; and the ratio.

  trl-defaults  SFTConfig as TRL ships it (batch 8, padding to the longest sample, gradient
                checkpointing on, no packing), with max_length set to fit the data and bf16
                weights (an 8B model in fp32 with fp32 Adam does not fit one GPU).
  humanllm      the settings `humanllm train` builds (humanllm_dsl.train.trainer.sft_kwargs)
                with the bench's choices: packing (best-fit, padding-free, sequences kept apart
                by position ids), flash-attention 2 when installed, gradient checkpointing off
                (`--humanllm-checkpointing` turns it on where memory is short).

MFU = tokens/s x (6 N + 12 L d T) / peak, with N the parameters (embeddings excluded), L
layers, d hidden size, T the mean sample length (PaLM's formula, causal mask not halved); peak
is the card's dense bf16 figure (H100/H200 SXM: 989 TFLOP/s; `--peak-tflops` to override).

    python bench/bench_train.py                                # GPU: Qwen3-8B shape
    python bench/bench_train.py --build /tmp/pilot             # on a compiled build's samples
    python bench/bench_train.py --tiny                         # CPU smoke test, seconds
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QWEN3_8B = dict(vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
                rope_theta=1_000_000.0, tie_word_embeddings=False)
TINY = dict(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=4096, tie_word_embeddings=True)
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def synthetic_samples(n: int, seed: int, turns: tuple[int, int], words: tuple[int, int]) -> list[list[dict]]:
    """Chats shaped like HumanLLM samples: a long system prompt, then user/assistant turns."""
    from tests.tiny_model import _WORDS

    rng = random.Random(seed)
    say = lambda: " ".join(rng.choice(_WORDS) for _ in range(rng.randint(*words)))  # noqa: E731
    out = []
    for _ in range(n):
        msgs = [{"role": "system", "content": " ".join(say() for _ in range(6))}]
        for _ in range(rng.randint(*turns)):
            msgs += [{"role": "user", "content": f"Other: ({say()}) {say()}"},
                     {"role": "assistant", "content": f"[{say()}] ({say()}) {say()}"}]
        out.append(msgs)
    return out


def build_model(shape: dict, tokenizer, dtype, device: str, attn: str | None):
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    config = Qwen3Config(**shape, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=None)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=attn)
    return model


def flops_per_token(model, mean_len: float) -> float:
    c = model.config
    n = sum(p.numel() for name, p in model.named_parameters() if "embed_tokens" not in name)
    return 6 * n + 12 * c.num_hidden_layers * c.hidden_size * mean_len


def timer(warmup: int):
    """A TrainerCallback timing the steps after the warm-up, with the tokens seen."""
    import torch
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        t0 = t1 = 0.0
        tok0 = tok1 = 0

        def on_step_end(self, args, state, control, **kw):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            if state.global_step == warmup:
                self.t0, self.tok0 = time.perf_counter(), state.num_input_tokens_seen
            self.t1, self.tok1 = time.perf_counter(), state.num_input_tokens_seen

        def tokens_per_s(self) -> float:
            return (self.tok1 - self.tok0) / max(self.t1 - self.t0, 1e-9)

    return Timer()


def run_side(name: str, args_kw: dict, model, tokenizer, dataset, warmup: int) -> dict:
    import torch
    from trl import SFTConfig, SFTTrainer

    clock = timer(warmup)
    sft = SFTConfig(**args_kw)
    trainer = SFTTrainer(model=model, args=sft, train_dataset=dataset, processing_class=tokenizer,
                         callbacks=[clock])
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    mem = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    return {"side": name, "tokens_per_s": clock.tokens_per_s(), "timed_steps": sft.max_steps - warmup,
            "tokens_timed": clock.tok1 - clock.tok0, "peak_mem_gib": mem}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="a 2-layer model on the CPU: checks the script in seconds")
    ap.add_argument("--build", type=Path, help="use BUILD/sft/messages_train.jsonl instead of synthetic chats")
    ap.add_argument("--layers", type=int, help="override the layer count (MFU stays comparable)")
    ap.add_argument("--steps", type=int, help="optimiser steps per side (default 20; tiny 6)")
    ap.add_argument("--warmup", type=int, help="steps not timed (default 5; tiny 2)")
    ap.add_argument("--max-length", type=int, help="tokens per sequence (default 4096; tiny 512)")
    ap.add_argument("--batch-size", type=int, default=8, help="TRL-defaults side batch size (TRL's default 8)")
    ap.add_argument("--humanllm-batch-size", type=int, default=2, help="humanllm side: packed sequences per step")
    ap.add_argument("--humanllm-checkpointing", action="store_true", help="humanllm side: gradient checkpointing on")
    ap.add_argument("--peak-tflops", type=float, help="the card's dense bf16 peak (default: by card name)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    a = ap.parse_args(argv)

    import torch

    from humanllm_dsl.train import TrainConfig
    from humanllm_dsl.train import data as d
    from humanllm_dsl.train.trainer import sft_kwargs
    from tests.tiny_model import build_tokenizer

    import datasets

    datasets.disable_progress_bars()
    cuda = torch.cuda.is_available()
    if not cuda and not a.tiny:
        print("no GPU: run with --tiny for the CPU smoke test", file=sys.stderr)
        return 2
    steps, warmup = a.steps or (6 if a.tiny else 20), a.warmup or (2 if a.tiny else 5)
    max_length = a.max_length or (512 if a.tiny else 4096)
    shape = dict(TINY if a.tiny else QWEN3_8B)
    if a.layers:
        shape["num_hidden_layers"] = a.layers
    samples = (d.load_build(a.build)["train"] if a.build else
               synthetic_samples(64 if a.tiny else 512, 0, (2, 4) if a.tiny else (6, 10), (4, 12) if a.tiny else (10, 40)))
    tokenizer = build_tokenizer()  # with humanllm's ChatML training template
    lengths = [len(tokenizer.apply_chat_template(s, tokenize=True, return_dict=True)["input_ids"]) for s in samples]
    mean_len = sum(min(n, max_length) for n in lengths) / len(lengths)
    dataset = d.to_dataset(samples)
    dtype = torch.bfloat16 if cuda else torch.float32
    flash = cuda and _has("flash_attn")
    device = "cuda" if cuda else "cpu"
    precision = "bf16" if cuda else "fp32"
    with tempfile.TemporaryDirectory() as tmp:
        common = dict(max_steps=steps, report_to="none", disable_tqdm=True, save_strategy="no", logging_steps=1000,
                      include_num_input_tokens_seen="non_padding", seed=0, dataloader_pin_memory=cuda)
        trl_kw = dict(output_dir=f"{tmp}/trl", max_length=max_length, bf16=cuda, per_device_train_batch_size=a.batch_size,
                      **common)
        cfg = TrainConfig(build_dir=tmp, model="bench", out=f"{tmp}/h", max_steps=steps, packing=True,
                          max_length=max_length, batch_size=a.humanllm_batch_size, grad_accum=1, precision=precision,
                          gradient_checkpointing=a.humanllm_checkpointing, eval_steps=0, save_steps=10**9)
        h_kw = {**sft_kwargs(cfg, has_eval=False, progress=False), **common, "output_dir": f"{tmp}/h"}
        results, fpt = [], None
        for name, kw, attn in (("trl-defaults", trl_kw, None),
                               ("humanllm", h_kw, "flash_attention_2" if flash else None)):
            model = build_model(shape, tokenizer, dtype, device, attn)
            fpt = flops_per_token(model, mean_len)
            results.append({**run_side(name, kw, model, tokenizer, dataset, warmup), "attn": attn or "sdpa"})
            del model
            if cuda:
                torch.cuda.empty_cache()
    card = torch.cuda.get_device_name() if cuda else "cpu"
    peak = a.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in card), None)
    for r in results:
        r["mfu"] = r["tokens_per_s"] * fpt / (peak * 1e12) if peak else None
    ratio = results[1]["tokens_per_s"] / max(results[0]["tokens_per_s"], 1e-9)
    n_params = fpt and (fpt - 12 * shape["num_hidden_layers"] * shape["hidden_size"] * mean_len) / 6
    print(f"device: {card}; model: Qwen3 shape, {shape['num_hidden_layers']} layers, hidden {shape['hidden_size']}, "
          f"{n_params / 1e6:,.1f}M non-embedding params, {dtype}; {len(samples)} samples, mean {mean_len:.0f} tokens; "
          f"{steps} steps per side ({warmup} warm-up)")
    print("| side | tokens/s | MFU | peak memory GiB | attention |")
    print("|---|---|---|---|---|")
    for r in results:
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a (no peak figure)"
        mem = f"{r['peak_mem_gib']:.1f}" if r["peak_mem_gib"] is not None else "n/a"
        print(f"| {r['side']} | {r['tokens_per_s']:,.0f} | {mfu} | {mem} | {r['attn']} |")
    print(f"humanllm / trl-defaults tokens/s: {ratio:.2f}x")
    if a.json:
        a.json.write_text(json.dumps({"device": card, "shape": shape, "mean_len": mean_len, "results": results,
                                      "ratio": ratio}, indent=2))
    return 0


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    sys.exit(main())
