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
    faults = {f"{ids[0]}/scenarios/0": "malformed", f"{ids[1]}/scenarios/0": "error",
              f"{ids[2]}/conversations/0": "truncated",
              **{f"{ids[3]}/checklists/{k}": "error" for k in range(3)}}
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
    assert "batch item (HTTP 500, server_error)" in failures[0]["reason"] and failures[0]["usage"]["calls"] == 3
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


def test_a_failed_batch_stops_the_run_with_its_reason(spec, tmp_path, capsys):
    with FakeBatchServer(fail={1}) as server:
        assert main(args(spec, tmp_path / "x", server.base_url, "--batch", *FAST)) == 2
    assert "batch batch_1 (scenarios) failed" in capsys.readouterr().err


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
        uploads = server.uploads
        assert main(args(spec, out, server.base_url, "--batch", *FAST)) == 0
        assert server.lines.count(server.batches["batch_1"]["_lines"][0]["custom_id"]) == 1
        twice = sorted({c for c in server.lines if server.lines.count(c) > 1})
        assert not twice  # no request was sent twice
        assert server.created == len(server.batches) == uploads + (server.uploads - uploads)
        assert server.uploads == server.created  # every uploaded file became exactly one batch
    assert outputs(out) == outputs(reference)


@pytest.mark.parametrize("model", ["offline", "hf:models/x", "anthropic/claude"])
def test_batch_needs_an_openai_compatible_model(spec, tmp_path, capsys, model):
    rc = main(["compile", str(spec), "-o", str(tmp_path / "u"), "--no-progress", "--lm", model, "--batch"])
    assert rc == 2
    assert "--batch needs an OpenAI-compatible model" in capsys.readouterr().err
