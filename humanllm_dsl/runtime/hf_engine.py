"""`hf:PATH`: a local transformers chat model as a dspy engine, with batched generation.

Requests from concurrent calls queue up; one worker thread takes up to `batch_size` of them at
a time, left-pads them into one batch and generates. The device is chosen automatically (CUDA,
then Apple MPS, then CPU). Nothing is downloaded: PATH is a folder saved with `save_pretrained`
(a hub name works only where the machine can reach the hub).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future

from dspy.lm15 import Response

from .engines import AsyncEngine, Engine, message_text, response, text_of


def chat_messages(request) -> list[dict]:
    """An lm15 request as plain chat messages for a chat template."""
    system = text_of(getattr(request, "system", None))
    head = [{"role": "system", "content": system}] if system else []
    return head + [{"role": msg.role, "content": message_text(msg)} for msg in request.messages]


class HFEngine(Engine):
    def __init__(self, path: str, batch_size: int = 8, max_new_tokens: int = 1024,
                 temperature: float | None = None, seed: int = 0, device: str | None = None):
        self.path, self.batch_size, self.max_new_tokens = path, batch_size, max_new_tokens
        self.temperature, self.seed, self.device = temperature, seed, device
        self._queue: queue.Queue = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self.model = self.tokenizer = None
        self.batches = 0  # batches generated (visible to tests and benchmarks)

    def dump_state(self) -> dict:
        return {"path": self.path, "batch_size": self.batch_size, "max_new_tokens": self.max_new_tokens,
                "temperature": self.temperature, "seed": self.seed}

    @classmethod
    def load_state(cls, state: dict) -> "HFEngine":
        return cls(**state)

    # -- model
    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.device is None:
            self.device = "cuda" if torch.cuda.is_available() else (
                "mps" if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(self.path, dtype=dtype).to(self.device).eval()

    def _start(self) -> None:
        with self._lock:
            if self._worker is None:
                self._load()
                self._worker = threading.Thread(target=self._serve, name="hf-engine", daemon=True)
                self._worker.start()

    def _serve(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._queue.get(timeout=0.005))  # let concurrent calls join the batch
                except queue.Empty:
                    break
            batch = [item for item in batch if item[2].set_running_or_notify_cancel()]
            if not batch:
                continue
            try:
                results = self.generate([messages for messages, _, _ in batch], [limit for _, limit, _ in batch])
            except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
                for _, _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, _, future), result in zip(batch, results):
                future.set_result(result)

    def generate(self, conversations: list[list[dict]], limits: list[int | None] | None = None
                 ) -> list[tuple[str, str, int, int]]:
        """Generate for a batch, each answer up to its own token limit (default `max_new_tokens`);
        returns (text, finish_reason, prompt_tokens, completion_tokens) for each."""
        import torch

        limits = [limit or self.max_new_tokens for limit in (limits or [None] * len(conversations))]
        tok = self.tokenizer
        prompts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        sample = bool(self.temperature)
        torch.manual_seed(self.seed + self.batches)
        with torch.no_grad():
            out = self.model.generate(**enc, max_new_tokens=max(limits), do_sample=sample,
                                      temperature=self.temperature if sample else None,
                                      top_p=None, top_k=None, pad_token_id=tok.pad_token_id)
        self.batches += 1
        new = out[:, enc["input_ids"].shape[1]:]
        eos = self.model.generation_config.eos_token_id
        stops = {tok.pad_token_id, tok.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}
        results = []
        for row, mask, limit in zip(new, enc["attention_mask"], limits):
            ids = row.tolist()[:limit]
            end = next((i for i, t in enumerate(ids) if t in stops), None)
            ids = ids if end is None else ids[:end]
            results.append((tok.decode(ids, skip_special_tokens=True), "length" if end is None else "stop",
                            int(mask.sum()), len(ids)))
        return results

    # -- dspy engine protocol
    def submit(self, request) -> Future:
        self._start()
        future: Future = Future()
        config = getattr(request, "config", None)
        self._queue.put((chat_messages(request), getattr(config, "max_tokens", None), future))
        return future

    def complete(self, request) -> Response:
        return response("hf", *self.submit(request).result())


class AsyncHFEngine(AsyncEngine):
    """Waits for the batch worker without blocking the event loop."""

    async def complete(self, request) -> Response:
        return response("hf", *await asyncio.wrap_future(self.sync.submit(request)))
