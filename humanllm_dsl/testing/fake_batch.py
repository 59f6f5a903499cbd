"""A local OpenAI-compatible batch provider for tests: `/v1/files` and `/v1/batches` on 127.0.0.1.

Each request line of a batch is answered like the offline engine (as FakeOpenAIServer answers
a chat completion), in the OpenAI Batch API shapes: request lines `{"custom_id", "method",
"url", "body"}`, output lines `{"id", "custom_id", "response": {"status_code", "request_id",
"body"}, "error"}`, batch objects with `status` (validating, in_progress, finalizing, completed,
failed, expired, cancelling, cancelled), `output_file_id`, `error_file_id` and `request_counts`.

Faults, to drive a client through every path: `delay` (seconds a batch stays in progress),
`item_faults` (custom_id -> "error", an error row; "malformed", broken field markers;
"truncated", finish_reason "length"), `expire` (the ordinal numbers, from 1, of the batches that
expire with only their first half answered), `fail` (those that fail validation) and
`create_delay` (seconds before a create is answered: a client killed meanwhile never hears the
batch id, but the batch exists). The state
lives in the server object, so a client can be killed and restarted against the same server;
`uploads`, `created` and `lines` count what it was sent.

    with FakeBatchServer(delay=0.2, expire={1}) as server:
        ... --lm openai/fake --api-base server.base_url --batch
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from .openai_server import FakeOpenAIServer

ENDPOINT = "/v1/chat/completions"


class FakeBatchServer:
    def __init__(self, delay: float = 0.0, item_faults: dict[str, str] | None = None, expire: set[int] = frozenset(),
                 fail: set[int] = frozenset(), seed: int = 0, port: int = 0, create_delay: float = 0.0,
                 on_create: Callable[[dict], None] | None = None):
        self.delay, self.item_faults, self.create_delay = delay, dict(item_faults or {}), create_delay
        self.expire, self.fail, self.port, self.on_create = set(expire), set(fail), port, on_create
        self.chat = FakeOpenAIServer(seed=seed)  # its answer and usage logic, not its socket
        self.files: dict[str, dict] = {}  # id -> {"purpose", "data": bytes, "filename"}
        self.batches: dict[str, dict] = {}
        self.lines: list[str] = []  # every custom_id sent, in order
        self.uploads = self.created = 0
        self.polls = 0
        self._lock = threading.RLock()
        self._http: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- lifecycle
    def start(self) -> "FakeBatchServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _reply(self, status: int, payload: dict | bytes, kind: str = "application/json") -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:
                self._reply(*server._get(urlparse(self.path)))

            def do_POST(self) -> None:
                self._reply(*server._post(urlparse(self.path).path, self.headers, self._body()))

        self._http = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, name="fake-batch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._thread.join(10)
            self._http = None

    def __enter__(self) -> "FakeBatchServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- routes
    def _post(self, path: str, headers, body: bytes) -> tuple[int, dict]:
        if not headers.get("Authorization", "").startswith("Bearer "):
            return 401, _error("no API key", "invalid_api_key")
        if path == "/v1/files":
            return self._upload(headers.get("Content-Type", ""), body)
        if path == "/v1/batches":
            return self._create(json.loads(body))
        if path.startswith("/v1/batches/") and path.endswith("/cancel"):
            with self._lock:
                batch = self.batches.get(path.split("/")[3])
                if batch is None:
                    return 404, _error("no such batch", "not_found")
                if batch["status"] not in ("completed", "failed", "expired", "cancelled"):
                    self._finish(batch, "cancelled", answered=0)
                return 200, self._public(batch)
        return 404, _error(f"no route POST {path}", "not_found")

    def _get(self, url) -> tuple[int, dict | bytes] | tuple[int, bytes, str]:
        parts = url.path.strip("/").split("/")
        with self._lock:
            if parts[:2] == ["v1", "batches"] and len(parts) == 3:
                batch = self.batches.get(parts[2])
                if batch is None:
                    return 404, _error("no such batch", "not_found")
                self.polls += 1
                self._advance(batch)
                return 200, self._public(batch)
            if parts == ["v1", "batches"]:
                query = parse_qs(url.query)
                ids = sorted(self.batches, key=lambda b: self.batches[b]["created_at"], reverse=True)
                if "after" in query:
                    ids = ids[ids.index(query["after"][0]) + 1:] if query["after"][0] in ids else []
                limit = int(query.get("limit", ["20"])[0])
                page = [self._public(self.batches[b]) for b in ids[:limit]]
                return 200, {"object": "list", "data": page, "has_more": len(ids) > limit,
                             "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None}
            if parts[:2] == ["v1", "files"] and len(parts) == 4 and parts[3] == "content":
                found = self.files.get(parts[2])
                if found is None:
                    return 404, _error("no such file", "not_found")
                return 200, found["data"], "application/jsonl"
        return 404, _error(f"no route GET {url.path}", "not_found")

    def _upload(self, content_type: str, body: bytes) -> tuple[int, dict]:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body)
        fields = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
        if "file" not in fields or "purpose" not in fields:
            return 400, _error("a file upload needs `file` and `purpose`", "invalid_request_error")
        with self._lock:
            self.uploads += 1
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = {"purpose": fields["purpose"].get_content().strip(),
                                   "data": fields["file"].get_payload(decode=True),
                                   "filename": fields["file"].get_filename()}
        return 200, {"id": file_id, "object": "file", "bytes": len(self.files[file_id]["data"]), "created_at": 0,
                     "filename": self.files[file_id]["filename"], "purpose": self.files[file_id]["purpose"]}

    def _create(self, request: dict) -> tuple[int, dict]:
        time.sleep(self.create_delay)  # the batch is made even if the client has gone meanwhile
        with self._lock:
            source = self.files.get(request.get("input_file_id"))
            if source is None or source["purpose"] != "batch":
                return 400, _error("input_file_id names no file uploaded with purpose `batch`", "invalid_request_error")
            if request.get("endpoint") != ENDPOINT or request.get("completion_window") != "24h":
                return 400, _error("endpoint must be /v1/chat/completions and completion_window 24h",
                                   "invalid_request_error")
            self.created += 1
            number = len(self.batches) + 1
            lines = [json.loads(line) for line in source["data"].decode("utf-8").splitlines() if line.strip()]
            now = time.time()
            batch = {"id": f"batch_{number}", "object": "batch", "endpoint": ENDPOINT, "errors": None,
                     "input_file_id": request["input_file_id"], "completion_window": "24h", "status": "validating",
                     "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
                     "expires_at": now + 86400, "finalizing_at": None, "completed_at": None, "failed_at": None,
                     "expired_at": None, "cancelling_at": None, "cancelled_at": None,
                     "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                     "metadata": request.get("metadata"), "_number": number, "_lines": lines, "_due": now + self.delay}
            self.batches[batch["id"]] = batch
            self.lines += [line.get("custom_id") for line in lines]
            if self.on_create is not None:
                self.on_create(self._public(batch))
            return 200, self._public(batch)

    # -- a batch's life
    def _advance(self, batch: dict) -> None:
        if batch["status"] == "validating":
            problems = self._invalid(batch)
            if problems or batch["_number"] in self.fail:
                batch["errors"] = {"object": "list", "data": problems or [
                    {"code": "invalid_request", "message": "the fake was told to fail this batch", "line": 1}]}
                batch["status"], batch["failed_at"] = "failed", time.time()
                return
            batch["status"], batch["in_progress_at"] = "in_progress", time.time()
        if batch["status"] == "in_progress" and time.time() >= batch["_due"]:
            if batch["_number"] in self.expire:
                self._finish(batch, "expired", answered=len(batch["_lines"]) // 2)
            else:
                batch["status"], batch["finalizing_at"] = "finalizing", time.time()
        elif batch["status"] == "finalizing":
            self._finish(batch, "completed", answered=len(batch["_lines"]))

    def _invalid(self, batch: dict) -> list[dict]:
        problems, seen = [], set()
        for number, line in enumerate(batch["_lines"], 1):
            custom_id = line.get("custom_id")
            if not isinstance(custom_id, str) or custom_id in seen:
                problems.append({"code": "duplicate_custom_id" if custom_id in seen else "missing_custom_id",
                                 "message": "each line needs a distinct custom_id", "line": number})
            elif line.get("method") != "POST" or line.get("url") != ENDPOINT or not isinstance(line.get("body"), dict) \
                    or not isinstance(line["body"].get("messages"), list) or "model" not in line["body"]:
                problems.append({"code": "invalid_request", "line": number,
                                 "message": "a line is {custom_id, method: POST, url: /v1/chat/completions, "
                                            "body: {model, messages, ...}}"})
            seen.add(custom_id)
        return problems

    def _finish(self, batch: dict, status: str, answered: int) -> None:
        outputs, errors = [], []
        for number, line in enumerate(batch["_lines"]):
            custom_id = line["custom_id"]
            if number >= answered:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                errors.append({"id": f"batch_req_{batch['_number']}_{number}", "custom_id": custom_id,
                               "response": None, "error": {"code": code, "message": f"this request was not run: {status}"}})
                continue
            fault = self.item_faults.get(custom_id)
            if fault == "error":
                errors.append({"id": f"batch_req_{batch['_number']}_{number}", "custom_id": custom_id,
                               "response": {"status_code": 500, "request_id": f"req_{number}",
                                            "body": _error("the server had an error", "server_error")},
                               "error": None})
                continue
            outputs.append({"id": f"batch_req_{batch['_number']}_{number}", "custom_id": custom_id,
                            "response": {"status_code": 200, "request_id": f"req_{batch['_number']}_{number}",
                                         "body": self._completion(line["body"], fault, number)},
                            "error": None})
        batch["output_file_id"] = self._store(outputs) if outputs else None
        batch["error_file_id"] = self._store(errors) if errors else None
        batch["request_counts"] = {"total": len(batch["_lines"]), "completed": len(outputs), "failed": len(errors)}
        batch["status"], batch[f"{status}_at"] = status, time.time()

    def _completion(self, body: dict, fault: str | None, number: int) -> dict:
        text, finish = self.chat._answer(body), "stop"
        if fault == "malformed":
            text = text.replace("[[ ## ", "[[ #").replace(" ## ]]", " # ]]")
        elif fault == "truncated":
            text, finish = text[: len(text) // 2], "length"
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4
        completion_tokens = len(text) // 4
        return {"id": f"chatcmpl-b{number}", "object": "chat.completion", "created": 0, "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}

    def _store(self, rows: list[dict]) -> str:
        file_id = f"file-{len(self.files) + 1}"
        data = "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")
        self.files[file_id] = {"purpose": "batch_output", "data": data, "filename": f"{file_id}.jsonl"}
        return file_id

    @staticmethod
    def _public(batch: dict) -> dict:
        return {k: v for k, v in batch.items() if not k.startswith("_")}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # a killed client hung up: expected here
            super().handle_error(request, client_address)


def _error(message: str, kind: str) -> dict:
    return {"error": {"message": message, "type": kind, "code": kind}}


def main(argv=None) -> None:
    """`python -m humanllm_dsl.testing.fake_batch --port 8001 --delay 5`: serve until killed."""
    import argparse

    from .serve import serve_until_killed

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds each batch stays in progress")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    serve_until_killed(FakeBatchServer(delay=args.delay, seed=args.seed, port=args.port))


if __name__ == "__main__":
    main()
