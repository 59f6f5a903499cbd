"""`compile --batch` end to end against a local fake batch provider (testing/fake_batch.py): the
same records and usage as a direct run, the same request bodies, failed items retried with
feedback in the next batch, expired batches sent again, and a killed run that resumes polling
without sending anything twice."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from humanllm_dsl.cli import main
from humanllm_dsl.testing import FakeOpenAIServer
from humanllm_dsl.testing import openai_server
from humanllm_dsl.testing.fake_batch import FakeBatchServer
from libgen import outputs, read_jsonl

SECRET = "sk-test-never-written-0123456789"
FAST = ("--batch-wait", "0", "--batch-poll", "0.05")


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def args(spec, out, base, *extra):
    return ["compile", str(spec), "-o", str(out), "--no-progress", "--lm", "openai/fake", "--api-base", base,
            "--scenarios", "8", *extra]


def usage_by_row(out: Path) -> dict:
    return {(stage, row["id"]): row["usage"] for stage in ("scenarios", "conversations", "checklists", "variations")
            for row in read_jsonl(out / "work" / f"{stage}.jsonl")}


@pytest.fixture(scope="module")
def direct(spec, tmp_path_factory):
    """A direct run against the offline-answering chat server, with every request body it sent."""
    out = tmp_path_factory.mktemp("direct") / "out"
    bodies = []
    handle = openai_server.FakeOpenAIServer._handle

    async def recording(self, method, path, body):
        bodies.append(json.loads(body))
        return await handle(self, method, path, body)

    os.environ["OPENAI_API_KEY"] = SECRET
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(openai_server.FakeOpenAIServer, "_handle", recording)
        with FakeOpenAIServer() as server:
            assert main(args(spec, out, server.base_url, "--no-cache")) == 0
    return out, bodies


def batch_bodies(server: FakeBatchServer) -> list[dict]:
    return [line["body"] for batch in server.batches.values() for line in batch["_lines"]]


def canonical(bodies) -> list[str]:
    return sorted(json.dumps(b, sort_keys=True) for b in bodies)


def test_batch_run_writes_what_a_direct_run_writes(spec, tmp_path, direct):
    reference, direct_bodies = direct
    out = tmp_path / "b"
    with FakeBatchServer(delay=0.05) as server:
        assert main(args(spec, out, server.base_url, "--batch", *FAST)) == 0
    assert outputs(out) == outputs(reference)  # records, splits, SFT, manifest (calls, tokens), card
    assert usage_by_row(out) == usage_by_row(reference)  # usage accounted per row as a direct run does
    assert canonical(batch_bodies(server)) == canonical(direct_bodies)  # the very requests the direct path sends
    stages = [batch["metadata"]["humanllm_stage"] for batch in server.batches.values()]
    assert stages[0] == "scenarios" and set(stages) == {"scenarios", "conversations", "checklists", "variations"}
    log = read_jsonl(out / "work" / "batches.jsonl")
    assert {row["id"] for row in log if row["kind"] == "batch"} == set(server.batches)
    last = {row["id"]: row for row in log if row["kind"] == "batch"}  # the last line of each batch wins
    assert {row["state"] for row in last.values()} == {"done"}
    assert all(row["slots"] and row["custom_ids"] for row in last.values())
    assert all(SECRET.encode() not in p.read_bytes() for p in out.rglob("*") if p.is_file())


def test_failed_items_are_retried_in_the_next_batch_with_feedback(spec, tmp_path, direct):
    reference, _ = direct
    ids = [row["id"] for row in read_jsonl(reference / "plan.jsonl")]
    faults = {f"{ids[0]}/scenarios/0": "malformed", f"{ids[1]}/scenarios/0": "invalid",
              f"{ids[2]}/conversations/0": "truncated",
              **{f"{ids[3]}/checklists/{k}": "invalid" for k in range(3)}}
    out = tmp_path / "f"
    with FakeBatchServer(item_faults=faults) as server:
        assert main(args(spec, out, server.base_url, "--batch", *FAST)) == 3  # one checklist failed every attempt
    first_batch = {line["custom_id"] for line in server.batches["batch_1"]["_lines"]}
    for custom_id in list(faults)[:3]:
        retry = custom_id[:-1] + "1"
        assert retry in server.lines and retry not in first_batch
        body = next(line["body"] for b in server.batches.values() for line in b["_lines"] if line["custom_id"] == retry)
        assert "This is attempt 2; attempt 1 was rejected" in body["messages"][-1]["content"]
    usage = usage_by_row(out)
    assert usage[("scenarios", ids[0])]["calls"] == 2 and usage[("scenarios", ids[0])]["retries"] == 1
    assert usage[("scenarios", ids[1])]["calls"] == 2
    assert usage[("conversations", ids[2])]["calls"] == 2
    failures = read_jsonl(out / "failures.jsonl")
    assert [(f["id"], f["stage"], f["attempts"]) for f in failures] == [(ids[3], "checklists", 3)]
    assert "batch item (HTTP 400, invalid_request_error)" in failures[0]["reason"] and failures[0]["usage"]["calls"] == 3
    records = {r["id"]: r for r in read_jsonl(out / "records.jsonl")}
    assert set(records) == set(ids) - {ids[3]}


def test_an_expired_batch_is_sent_again_and_costs_no_attempt(spec, tmp_path, direct):
    reference, _ = direct
    out = tmp_path / "e"
    with FakeBatchServer(expire={1}) as server:
        assert main(args(spec, out, server.base_url, "--batch", *FAST)) == 0
    assert server.batches["batch_1"]["status"] == "expired"
    first = [line["custom_id"] for line in server.batches["batch_1"]["_lines"]]
    resent = [c for c in first[len(first) // 2:]]
    assert all(server.lines.count(c) == 2 for c in resent)  # the unanswered half, the same attempt again
    assert all(server.lines.count(c) == 1 for c in first[:len(first) // 2])
    assert outputs(out) == outputs(reference)
    assert usage_by_row(out) == usage_by_row(reference)


def test_a_batch_failed_over_a_line_of_its_input_stops_the_run_naming_the_request(spec, tmp_path, direct, capsys):
    reference, _ = direct
    ids = [row["id"] for row in read_jsonl(reference / "plan.jsonl")]
    blamed = f"{ids[2]}/scenarios/0"
    with FakeBatchServer(reject={blamed}) as server:
        assert main(args(spec, tmp_path / "x", server.base_url, "--batch", *FAST)) == 2
    err = capsys.readouterr().err
    assert f"batch batch_1 (scenarios) failed: line 3 ({blamed}) [invalid_request]" in err
    assert server.created == 1  # the same file would fail the same way: not sent again


def test_a_batch_that_keeps_failing_as_a_whole_stops_after_the_retries(spec, tmp_path, capsys):
    config = tmp_path / "lm.toml"
    config.write_text("[limits]\nmax_retries = 2\nbackoff = 0.01\n")
    with FakeBatchServer(fail=set(range(1, 10))) as server:
        assert main(args(spec, tmp_path / "x", server.base_url, "--batch", "--lm-config", str(config), *FAST)) == 2
    assert "batch batch_3 (scenarios) failed (3 times): the batch [token_limit_exceeded]" in capsys.readouterr().err
    assert server.created == 3


def _cmd(spec, out, base):
    return [sys.executable, "-m", "humanllm_dsl", *args(spec, out, base, "--batch", *FAST)]


def test_a_killed_run_resumes_polling_and_never_sends_twice(spec, tmp_path, direct):
    reference, _ = direct
    out = tmp_path / "k"
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    # A create answered after 1 s: the first kill comes before the client hears the batch id.
    with FakeBatchServer(delay=1.0, create_delay=1.0) as server:
        for wait_for in (lambda: server.uploads >= 1, lambda: server.created >= 2):
            proc = subprocess.Popen(_cmd(spec, out, server.base_url), env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while proc.poll() is None and not wait_for() and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.2)
            assert proc.poll() is None
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            time.sleep(1.2)  # the provider finishes the create it was in (the batch exists, unheard of)
        uploads, created_before = server.uploads, server.created
        assert main(args(spec, out, server.base_url, "--batch", *FAST)) == 0
        assert server.lines.count(server.batches["batch_1"]["_lines"][0]["custom_id"]) == 1
        twice = sorted({c for c in server.lines if server.lines.count(c) > 1})
        assert not twice  # no request was sent twice
        assert server.created == len(server.batches)
        assert server.created - created_before == server.uploads - uploads  # the resumed run: one batch per file
        assert server.uploads == server.created  # every uploaded file became exactly one batch
    assert outputs(out) == outputs(reference)


@pytest.mark.parametrize("model", ["offline", "hf:models/x", "anthropic/claude"])
def test_batch_needs_an_openai_compatible_model(spec, tmp_path, capsys, model):
    rc = main(["compile", str(spec), "-o", str(tmp_path / "u"), "--no-progress", "--lm", model, "--batch"])
    assert rc == 2
    assert "--batch needs an OpenAI-compatible model" in capsys.readouterr().err


LIMITS = "[limits]\nbackoff = 0.01\nbackoff_max = 0.2\n"
SAME_RECORDS = ("records.jsonl", "splits/", "sft/", "patterns.json", "README.md")


def kept(out: Path) -> dict:
    """What must equal a direct run's when the provider eventually answers every request (the
    manifest also counts the transient retries, so it differs where the provider had faults)."""
    return {k: v for k, v in outputs(out).items() if k.startswith(SAME_RECORDS)}


def one_sent(server: FakeBatchServer) -> dict[str, int]:
    return {c: server.lines.count(c) for c in set(server.lines)}


def faults_for(ids: list[str], kinds: list[str]) -> dict[str, str]:
    stages = ("scenarios", "conversations", "checklists", "variations")
    return {f"{ids[i]}/{stages[i % 4]}/0": kind for i, kind in enumerate(kinds)}


# Each provider behaviour the OpenAI Batch API allows; the run must end with a direct run's records.
PROVIDERS = {
    "rows in any order, CRLF, octet-stream, unknown fields": dict(
        shuffle=True, crlf=True, content_type="application/octet-stream", extra_fields=True),
    "text/plain with a charset": dict(content_type="text/plain; charset=utf-8", shuffle=True),
    "429 and 5xx items in the error file": dict(fault_times=2, shuffle=True),
    "429 and 5xx items in the output file": dict(fault_times=2, errors_in_output=True),
    "a completed batch that leaves items out": dict(fault_times=1),
    "expired with partial output": dict(expire={1, 3}, shuffle=True),
    "cancelled by the provider with partial output": dict(cancel={1, 2}),
    "failed as a whole, then accepted": dict(fail={1, 3}),
    "429 and 503 on every endpoint, creates whose answer is lost": dict(
        http_faults={"upload": 2, "create": 2, "list": 2, "poll": 3, "content": 2}, lost_creates=2),
}
KINDS = {"429 and 5xx items in the error file": ["error", "rate_limited", "error", "rate_limited", "error"],
         "429 and 5xx items in the output file": ["rate_limited", "error", "error"],
         "a completed batch that leaves items out": ["missing", "missing", "missing"]}


@pytest.mark.parametrize("name", list(PROVIDERS))
def test_a_provider_that_behaves_as_the_batch_api_may_ends_with_the_direct_records(spec, tmp_path, direct, name):
    reference, _ = direct
    ids = [row["id"] for row in read_jsonl(reference / "plan.jsonl")]
    faults = faults_for(ids, KINDS.get(name, []))
    config = tmp_path / "lm.toml"
    config.write_text(LIMITS)
    out = tmp_path / "p"
    with FakeBatchServer(item_faults=faults, **PROVIDERS[name]) as server:
        assert main(args(spec, out, server.base_url, "--batch", "--lm-config", str(config), *FAST)) == 0
    assert kept(out) == kept(reference)  # nothing lost, nothing doubled, nothing changed
    assert usage_by_row(out).keys() == usage_by_row(reference).keys()
    assert not any(f"/{k}" in c for c in server.lines for k in (1, 2))  # no attempt spent on a provider fault
    assert not (out / "failures.jsonl").read_text("utf-8")
    sent = one_sent(server)
    for custom_id in faults:  # a faulty item went again as it was, and only as often as it met its fault
        assert sent[custom_id] == 1 + PROVIDERS[name]["fault_times"]
    if "http_faults" in PROVIDERS[name]:
        assert server.http_faulted == {"upload": 2, "create": 2, "list": 2, "poll": 3, "content": 2}
        assert server.created == len(server.batches) == server.uploads  # a lost create made no second batch
        assert set(sent.values()) == {1}
    for batch in server.batches.values():
        if batch["status"] in ("expired", "cancelled"):
            unrun = [line["custom_id"] for line in batch["_lines"]][len(batch["_lines"]) // 2:]
            assert all(sent[c] >= 2 for c in unrun)
    usage = usage_by_row(out)
    if faults:
        retried = {(c.split("/")[1], c.split("/")[0]) for c in faults}
        assert all(usage[key]["transient_retries"] == PROVIDERS[name]["fault_times"] for key in retried)
        assert all(usage[key]["calls"] == 1 for key in retried)


def test_items_that_keep_failing_transiently_spend_an_attempt_after_the_retries(spec, tmp_path, direct):
    reference, _ = direct
    ids = [row["id"] for row in read_jsonl(reference / "plan.jsonl")]
    config = tmp_path / "lm.toml"
    config.write_text("[limits]\nmax_retries = 2\n")
    out = tmp_path / "t"
    faults = {f"{ids[0]}/checklists/{k}": "error" for k in range(3)}
    with FakeBatchServer(item_faults=faults) as server:
        assert main(args(spec, out, server.base_url, "--batch", "--lm-config", str(config), *FAST)) == 3
    assert [server.lines.count(c) for c in faults] == [3, 3, 3]  # each attempt: sent, then resent twice
    failure, = read_jsonl(out / "failures.jsonl")
    assert (failure["id"], failure["stage"], failure["attempts"]) == (ids[0], "checklists", 3)
    assert "batch item (HTTP 500, server_error)" in failure["reason"]
    assert failure["usage"]["calls"] == 3 and failure["usage"]["transient_retries"] == 6


def other_batches(server: FakeBatchServer, n: int, metadata: dict | None = None) -> list[str]:
    """Batches someone else made on the same account (one request each); their input file ids."""
    import httpx

    line = json.dumps({"custom_id": "other", "method": "POST", "url": "/v1/chat/completions",
                       "body": {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}}).encode()
    files = []
    with httpx.Client(base_url=server.base_url, headers={"Authorization": "Bearer x"}) as client:
        for _ in range(n):
            reply = client.post("/files", data={"purpose": "batch"}, files={"file": ("o.jsonl", line, "application/jsonl")})
            files.append(reply.json()["id"])
            client.post("/batches", json={"input_file_id": files[-1], "endpoint": "/v1/chat/completions",
                                          "completion_window": "24h", "metadata": metadata}).raise_for_status()
    return files


def test_a_run_killed_as_the_provider_makes_its_batch_finds_that_batch_by_listing(spec, tmp_path, direct):
    """The hole between `POST /batches` making a batch and us logging its id: the process dies
    right there (killed from inside the provider's create, before the answer goes). The restart
    finds the batch through every page of `GET /batches` by its input file and fingerprint."""
    reference, _ = direct
    out = tmp_path / "c"
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    proc: dict[str, subprocess.Popen] = {}

    def kill_at_second_create(batch: dict) -> None:
        if batch["id"] == "batch_2":
            proc["run"].send_signal(signal.SIGKILL)

    with FakeBatchServer(delay=0.2, on_create=kill_at_second_create, page_size=2) as server:
        proc["run"] = subprocess.Popen(_cmd(spec, out, server.base_url), env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert proc["run"].wait(120) == -signal.SIGKILL
        log = read_jsonl(out / "work" / "batches.jsonl")
        made = server.batches["batch_2"]
        file_row = next(r for r in log if r["kind"] == "file" and r["id"] == made["input_file_id"])
        assert made["metadata"]["humanllm_input"] == file_row["sha256"]  # logged before the create
        assert not any(r["kind"] == "batch" and r["id"] == "batch_2" for r in log)  # its id never reached us
        other_batches(server, 5)  # newer batches: ours is on the third page of two
        listed, created = server.listed, server.created
        assert main(args(spec, out, server.base_url, "--batch", *FAST)) == 0
        assert server.listed - listed == 3
        ours = [c for c in server.lines if c != "other"]
        assert len(ours) == len(set(ours))  # no request was sent twice
        assert made["status"] == "completed"  # polled to its end by the restarted run
        assert not any(b["input_file_id"] == made["input_file_id"] for b in list(server.batches.values())[created:])
    assert outputs(out) == outputs(reference)


def test_listing_matches_a_batch_by_input_file_and_fingerprint(tmp_path):
    import asyncio

    from humanllm_dsl.runtime.batch import BatchClient
    from humanllm_dsl.runtime.calls import CallPolicy

    async def look(server, file_id, sha):
        client = BatchClient(server.base_url, SECRET, CallPolicy())
        try:
            return await client.find(file_id, sha)
        finally:
            await client.close()

    with FakeBatchServer(page_size=1) as server:
        tagged, = other_batches(server, 1, {"humanllm_input": "abc"})
        plain, = other_batches(server, 1)
        other_batches(server, 3)
        assert asyncio.run(look(server, tagged, "abc"))["input_file_id"] == tagged
        assert asyncio.run(look(server, tagged, "not-this-input")) is None  # same file, another request set
        assert asyncio.run(look(server, plain, "abc"))["input_file_id"] == plain  # made by a run before fingerprints
        assert asyncio.run(look(server, "file-none", "abc")) is None


def test_a_restart_with_other_lm_settings_cancels_the_batch_it_cannot_use_and_sends_its_requests_again(spec, tmp_path):
    out = tmp_path / "s"
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")

    def config(name: str, temperature: float, base: str) -> Path:
        path = tmp_path / name
        path.write_text(f'[lm]\nmodel = "openai/fake"\napi_base = "{base}"\ntemperature = {temperature}\n' + LIMITS)
        return path

    def command(cfg: Path) -> list[str]:
        return ["compile", str(spec), "-o", str(out), "--no-progress", "--lm-config", str(cfg), "--scenarios", "8",
                "--batch", *FAST]

    with FakeBatchServer(delay=30.0) as server:
        proc = subprocess.Popen([sys.executable, "-m", "humanllm_dsl", *command(config("a.toml", 0.5, server.base_url))],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and server.created < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        first = next(iter(server.batches))
        server.delay = 0.0
        assert main(command(config("b.toml", 0.9, server.base_url))) == 0
        assert server.batches[first]["status"] in ("cancelling", "cancelled")
    log = read_jsonl(out / "work" / "batches.jsonl")
    assert any(row.get("state") == "abandoned" for row in log)
    assert len(read_jsonl(out / "records.jsonl")) == 8
