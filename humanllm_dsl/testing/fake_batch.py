"""A local OpenAI-compatible batch provider for tests: `/v1/files` and `/v1/batches` on 127.0.0.1.

Each request line of a batch is answered like the offline engine (as FakeOpenAIServer answers
a chat completion), in the OpenAI Batch API shapes: request lines `{"custom_id", "method",
"url", "body"}`, output lines `{"id", "custom_id", "response": {"status_code", "request_id",
"body"}, "error"}`, batch objects with `status` (validating, in_progress, finalizing, completed,
failed, expired, cancelling, cancelled), `output_file_id`, `error_file_id` and `request_counts`.

A batch is `validating` on its first look, `in_progress` until `delay` has passed, `finalizing`
for one look, then done. What a real provider may do, to drive a client through every path:

- `item_faults`: custom_id -> "error" (HTTP 500 row), "rate_limited" (HTTP 429 row), "invalid"
  (HTTP 400 row), "missing" (no row at all), "malformed" (broken field markers) or "truncated"
  (finish_reason "length"); each fault hits the first `fault_times` sends of that custom_id
  (None: every send). `errors_in_output` puts the non-200 rows in the output file instead of
  the error file.
- `shuffle`: output and error rows in a random (seeded) order; `crlf`: CRLF line ends and no
  final newline; `content_type`: what file content is served as; `extra_fields`: unknown keys
  in every object (files, batches, lists, rows, completions).
- `expire` / `cancel`: the ordinal numbers (from 1) of the batches that expire, or are cancelled
  (`cancelling` for one look), with only their first half run; `fail`: those that fail as a
  whole with no line blamed (an enqueued-token limit); `reject`: custom_ids whose lines fail
  validation (the batch fails, naming their line numbers).
- `http_faults`: route ("upload", "create", "list", "poll", "content") -> how many of its first
  calls are answered 429 (Retry-After as an HTTP date) or 503 (an HTML page), in turn;
  `lost_creates`: how many creates make the batch and then answer 500; `create_delay`: seconds
  before a create is answered (a client killed meanwhile never hears the batch id, but the
  batch exists); `on_create`: called with each batch made, before the answer goes; `page_size`:
  the most batches one `GET /batches` page holds, whatever `limit` asks.

The state lives in the server object, so a client can be killed and restarted against the same
server; `uploads`, `created`, `listed`, `polls` and `lines` count what it was sent.

    with FakeBatchServer(delay=0.2, expire={1}) as server:
        ... --lm openai/fake --api-base server.base_url --batch
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import json
import random
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
                 on_create: Callable[[dict], None] | None = None, *, fault_times: int | None = None,
                 errors_in_output: bool = False, shuffle: bool = False, crlf: bool = False,
                 content_type: str = "application/jsonl", extra_fields: bool = False, cancel: set[int] = frozenset(),
                 reject: set[str] = frozenset(), http_faults: dict[str, int] | None = None, lost_creates: int = 0,
                 page_size: int | None = None):
        self.delay, self.item_faults, self.create_delay = delay, dict(item_faults or {}), create_delay
        self.expire, self.fail, self.port, self.on_create = set(expire), set(fail), port, on_create
        self.fault_times, self.errors_in_output, self.shuffle, self.crlf = fault_times, errors_in_output, shuffle, crlf
        self.content_type, self.extra_fields, self.cancel, self.reject = content_type, extra_fields, set(cancel), set(reject)
        self.http_faults, self.lost_creates, self.page_size = dict(http_faults or {}), lost_creates, page_size
        self.rng = random.Random(seed)
        self.faulted: dict[str, int] = {}  # custom_id -> sends that met its fault
        self.http_faulted: dict[str, int] = {}  # route -> calls answered with a fault
        self.listed = 0
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

            def _reply(self, status: int, payload: dict | bytes, kind: str = "application/json",
                       headers: dict | None = None) -> None:
                if isinstance(payload, dict) and server.extra_fields:
                    payload = _extra(payload)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", kind)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:
                url = urlparse(self.path)
                self._reply(*(server._fault("GET", url.path) or server._get(url)))

            def do_POST(self) -> None:
                path, body = urlparse(self.path).path, self._body()
                fault = server._fault("POST", path)
                if fault is None and path == "/v1/batches" and server.lost_creates > 0:
                    status, made = server._post(path, self.headers, body)
                    if status == 200:
                        server.lost_creates -= 1
                        fault = (500, _error("the server had an error", "server_error"))
                    else:
                        fault = (status, made)
                self._reply(*(fault or server._post(path, self.headers, body)))

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
    def _fault(self, method: str, path: str) -> tuple | None:
        """A 429 or 503 for the first `http_faults[route]` calls of the route, in turn."""
        parts = path.strip("/").split("/")
        route = {("POST", 2, "files"): "upload", ("POST", 2, "batches"): "create", ("GET", 2, "batches"): "list",
                 ("GET", 3, "batches"): "poll", ("GET", 4, "files"): "content"}.get((method, len(parts), parts[1]
                                                                                    if len(parts) > 1 else ""))
        with self._lock:
            done = self.http_faulted.get(route, 0)
            if route is None or done >= self.http_faults.get(route, 0):
                return None
            self.http_faulted[route] = done + 1
        if done % 2 == 0:
            return 429, _error("Rate limit reached", "rate_limit_exceeded"), "application/json", \
                {"Retry-After": email.utils.formatdate(time.time() + 0.2, usegmt=True)}
        return 503, b"<html><body>503 Service Temporarily Unavailable</body></html>", "text/html"

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
                    batch["status"], batch["cancelling_at"] = "cancelling", time.time()
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
                self.listed += 1
                query = parse_qs(url.query)
                ids = sorted(self.batches, key=lambda b: self.batches[b]["created_at"], reverse=True)
                if "after" in query:
                    ids = ids[ids.index(query["after"][0]) + 1:] if query["after"][0] in ids else []
                limit = min(int(query.get("limit", ["20"])[0]), self.page_size or 100)
                page = [self._public(self.batches[b]) for b in ids[:limit]]
                return 200, {"object": "list", "data": page, "has_more": len(ids) > limit,
                             "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None}
            if parts[:2] == ["v1", "files"] and len(parts) == 4 and parts[3] == "content":
                found = self.files.get(parts[2])
                if found is None:
                    return 404, _error("no such file", "not_found")
                return 200, found["data"], self.content_type
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
            batch = {"id": f"batch_{number}", "object": "batch", "endpoint": ENDPOINT, "errors": None, "_looks": 0,
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
        batch["_looks"] += 1
        half = len(batch["_lines"]) // 2
        if batch["status"] == "validating" and batch["_looks"] > 1:
            problems = self._invalid(batch)
            if problems or batch["_number"] in self.fail:
                batch["errors"] = {"object": "list", "data": problems or [
                    {"code": "token_limit_exceeded", "line": None, "param": None,
                     "message": "Enqueued token limit reached (the fake was told to fail this batch)"}]}
                batch["status"], batch["failed_at"] = "failed", time.time()
                return
            batch["status"], batch["in_progress_at"] = "in_progress", time.time()
        elif batch["status"] == "in_progress" and time.time() >= batch["_due"]:
            if batch["_number"] in self.expire:
                self._finish(batch, "expired", answered=half)
            elif batch["_number"] in self.cancel:
                batch["status"], batch["cancelling_at"] = "cancelling", time.time()
            else:
                batch["status"], batch["finalizing_at"] = "finalizing", time.time()
        elif batch["status"] == "in_progress":
            batch["request_counts"]["completed"] = half // 2
        elif batch["status"] == "cancelling":
            self._finish(batch, "cancelled", answered=half if batch["_number"] in self.cancel else 0)
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
            elif custom_id in self.reject:
                problems.append({"code": "invalid_request", "line": number, "param": "body",
                                 "message": "the fake was told to reject this line"})
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
            if fault is not None:
                met = self.faulted.get(custom_id, 0)
                if self.fault_times is not None and met >= self.fault_times:
                    fault = None
                else:
                    self.faulted[custom_id] = met + 1
            if fault == "missing":
                continue
            if fault in ERROR_ROWS:
                code, message, kind = ERROR_ROWS[fault]
                row = {"id": f"batch_req_{batch['_number']}_{number}", "custom_id": custom_id,
                       "response": {"status_code": code, "request_id": f"req_{batch['_number']}_{number}",
                                    "body": _error(message, kind)}, "error": None}
                (outputs if self.errors_in_output else errors).append(row)
                continue
            outputs.append({"id": f"batch_req_{batch['_number']}_{number}", "custom_id": custom_id,
                            "response": {"status_code": 200, "request_id": f"req_{batch['_number']}_{number}",
                                         "body": self._completion(line["body"], fault, number)},
                            "error": None})
        if self.shuffle:
            self.rng.shuffle(outputs)
            self.rng.shuffle(errors)
        ok = sum(1 for row in outputs if row["response"]["status_code"] == 200)
        batch["output_file_id"] = self._store(outputs) if outputs else None
        batch["error_file_id"] = self._store(errors) if errors else None
        batch["request_counts"] = {"total": len(batch["_lines"]), "completed": ok, "failed": len(batch["_lines"]) - ok}
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
        if self.extra_fields:
            rows = [_extra(row) for row in rows]
        end = "\r\n" if self.crlf else "\n"
        data = end.join(json.dumps(row, ensure_ascii=False) for row in rows).encode("utf-8")
        data += b"" if self.crlf else b"\n"
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


ERROR_ROWS = {"error": (500, "The server had an error while processing your request", "server_error"),
              "rate_limited": (429, "Rate limit reached for requests", "rate_limit_exceeded"),
              "invalid": (400, "This model's maximum context length is exceeded", "invalid_request_error")}


def _extra(obj):
    """`obj` with an unknown key added to every object in it (a newer API's fields)."""
    if isinstance(obj, dict):
        return {**{k: _extra(v) for k, v in obj.items()}, "x_newer_field": {"note": "ignore me", "n": 1}}
    if isinstance(obj, list):
        return [_extra(v) for v in obj]
    return obj


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
