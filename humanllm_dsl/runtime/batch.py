"""`compile --batch`: each stage's LM calls as provider batch jobs (the OpenAI Batch API shape:
upload a JSONL file to `/files`, create a `/batches` job for `/v1/chat/completions` with a 24 h
window, poll it, download its output and error files), at about half the price of direct calls.

The requests are exactly the direct path's (DSPy's adapter formats the program's signature and
inputs, as `dspy.Predict` does; the custom_id is the rollout id `slot/stage/attempt`), and each
answer is parsed, validated and settled by the Generator as in the direct path (pipeline.py): an
invalid answer or an error row goes into the next batch with its feedback, and after the last
attempt into failures.jsonl. A slot's later stages join the next batch once its scenario is in.

What a provider may do is handled as the direct path handles the same fault: output rows in any
order (matched by custom_id only), an item answered with HTTP 429 or 5xx (in the error or the
output file) or not answered by a completed batch is sent again as it was (a transient retry,
up to the policy's max_retries; then it counts as a failed attempt), and an expired or cancelled
batch's unrun items are sent again as they were. A batch that fails without blaming a line of
its input (an enqueued-token limit, a provider fault) is sent again after a backoff, up to
max_retries times; one that blames a line stops the run with the custom_ids it names. The
files and batches endpoints are retried on transport faults, 429 and 5xx.

Every upload is logged in `work/batches.jsonl` (its file id, its requests and the sha256 of the
uploaded bytes) before `POST /batches`, and every batch id as soon as it is heard, so a
restarted run polls the batches it already paid for instead of sending them again. A batch the
provider made but whose id never reached us (a kill or a lost reply) is found by listing
`GET /batches` for its input_file_id and the fingerprint set in its metadata, before any new
batch is made from that file.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from types import SimpleNamespace

import attrs
import dspy
from dspy.utils.exceptions import (AdapterParseError, LMAuthError, LMError, LMProviderError, LMRateLimitError,
                                   LMServerError, LMTransportError)

from . import validate
from .adapter import FastChatAdapter
from .backends import LMSpec, no_answer
from .calls import CallPolicy, TruncatedOutput, is_transient
from .errors import CALL_FAILED
from .layout import Build
from .lmconfig import LMConfig
from .pipeline import Generator, LMUnavailable, Task, plain, truncated_problems
from .records import Usage
from .stages import GENERATION_PROGRAMS, WORK_STAGES, work_stages
from .store import JsonlStore

PROVIDER = "openai/"
DEFAULT_BASE = "https://api.openai.com/v1"
ENDPOINT = "/v1/chat/completions"
WINDOW = "24h"
_NOT_SENT = {"rollout_id", "num_retries", "cache", "api_base", "base_url", "api_key", "api_version"}  # client settings
DONE = ("completed", "failed", "expired", "cancelled")  # a batch in any other status is still running
UNRUN = ("batch_expired", "batch_cancelled")  # item error codes of requests a batch ended before running
TRANSIENT_CODES = {"rate_limit_exceeded", "server_error", "internal_error", "service_unavailable", "timeout",
                   "overloaded", "engine_overloaded"}
FINGERPRINT = "humanllm_input"  # the metadata key holding the sha256 of a batch's input file
log_ = logging.getLogger(__name__)
PROGRAM_OF = dict(zip(WORK_STAGES, GENERATION_PROGRAMS, strict=True))


@attrs.frozen
class BatchOptions:
    """Args:
        size: at most this many requests per batch; a stage's batch goes as soon as this many are ready.
        wait: seconds the oldest ready request may wait for more before a smaller batch goes
            (at once when no batch of the run is in flight).
        poll: seconds between two looks at a batch in flight.
    """

    size: int = attrs.field(default=5000, validator=attrs.validators.ge(1))
    wait: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))
    poll: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))


class BatchUnsupported(ValueError):
    """`--batch` with an LM that has no batch API here (offline, hf:, a non-OpenAI provider)."""


def check_batchable(config: LMConfig) -> None:
    """Raise BatchUnsupported unless every generation program uses an OpenAI-compatible model."""
    for name in GENERATION_PROGRAMS:
        model = config.for_program(name).model
        if not model.startswith(PROVIDER) or len(model) == len(PROVIDER):
            raise BatchUnsupported(f"--batch needs an OpenAI-compatible model (`openai/MODEL`, with --api-base for "
                                   f"another server); the {name} program uses `{model}`")


# ---- the batch API client ------------------------------------------------------------------
class BatchClient:
    """The OpenAI files and batches endpoints at `base` (e.g. http://host/v1); transport faults,
    429s and 5xx are retried by the CallPolicy, other errors raised as dspy LM errors."""

    def __init__(self, base: str, key: str, policy: CallPolicy):
        import httpx

        self.base, self.policy = base.rstrip("/"), policy
        self.http = httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=policy.limits.timeout)

    async def _send(self, method: str, path: str, retry: bool = True, **kw):
        import httpx

        async def once():
            try:
                reply = await self.http.request(method, self.base + path, **kw)
            except httpx.TransportError as exc:
                raise LMTransportError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
            if reply.status_code >= 400:
                raise _http_error(method, path, reply)
            return reply

        if retry:
            return await self.policy.run(once)
        async with asyncio.timeout(self.policy.limits.timeout):
            return await once()

    async def upload(self, data: bytes) -> str:
        reply = await self._send("POST", "/files", data={"purpose": "batch"},
                                 files={"file": ("batch.jsonl", data, "application/jsonl")})
        return reply.json()["id"]

    async def create(self, file_id: str, stage: str, fingerprint: str | None) -> dict:
        """Make the batch of `file_id`. A create whose answer is lost (a timeout, a 5xx) may still
        have made the batch, so before each retry the batch is looked for first."""
        body = {"input_file_id": file_id, "endpoint": ENDPOINT, "completion_window": WINDOW,
                "metadata": {"humanllm_stage": stage, **({FINGERPRINT: fingerprint} if fingerprint else {})}}
        limits = self.policy.limits
        for attempt in range(limits.max_retries + 1):
            if attempt:
                found = await self.find(file_id, fingerprint)
                if found is not None:
                    return found
            try:
                return (await self._send("POST", "/batches", retry=False, json=body)).json()
            except Exception as exc:  # noqa: BLE001 - sorted right below
                if not is_transient(exc) or attempt == limits.max_retries:
                    raise
                self.policy.transient_retries += 1
                await asyncio.sleep(self.policy.delay(attempt, exc))
        raise AssertionError("unreachable")

    async def cancel(self, batch_id: str) -> dict:
        return (await self._send("POST", f"/batches/{batch_id}/cancel")).json()

    async def get(self, batch_id: str) -> dict:
        return (await self._send("GET", f"/batches/{batch_id}")).json()

    async def find(self, file_id: str, fingerprint: str | None) -> dict | None:
        """The batch made from `file_id`, if any (a run killed, or a reply lost, between the
        provider making it and us hearing its id): every page of `GET /batches` is read, as a
        provider may list in any order; a batch whose metadata names another input is not ours."""
        after = None
        while True:
            params = {"limit": 100, **({"after": after} if after else {})}
            page = (await self._send("GET", "/batches", params=params)).json()
            data = page.get("data") or []
            for batch in data:
                meta = batch.get("metadata") or {}
                if batch.get("input_file_id") == file_id and meta.get(FINGERPRINT) in (None, fingerprint):
                    return batch
            if not page.get("has_more") or not data:
                return None
            after = page.get("last_id") or data[-1]["id"]

    async def lines(self, file_id: str | None) -> tuple[list[dict], list[str]]:
        """The rows of an output or error file, and a note for each line that is not a JSON object.
        Read as bytes (whatever the content type says), split at LF only: a JSON string may hold
        U+2028 and other characters that str.splitlines takes for line ends."""
        if not file_id:
            return [], []
        data = (await self._send("GET", f"/files/{file_id}/content")).content
        rows, unreadable = [], []
        for number, raw in enumerate(data.split(b"\n"), 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
            except ValueError as exc:  # UnicodeDecodeError is a ValueError
                unreadable.append(f"{file_id} line {number}: {type(exc).__name__}: {str(exc)[:120]}")
                continue
            if isinstance(row, dict):
                rows.append(row)
            else:
                unreadable.append(f"{file_id} line {number}: not a JSON object")
        return rows, unreadable

    async def close(self) -> None:
        await self.http.aclose()


def _http_error(method: str, path: str, reply) -> LMError:
    try:
        detail = reply.json().get("error") or {}
        message = detail.get("message") if isinstance(detail, dict) else str(detail)
    except ValueError:
        message = reply.text[:200]
    text = f"{method} {path}: HTTP {reply.status_code}: {message}"
    status = reply.status_code
    if status == 429:
        return LMRateLimitError(text, status=status, retry_after=_retry_after(reply.headers))
    if status >= 500:
        return LMServerError(text, status=status)
    if status in (401, 403):
        return LMAuthError(text, status=status)
    return LMProviderError(text, status=status)


def _retry_after(headers) -> float | None:
    """Seconds a 429 asks us to wait: `retry-after-ms`, or `retry-after` as seconds or an HTTP date."""
    try:
        if headers.get("retry-after-ms"):
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        hint = headers.get("retry-after")
        if not hint:
            return None
        try:
            return max(0.0, float(hint))
        except ValueError:
            return max(0.0, email.utils.parsedate_to_datetime(hint).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def jsonl(lines: list[dict]) -> bytes:
    """A batch input file, as uploaded (its sha256 is the batch's fingerprint)."""
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8")


def fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- requests and answers ------------------------------------------------------------------
@attrs.define(eq=False)
class Request:
    """A task's attempt as a batch request line, and what parsing its answer needs."""

    task: Task
    line: dict
    signature: type
    processed: type
    lm: dspy.LM
    config: dict


def request_of(task: Task, adapter: FastChatAdapter) -> Request:
    """The request the direct path sends for this attempt: dspy.Predict's inputs and config,
    the adapter's messages, and the LM's settings as LiteLLM sends them to an OpenAI server."""
    predictors = task.program.predictors()
    if len(predictors) != 1:
        raise ValueError(f"--batch runs programs of one predictor; the {task.stage} program has {len(predictors)}")
    inputs = task.call_inputs()
    config = inputs.pop("config")
    lm, config, signature, demos, kwargs = predictors[0]._forward_preprocess(**inputs, config=config)
    processed = adapter._call_preprocess(lm, config, signature, kwargs)
    messages = adapter.format(processed, demos, kwargs)
    settings = {k: v for k, v in {**lm.kwargs, **config}.items() if v is not None and k not in _NOT_SENT}
    if "max_tokens" in settings:
        settings["max_completion_tokens"] = settings.pop("max_tokens")
    body = {"model": lm.model[len(PROVIDER):], "messages": messages, **settings}
    line = {"custom_id": task.rollout_id, "method": "POST", "url": ENDPOINT, "body": body}
    return Request(task, line, signature, processed, lm, config)


def answer_of(request: Request, row: dict, adapter: FastChatAdapter, price) -> tuple[dict | None, list[str]]:
    """One output (or error) row: count its usage on the task; return the parsed answer as plain
    data, or None with the problems (in the words the direct path uses)."""
    usage = request.task.usage
    response = row.get("response") or {}
    body = response.get("body") if isinstance(response, dict) else None
    if row.get("error") or response.get("status_code") != 200 or not isinstance(body, dict):
        error = row.get("error") or (body or {}).get("error") or {}
        status = response.get("status_code") if isinstance(response, dict) else None
        where = ", ".join(str(x) for x in (f"HTTP {status}" if status else None, error.get("code")) if x)
        return None, [f"{CALL_FAILED}batch item ({where or 'error'}): {error.get('message') or 'no answer'}"]
    tokens = body.get("usage") or {}
    prompt, completion = int(tokens.get("prompt_tokens") or 0), int(tokens.get("completion_tokens") or 0)
    usage.prompt_tokens += prompt
    usage.completion_tokens += completion
    usage.cost += price(prompt, completion)
    missing = no_answer(SimpleNamespace(provider_data=body))
    if missing:
        return None, [CALL_FAILED + missing]
    choice = body["choices"][0]
    if choice.get("finish_reason") == "length":
        return None, truncated_problems(TruncatedOutput("the answer was cut off at the token limit "
                                                        "(finish_reason=length)"))
    try:
        completions = adapter._call_postprocess(request.processed, request.signature,
                                                [choice["message"]["content"]], request.lm, request.config)
        return plain(dspy.Prediction.from_completions(completions, signature=request.signature)), []
    except (AdapterParseError, ValueError, KeyError, TypeError) as exc:
        return None, validate.problems_of(exc)


def pricer(model: str) -> Callable[[int, int], float]:
    """USD for a batch answer's tokens: the provider's batch prices where LiteLLM knows them,
    else its ordinary prices (an upper bound), else 0 (as DSPy counts an unknown model)."""
    import litellm

    name = model[len(PROVIDER):]
    info = litellm.model_cost.get(name) or litellm.model_cost.get(model) or {}
    batch_in, batch_out = info.get("input_cost_per_token_batches"), info.get("output_cost_per_token_batches")

    def price(prompt: int, completion: int) -> float:
        if batch_in is not None and batch_out is not None:
            return prompt * batch_in + completion * batch_out
        try:
            return sum(litellm.cost_per_token(model=name, custom_llm_provider="openai", prompt_tokens=prompt,
                                              completion_tokens=completion))
        except Exception:  # noqa: BLE001 - LiteLLM raises plain Exception for a model it has no price for
            return 0.0

    return price


# ---- the log: work/batches.jsonl -----------------------------------------------------------
def _entry(task: Task) -> list:
    return [task.rollout_id, task.feedback, task.usage.as_dict()]


def _restore(task: Task, entry: list) -> Task:
    custom_id, task.feedback, usage = entry
    task.attempt = int(custom_id.rsplit("/", 1)[1])
    task.usage = Usage(**{k: v for k, v in usage.items() if k in attrs.fields_dict(Usage)})
    return task


def _key(custom_id: str) -> tuple[str, str]:
    slot, stage, _ = custom_id.rsplit("/", 2)
    return slot, stage


@attrs.define(eq=False)
class Flight:
    """A batch (or an uploaded file not yet a batch) and its requests by custom_id, in upload order."""

    stage: str
    file: str
    requests: dict[str, Request]
    batch: str | None = None
    sha: str | None = None
    tries: int = 0  # batches of these requests that failed before this one


class BatchDriver:
    """Takes the Generator's slots through their stages as batch jobs (see the module's doc)."""

    def __init__(self, generator: Generator, clients: dict[str, BatchClient], prices: dict[str, Callable],
                 log: JsonlStore, stop: str, options: BatchOptions = BatchOptions()):
        self.g, self.clients, self.prices, self.log = generator, clients, prices, log
        self.stop, self.stages = stop, work_stages(stop)
        self.options = options
        self.adapter = FastChatAdapter()
        self.ready: dict[str, list[Task]] = {stage: [] for stage in self.stages}
        self.since: dict[str, float] = {}
        self.flights: list[Flight] = []
        self.abandoned: list[tuple[str, str]] = []  # (stage, batch id) whose requests went again: cancelled
        self.later: list[tuple[float, str, list[Task], int]] = []  # failed batches to send again: (when, stage, tasks, tries)
        self.resends: dict[str, int] = {}  # custom_id -> transient resends of that attempt
        self.seq = max((row.get("seq", 0) for row in log.items.values()), default=0)
        self.clock = time.monotonic
        self.policy: CallPolicy = generator.policy  # the run's limits and its transient-retry count

    def _write(self, row: dict) -> None:
        self.seq += 1
        self.log.append({**row, "seq": self.seq})

    # -- what is pending
    def _queue(self, task: Task) -> None:
        self.ready[task.stage].append(task)
        self.since.setdefault(task.stage, self.clock())

    def _open(self, slot, taken: set) -> None:
        """Queue the slot's next work: its scenario, or every later stage once it is in."""
        stores = self.g.stores
        if slot.id not in stores["scenarios"]:
            if (slot.id, "scenarios") not in taken:
                self._queue(self.g.task(slot, "scenarios"))
            return
        later = [stage for stage in self.stages[1:] if slot.id not in stores[stage] and (slot.id, stage) not in taken]
        for task in self.g.tasks(slot, later):
            self._queue(task)

    def _resume(self) -> set:
        """Rebuild the batches in flight and the queued retries from the log; return the
        (slot, stage) pairs they hold."""
        slots = {s.id: s for s in self.g.slots}
        state: dict[tuple[str, str], tuple[str, object, list]] = {}
        files: dict[str, dict] = {}
        for row in sorted(self.log.items.values(), key=lambda r: r.get("seq", 0)):
            if row["kind"] == "file":
                files[row["id"]] = row
                for entry in row["tasks"]:
                    state[_key(entry[0])] = ("file", row["id"], entry)
            elif row["state"] == "submitted":
                for entry in files[row["file"]]["tasks"]:
                    state[_key(entry[0])] = ("batch", row["id"], entry)
            else:
                for custom_id in row["custom_ids"]:
                    state.pop(_key(custom_id), None)
                for entry in row.get("retry", []):
                    state[_key(entry[0])] = ("retry", None, entry)
        flights: dict[str, Flight] = {}
        taken = set()
        for (slot_id, stage), (kind, where, entry) in state.items():
            if slot_id not in slots or stage not in self.stages or slot_id in self.g.stores[stage]:
                continue
            taken.add((slot_id, stage))
            task = _restore(self.g.task(slots[slot_id], stage), entry)
            if kind == "retry":
                self._queue(task)
                continue
            file_id = where if kind == "file" else self.log.get(where)["file"]
            flight = flights.setdefault(file_id, Flight(stage, file_id, {}, None if kind == "file" else where,
                                                        files[file_id].get("sha256")))
            request = request_of(task, self.adapter)
            flight.requests[request.line["custom_id"]] = request
        self.flights = [f for f in flights.values() if self._same_requests(f, files[f.file], slots)]
        return taken

    def _same_requests(self, flight: Flight, file_row: dict, slots: dict) -> bool:
        """Whether the requests rebuilt now are the bytes that were uploaded (a run restarted with
        other settings or another humanllm would read answers to questions it did not ask).
        If not, the flight is dropped from the log and its requests are queued to go again."""
        if flight.sha is None:
            return True
        lines = [request_of(_restore(self.g.task(slots[_key(e[0])[0]], flight.stage), e), self.adapter).line
                 for e in file_row["tasks"] if _key(e[0])[0] in slots]
        if fingerprint(jsonl(lines)) == flight.sha:
            return True
        reason = "its requests, rebuilt now, differ from the uploaded file (other LM settings or version?)"
        log_.warning("batch %s (file %s, %s): %s; they are sent again", flight.batch, flight.file, flight.stage,
                     reason)
        retry = [_entry(r.task) for r in flight.requests.values()]
        self._write({**self._row(flight, "abandoned", reason=reason, retry=retry),
                     "id": flight.batch or f"{flight.file}/abandoned"})
        for request in flight.requests.values():
            self._queue(request.task)
        if flight.batch is not None:
            self.abandoned.append((flight.stage, flight.batch))
        return False

    async def _cancel_abandoned(self) -> None:
        """Cancel the batches whose requests are sent again, so they are not paid for twice (best
        effort: a batch that ends first is billed as it ran; its answers are not read)."""
        for stage, batch_id in self.abandoned:
            try:
                await self.clients[stage].cancel(batch_id)
            except Exception as exc:  # noqa: BLE001 - logged; the run goes on without it
                log_.warning("batch %s could not be cancelled (%s: %s); it may still be billed", batch_id,
                             type(exc).__name__, exc)
        self.abandoned.clear()

    # -- one round: send what is due, look at what is in flight
    async def run(self) -> None:
        taken = self._resume()
        await self._cancel_abandoned()
        for flight in self.flights:
            if flight.batch is None:
                await self._make_batch(flight, look=True)
        for slot in self.g.todo(self.stop):
            self._open(slot, taken)
        while self.flights or any(self.ready.values()) or self.later:
            await self._send_due()
            moved = False
            if self.flights:
                polled = await asyncio.gather(*(self.clients[f.stage].get(f.batch) for f in self.flights))
                for flight, batch in list(zip(self.flights, polled)):
                    if batch.get("status") in DONE:
                        await self._collect(flight, batch)
                        moved = True
            if not moved and (self.flights or self.later):
                await asyncio.sleep(self._pause())

    def _pause(self) -> float:
        now = self.clock()
        waits = [self.options.wait - (now - t) for s, t in self.since.items() if self.ready[s]]
        waits += [when - now for when, *_ in self.later]
        return max(0.0, min([self.options.poll, *waits]))

    async def _send_due(self) -> None:
        now = self.clock()
        due = [entry for entry in self.later if entry[0] <= now]
        self.later = [entry for entry in self.later if entry[0] > now]
        for _, stage, tasks, tries in due:
            await self._submit(stage, tasks, tries)
        for stage, tasks in self.ready.items():
            while tasks and (len(tasks) >= self.options.size or not self.flights
                             or now - self.since.get(stage, now) >= self.options.wait):
                part, self.ready[stage] = tasks[:self.options.size], tasks[self.options.size:]
                tasks = self.ready[stage]
                self.since.pop(stage, None)
                if tasks:
                    self.since[stage] = now
                await self._submit(stage, part)

    async def _submit(self, stage: str, tasks: list[Task], tries: int = 0) -> None:
        requests = {r.line["custom_id"]: r for r in (request_of(t, self.adapter) for t in tasks)}
        client = self.clients[stage]
        data = jsonl([r.line for r in requests.values()])
        sha = fingerprint(data)
        file_id = await client.upload(data)
        # logged before the batch is asked for: a restart then finds the batch by this file
        self._write({"id": file_id, "kind": "file", "stage": stage, "sha256": sha, "tasks": [_entry(t) for t in tasks]})
        flight = Flight(stage, file_id, requests, sha=sha, tries=tries)
        self.flights.append(flight)
        await self._make_batch(flight)

    async def _make_batch(self, flight: Flight, look: bool = False) -> None:
        """Create the flight's batch; `look`: first look for one an earlier run made from its file."""
        client = self.clients[flight.stage]
        batch = await client.find(flight.file, flight.sha) if look else None
        batch = batch or await client.create(flight.file, flight.stage, flight.sha)
        flight.batch = batch["id"]
        self._write(self._row(flight, "submitted"))

    def _row(self, flight: Flight, state: str, **extra) -> dict:
        return {"id": flight.batch or flight.file, "kind": "batch", "file": flight.file, "stage": flight.stage,
                "state": state, "slots": sorted({r.task.slot.id for r in flight.requests.values()}),
                "custom_ids": list(flight.requests), **extra}

    def _resend(self, task: Task) -> bool:
        """Send the task's attempt again as it was, counted as a transient retry (as the direct
        path resends a call that met a 429 or 5xx); False once the policy's retries are spent."""
        count = self.resends.get(task.rollout_id, 0)
        if count >= self.policy.limits.max_retries:
            return False
        self.resends[task.rollout_id] = count + 1
        task.usage.transient_retries += 1
        self.policy.transient_retries += 1
        return True

    async def _collect(self, flight: Flight, batch: dict) -> None:
        """Settle every answer of a finished batch; queue retries and the slots' next stages."""
        status = batch["status"]
        if status == "failed":
            return self._failed(flight, batch)
        client = self.clients[flight.stage]
        errors, bad_errors = await client.lines(batch.get("error_file_id"))
        answers, bad_answers = await client.lines(batch.get("output_file_id"))
        rows, unknown = {}, 0
        for row in errors + answers:
            custom_id = row.get("custom_id")
            if custom_id not in flight.requests:
                unknown += 1
                continue
            rows.setdefault(custom_id, row)
            if _answered(row):  # an answer wins over an error row for the same request
                rows[custom_id] = row
        retry = []
        for custom_id, request in flight.requests.items():
            task, row = request.task, rows.get(custom_id)
            if task.slot.id in self.g.stores[task.stage]:
                continue  # settled before a restart
            if (row is None or _unrun(row)) and status != "completed":
                retry.append(_entry(task))  # expired or cancelled before its turn: sent again as it was
                self._queue(task)
                continue
            if (row is None or _transient(row)) and self._resend(task):
                retry.append(_entry(task))
                self._queue(task)
                continue
            if row is None:
                out, problems = None, [CALL_FAILED + "the batch completed without a row for this request"]
            else:
                out, problems = answer_of(request, row, self.adapter, self.prices[task.stage])
            if out is not None or not problems[0].startswith(CALL_FAILED):
                self.g.reached_lm = True
            result = self.g.settle(task, out, problems)
            if result is None and not task.failed:
                retry.append(_entry(task))
                self._queue(task)
                continue
            await self.g.finish(task, result)
            if result is not None and task.stage == "scenarios":
                self._open(task.slot, set())
        notes = {"unknown_rows": unknown} if unknown else {}
        if bad_errors or bad_answers:
            notes["unreadable"] = bad_errors + bad_answers
            log_.warning("batch %s: unreadable lines in its files (their requests are sent again): %s",
                         flight.batch, "; ".join(notes["unreadable"][:3]))
        self._write(self._row(flight, "done" if status == "completed" else status,
                              counts=batch.get("request_counts"), retry=retry, **notes))
        self.flights.remove(flight)

    def _failed(self, flight: Flight, batch: dict) -> None:
        """A batch that failed as a whole: its requests go again after a backoff, unless the
        provider blamed lines of the input (the same file would fail the same way) or the
        policy's retries are spent; then the run stops with the provider's reason."""
        self.flights.remove(flight)
        tasks = [r.task for r in flight.requests.values() if r.task.slot.id not in self.g.stores[r.task.stage]]
        data = (batch.get("errors") or {}).get("data") or []
        blamed = any(isinstance(e, dict) and isinstance(e.get("line"), int) for e in data)
        tries = flight.tries + 1
        if blamed or tries > self.policy.limits.max_retries:
            self._write(self._row(flight, "failed", errors=batch.get("errors")))
            times = f" ({tries} times)" if tries > 1 else ""
            raise LMUnavailable(f"batch {flight.batch} ({flight.stage}) failed{times}: "
                                f"{_errors(batch, list(flight.requests))}")
        for task in tasks:
            task.usage.transient_retries += 1
        self.policy.transient_retries += len(tasks)
        self._write(self._row(flight, "failed", errors=batch.get("errors"), retry=[_entry(t) for t in tasks]))
        if not tasks:
            return
        wait = self.policy.delay(flight.tries, LMServerError(_errors(batch, list(flight.requests))))
        self.later.append((self.clock() + wait, flight.stage, tasks, tries))


def _answered(row: dict) -> bool:
    response = row.get("response")
    return row.get("error") is None and isinstance(response, dict) and response.get("status_code") == 200


def _unrun(row: dict) -> bool:
    error = row.get("error") or {}
    return row.get("response") is None and isinstance(error, dict) and error.get("code") in UNRUN


def _transient(row: dict) -> bool:
    """An item the provider could not run for a passing reason (HTTP 429 or 5xx, or an error code
    saying so): the direct path would have sent it again."""
    if _answered(row):
        return False
    response = row.get("response") if isinstance(row.get("response"), dict) else {}
    status = response.get("status_code")
    if isinstance(status, int) and (status == 429 or status >= 500):
        return True
    body = response.get("body") if isinstance(response.get("body"), dict) else {}
    error = row.get("error") or body.get("error") or {}
    code = (error.get("code") or error.get("type")) if isinstance(error, dict) else None
    return code in TRANSIENT_CODES or (not status and not code)


def _errors(batch: dict, custom_ids: list[str]) -> str:
    """The provider's reasons for a failed batch, naming the requests of the lines it blamed."""
    data = (batch.get("errors") or {}).get("data") or []

    def one(error: dict) -> str:
        line = error.get("line")
        where = f"line {line}" if isinstance(line, int) else "the batch"
        if isinstance(line, int) and 1 <= line <= len(custom_ids):
            where += f" ({custom_ids[line - 1]})"
        code = f" [{error['code']}]" if error.get("code") else ""
        return f"{where}{code}: {error.get('message') or 'no message'}"

    return "; ".join(one(e) for e in data[:5] if isinstance(e, dict)) or "no reason given"


# ---- running it ----------------------------------------------------------------------------
def endpoint(spec: LMSpec) -> tuple[str, str]:
    """The batch API base URL and key of a program's LM (the key is never written anywhere)."""
    key = spec.key() or os.environ.get("OPENAI_API_KEY")
    if not key:
        raise LMUnavailable(f"`{spec.model}`: no API key (set OPENAI_API_KEY, or name a variable with api_key_env)")
    return spec.api_base or DEFAULT_BASE, key


def run_batch(job, slot_ids: list[str], progress=None, options: BatchOptions = BatchOptions()) -> Usage:
    """Generate the given slots as batch jobs in this process; returns this run's usage."""
    from .share import make_generator, make_lms

    check_batchable(job.config)
    out = job.options.out
    lms = make_lms(job)
    failures = JsonlStore(Build(out).failures)
    log = JsonlStore(Build(out).work_dir / "batches.jsonl", durable=True)
    generator = make_generator(job, slot_ids, lms, failures)

    def record(stage: str) -> None:
        if progress is not None:
            progress.advance(stage, generator.usage, 0, generator.policy.transient_retries)

    generator.on_record = record

    async def go() -> None:
        clients, made = {}, {}
        try:
            for stage in WORK_STAGES:
                spec = job.config.for_program(PROGRAM_OF[stage])
                where = endpoint(spec)
                if where not in made:
                    made[where] = BatchClient(*where, generator.policy)
                clients[stage] = made[where]
            prices = {stage: pricer(job.config.for_program(PROGRAM_OF[stage]).model) for stage in WORK_STAGES}
            with dspy.context(adapter=FastChatAdapter(), track_usage=True):
                await BatchDriver(generator, clients, prices, log, job.options.stage, options).run()
        except LMError as exc:  # the batch API refused us (auth, a bad request) after the policy's retries
            raise LMUnavailable(f"the batch API: {type(exc).__name__}: {exc}") from exc
        finally:
            for client in made.values():
                await client.close()

    try:
        asyncio.run(go())
    finally:
        generator.usage.transient_retries = generator.policy.transient_retries
        generator.close()
        failures.close()
        log.close()
    return generator.usage
